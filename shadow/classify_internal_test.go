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

// TestResourceKey: the key of a create or replace is the first string userName (any case),
// else a group's displayName, else the externalId; a PATCH, an empty or invalid body has none,
// and the key does not share memory with the body.
func TestResourceKey(t *testing.T) {
	user := Target{ResourceType: "User", Op: OpCreate}
	group := Target{ResourceType: "Group", Op: OpCreate}
	for _, tc := range []struct {
		name string
		t    Target
		body string
		want string
	}{
		{"userName", user, `{"externalId":"e","userName":"ann"}`, "ann"},
		{"userName in another case", user, `{"USERNAME":"ann","externalId":"e"}`, "ann"},
		{"the first string userName", user, `{"userName":7,"UserName":"bob","username":"cy"}`, "bob"},
		{"an empty userName falls back", user, `{"userName":"","externalId":"e"}`, "e"},
		{"a user's displayName is not its key", user, `{"displayName":"Ann","externalId":"e"}`, "e"},
		{"a user without either", user, `{"displayName":"Ann"}`, ""},
		{"a group's displayName", group, `{"externalId":"e","displayName":"Ops"}`, "Ops"},
		{"a group's externalId", group, `{"displayName":"","externalId":"e"}`, "e"},
		{"escaped key and value", user, `{"user\u004eame":"\u00e9a"}`, "éa"},
		{"replace", Target{ResourceType: "User", Op: OpReplace}, `{"userName":"ann"}`, "ann"},
		{"patch", Target{ResourceType: "User", Op: OpPatch}, `{"userName":"ann"}`, ""},
		{"invalid", user, `{"userName":"ann"`, ""},
		{"empty", user, ``, ""},
	} {
		body := []byte(tc.body)
		got := resourceKey(tc.t, body)
		clear(body)
		if got != tc.want {
			t.Errorf("%s: resourceKey = %q, want %q", tc.name, got, tc.want)
		}
	}
}
