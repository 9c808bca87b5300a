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
