package shadow

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestMayHoldOperations: the quick look skips only bodies the full count finds no
// Operations member in (the full count is what countOperations did without it).
func TestMayHoldOperations(t *testing.T) {
	full := func(b []byte) int { // countOperations without the quick look
		n := 0
		if !gjson.ValidBytes(b) {
			return 0
		}
		gjson.ParseBytes(b).ForEach(func(k, v gjson.Result) bool {
			if strings.EqualFold(k.String(), "Operations") && v.IsArray() {
				n = len(v.Array())
				return false
			}
			return true
		})
		return n
	}
	ops := `[{"op":"add"},{"op":"remove"}]`
	for _, body := range []string{
		`{"Operations":` + ops + `}`,
		`{"operations":` + ops + `}`,
		`{"OPERATIONS":` + ops + `}`,
		"{\"Operation\u017f\":" + ops + "}",         // strings.EqualFold takes the long s
		`{"\u004Fperations":` + ops + `}`,           // written with an escape
		`{"Operation":` + ops + `,"operationsX":1}`, // near misses
		`{"userName":"a","active":true}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operation":[]}`,
		`{"note":"operations"}`,
		`not json operations`,
		``,
	} {
		b := []byte(body)
		want := full(b)
		if got := countOperations(b, 10); got != want {
			t.Errorf("%s: countOperations = %d, want %d", body, got, want)
		}
		if want > 0 && !mayHoldOperations(b) {
			t.Errorf("%s: skipped by the quick look", body)
		}
	}
	if mayHoldOperations([]byte(`{"userName":"` + strings.Repeat("operation", 3) + `"}`)) {
		t.Error("a stem without its s was taken for the key")
	}
}

// TestJSONDepthLikeStateMachine: jsonDepth, which skips strings in a loop of their own,
// counts as the byte-at-a-time state machine it replaced (kept below as the oracle) on
// generated inputs: nesting, strings with escapes, quotes and brackets inside strings,
// truncations.
func TestJSONDepthLikeStateMachine(t *testing.T) {
	parts := []string{`{`, `}`, `[`, `]`, `"`, `\`, `\"`, `"a[{"`, `"\\"`, `:`, `,`, `1`, `"x\"]"`, ` `}
	rng := uint64(1)
	next := func(n int) int { rng = rng*6364136223846793005 + 1442695040888963407; return int(rng>>33) % n }
	for c := 0; c < 20000; c++ {
		var sb strings.Builder
		for k := next(40); k >= 0; k-- {
			sb.WriteString(parts[next(len(parts))])
		}
		b := []byte(sb.String())
		for _, stop := range []int{1, 3, 64} {
			if got, want := jsonDepth(b, stop), jsonDepthOracle(b, stop); got != want {
				t.Fatalf("jsonDepth(%q, %d) = %d, want %d", b, stop, got, want)
			}
		}
	}
}

// jsonDepthOracle is jsonDepth as it was.
func jsonDepthOracle(b []byte, stop int) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > stop {
					return deepest
				}
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
