package shadow

import (
	"net/http"
	"strings"
	"testing"
)

// TestSplitPathSlicesLikeSplitting: splitPath, which slices paths without escapes instead
// of splitting, unescaping and joining their segments, finds the same parts as the
// splitting (splitEscapedPath, what Classify did for every path), and Classify agrees on
// every method whichever way the path was split.
func TestSplitPathSlicesLikeSplitting(t *testing.T) {
	vocab := []string{"", "scim", "v2", "Users", "users", "Groups", "Bulk", ".search", "Schemas",
		"ResourceTypes", "Me", "u-1", "x%2Fy", "%zz", "%55sers", ".", ".."}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions}
	n := 0
	for _, a := range vocab {
		for _, b := range vocab {
			for _, c := range vocab {
				p := a + "/" + b + "/" + c
				for _, path := range []string{p, "/" + p, "//" + p + "/", "/tenants/me/" + p, c, "/" + c} {
					got, want := splitPath(path), splitEscapedPath(strings.Trim(path, "/"))
					if got != want {
						t.Fatalf("splitPath(%q) = %+v, want %+v", path, got, want)
					}
					for _, m := range methods {
						if g, w := classifyParts(m, got, nil), classifyParts(m, want, nil); g != w {
							t.Fatalf("%s %q: %+v, want %+v", m, path, g, w)
						}
					}
					n++
				}
			}
		}
	}
	if n < 20000 {
		t.Fatalf("only %d paths", n)
	}
}
