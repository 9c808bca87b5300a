package shadow_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

func patchOps(n int) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` +
		strings.TrimSuffix(strings.Repeat(`{"op":"replace","path":"name.givenName","value":"x"},`, n), ",") + `]}`
}

func nested(n int) string {
	return `{"userName":"deep","x":` + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + `}`
}

func TestCheckLimits(t *testing.T) {
	for _, tc := range []struct {
		name         string
		body         string
		depth, ops   int
		bulk         bool
		status       int
		wantScimType string
	}{
		{"flat", `{"userName":"a"}`, 0, 0, false, 0, ""},
		{"at depth", nested(10), 11, 0, false, 0, ""},
		{"over depth", nested(11), 11, 0, false, 400, "invalidSyntax"},
		{"default depth", nested(shadow.DefaultMaxDepth), 0, 0, false, 400, "invalidSyntax"},
		{"brackets in strings", `{"a":"` + strings.Repeat("[{", 500) + `\"]"}`, 2, 0, false, 0, ""},
		{"unlimited depth", nested(5000), -1, 0, false, 0, ""},
		{"ops at limit", patchOps(5), 0, 5, false, 0, ""},
		{"ops over", patchOps(6), 0, 5, false, 400, "invalidValue"},
		{"ops folded name", strings.Replace(patchOps(6), "Operations", "operations", 1), 0, 5, false, 400, "invalidValue"},
		{"bulk over", patchOps(6), 0, 5, true, 413, ""},
		{"default ops", patchOps(shadow.DefaultMaxOperations + 1), 0, 0, false, 400, "invalidValue"},
		{"unlimited ops", patchOps(2000), 0, -1, false, 0, ""},
		{"invalid JSON is not judged", `{"Operations":[1,2,3,`, 0, 1, false, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			le := shadow.CheckLimits([]byte(tc.body), tc.depth, tc.ops, tc.bulk)
			switch {
			case tc.status == 0 && le != nil:
				t.Fatalf("rejected: %v", le)
			case tc.status != 0 && (le == nil || le.Status != tc.status || le.ScimType != tc.wantScimType):
				t.Fatalf("got %+v, want %d %q", le, tc.status, tc.wantScimType)
			}
		})
	}
}

// TestEngineLimits: over-limit bodies get a SCIM error in both modes and never reach next.
func TestEngineLimits(t *testing.T) {
	store := openStore(t)
	for _, mode := range []shadow.Mode{shadow.ModeLive, shadow.ModePreview} {
		eng := &shadow.Engine{Rules: colorRules(t), DefaultMode: mode, Store: store, MaxDepth: 8, MaxOperations: 3}
		for _, tc := range []struct {
			method, path, body string
			status             int
		}{
			{"POST", "/scim/v2/Users", nested(9), 400},
			{"PATCH", "/scim/v2/Users/1", patchOps(4), 400},
			{"POST", "/scim/v2/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{},{},{},{}]}`, 413},
			{"POST", "/scim/v2/Users/.search", `{"filter":` + strings.Repeat("[", 9) + strings.Repeat("]", 9) + `}`, 400},
		} {
			r := httptest.NewRequest(tc.method, tc.path, bytes.NewReader([]byte(tc.body)))
			r.Header.Set("Content-Type", "application/scim+json")
			w := httptest.NewRecorder()
			next := &recordingNext{}
			eng.ServeHTTP(w, r, next)
			if w.Code != tc.status || len(next.calls()) != 0 {
				t.Errorf("%s %s %s: %d, next %d calls; want %d and none", mode, tc.method, tc.path, w.Code, len(next.calls()), tc.status)
			}
			var e struct{ Schemas []string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e.Schemas) != 1 || e.Schemas[0] != shadow.ErrorSchema ||
				w.Header().Get("Content-Type") != shadow.ContentType {
				t.Errorf("%s %s: not a SCIM error: %s %s", mode, tc.path, w.Header().Get("Content-Type"), w.Body)
			}
		}
		// Under the limits the request goes on.
		r := httptest.NewRequest(http.MethodPatch, "/scim/v2/Users/1", strings.NewReader(patchOps(3)))
		w := httptest.NewRecorder()
		eng.ServeHTTP(w, r, &recordingNext{})
		if w.Code == 400 || w.Code == 413 {
			t.Errorf("%s: within limits rejected: %d %s", mode, w.Code, w.Body)
		}
	}
}

// trueDepth is the nesting depth of valid JSON by encoding/json's tokenizer (iterative).
func trueDepth(b []byte) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest, err.Error() == "EOF"
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// FuzzCheckLimits: the one-pass depth count never panics and, on valid JSON, agrees with a
// tokenizer: a body within the limit nests no deeper than it, one over it does.
func FuzzCheckLimits(f *testing.F) {
	for _, s := range []string{`{}`, `[[["]]]"]]]`, `{"a":"\\"{"}`, nested(3), patchOps(3), `{"Operations":[{},{}]}`, `"\\\\"`, `[{"a":[1,{"b":[]}]}]`} {
		f.Add([]byte(s), 3, 2)
	}
	f.Fuzz(func(t *testing.T, body []byte, depth, ops int) {
		depth, ops = depth%100, ops%100
		le := shadow.CheckLimits(body, depth, ops, false)
		if !json.Valid(body) || depth <= 0 {
			return
		}
		want, ok := trueDepth(body)
		if !ok {
			return
		}
		over := le != nil && le.ScimType == "invalidSyntax"
		if over != (want > depth) {
			t.Fatalf("depth %d, limit %d: CheckLimits = %+v", want, depth, le)
		}
	})
}
