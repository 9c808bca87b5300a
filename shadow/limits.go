package shadow

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
)

// DefaultMaxDepth is the deepest JSON nesting of a body the engine accepts when none is
// configured. SCIM resources nest three or four levels; 64 leaves room for any extension.
const DefaultMaxDepth = 64

// DefaultMaxOperations is the most PATCH or Bulk operations one request may carry when
// none is configured.
const DefaultMaxOperations = 1000

// LimitError is a body that breaks one of the engine's limits.
type LimitError struct {
	Status   int    // 400 or 413
	ScimType string // RFC 7644 §3.12 scimType, may be empty
	Detail   string
}

func (e *LimitError) Error() string { return e.Detail }

// CheckLimits reports whether a JSON body nests deeper than maxDepth or carries more than
// maxOps PATCH/Bulk operations (a top-level "Operations" array, name case-insensitive). A
// limit of 0 is the default, a negative one none. It never parses the body recursively:
// the depth is counted in one pass over the bytes, so no input can exhaust the stack.
func CheckLimits(body []byte, maxDepth, maxOps int, bulk bool) *LimitError {
	if maxDepth == 0 {
		maxDepth = DefaultMaxDepth
	}
	if maxOps == 0 {
		maxOps = DefaultMaxOperations
	}
	if maxDepth > 0 && bytes.Count(body, openObject)+bytes.Count(body, openArray) > maxDepth {
		// Fewer brackets than the limit cannot nest deeper: counting them is a vector loop.
		if d := jsonDepth(body, maxDepth); d > maxDepth {
			return &LimitError{Status: http.StatusBadRequest, ScimType: "invalidSyntax",
				Detail: fmt.Sprintf("request body nests deeper than the limit of %d levels", maxDepth)}
		}
	}
	if maxOps > 0 {
		if n := countOperations(body, maxOps); n > maxOps {
			if bulk {
				// RFC 7644 §3.7.4: a BulkRequest over maxOperations is 413.
				return &LimitError{Status: http.StatusRequestEntityTooLarge,
					Detail: fmt.Sprintf("request has more than the limit of %d operations", maxOps)}
			}
			return &LimitError{Status: http.StatusBadRequest, ScimType: "invalidValue",
				Detail: fmt.Sprintf("request has more than the limit of %d operations", maxOps)}
		}
	}
	return nil
}

var openObject, openArray = []byte{'{'}, []byte{'['}

// jsonDepth returns the nesting depth of b's arrays and objects, counting strings
// (and their escapes) as opaque; it stops counting once the depth passes stop.
func jsonDepth(b []byte, stop int) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++ // the escaped byte is part of the string
				}
			}
		case '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > stop {
					return deepest
				}
			}
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// countOperations counts the elements of the top-level Operations array, up to stop+1.
func countOperations(b []byte, stop int) int {
	if !mayHoldOperations(b) {
		return 0
	}
	if !gjson.ValidBytes(b) {
		return 0 // not ours to judge: the rules report it, the backend answers it
	}
	n := 0
	gjson.ParseBytes(b).ForEach(func(k, v gjson.Result) bool {
		if !strings.EqualFold(k.String(), "Operations") || !v.IsArray() {
			return true
		}
		v.ForEach(func(_, _ gjson.Result) bool {
			n++
			return n <= stop
		})
		return false
	})
	return n
}

// checkLimits answers a body over the engine's depth or Operations limits with a SCIM
// error and returns false.
func (e *Engine) checkLimits(w http.ResponseWriter, body []byte, d *Decision) bool {
	le := CheckLimits(body, e.MaxDepth, e.MaxOperations, d.Target.Op == OpBulk)
	if le == nil {
		return true
	}
	d.Outcome, d.Err = OutcomeRejected, le
	WriteError(w, le.Status, le.ScimType, le.Detail)
	return false
}

// mayHoldOperations is a quick look for an "Operations" key: false when no byte sequence
// spells it in any case (strings.EqualFold also takes U+017F, long s, for the s) and no
// escape could (a key may be written with \u escapes), so the body has no Operations
// member to count.
func mayHoldOperations(b []byte) bool {
	return bytes.IndexByte(b, '\\') >= 0 || bytes.Contains(b, longS) || rules.MayContainFold(b, "operations")
}

// longS is U+017F in UTF-8.
var longS = []byte("\u017f")
