package shadow

import (
	"net/http/httptest"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
)

// TestQueryQuickLook: rewriteQuery, which skips decoding queries its quick look finds
// nothing to rewrite in, leaves every query as the full decode-rewrite-encode does.
func TestQueryQuickLook(t *testing.T) {
	set, err := rules.Compile(map[string]rules.ResourceRules{"User": {Rules: []rules.Rule{
		{Target: "favoriteColor", From: []string{"favorite_color"}},
		{Target: "nickName", From: []string{"preferences.nickname"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Rules: set}
	for _, q := range []string{
		`filter=userName+eq+%22ada%40example.com%22`,
		`filter=userName%20eq%20%22ada%22&startIndex=1&count=10`,
		`filter=favorite_color+eq+%22red%22`,
		`FILTER=favorite_color%20eq%20%22red%22&attributes=userName`,
		`attributes=userName,favorite_color`,
		`excludedAttributes=preferences.nickname`,
		`attributes=userName,emails&excludedAttributes=groups`,
		`count=5&&startIndex=2&`,
		`filter=userName+eq+%22a%22;count=1`,
		`filter=%zz&attributes=favorite_color`,
		`attributes=favorite_color&x=%zz`,
		`attr%69butes=favorite_color`,
		`filter=favorite_color+eq+`,
		`filter=(((`,
		`filter`,
		`=x`,
	} {
		quick := httptest.NewRequest("GET", "/scim/v2/Users?"+q, nil)
		whole := httptest.NewRequest("GET", "/scim/v2/Users?"+q, nil)
		e.rewriteQuery(quick, "User")
		e.rewriteWholeQuery(whole, "User", filterRewrite{})
		if quick.URL.RawQuery != whole.URL.RawQuery || quick.RequestURI != whole.RequestURI {
			t.Errorf("%s: quick look gave %q (%q), the whole rewrite %q (%q)", q,
				quick.URL.RawQuery, quick.RequestURI, whole.URL.RawQuery, whole.RequestURI)
		}
	}
}
