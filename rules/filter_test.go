package rules

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRewriteFilter(t *testing.T) {
	s := mustCompile(t, testRules())
	tests := []struct {
		rt, in, want string // want "" means: unchanged
	}{
		{"User", `favorite_color eq "red"`, `favoriteColor eq "red"`},
		{"User", `Favorite_Color Eq "red"`, `favoriteColor eq "red"`},
		{"User", `userName eq "bjensen"`, ""},
		{"User", `userName eq "6b9f0a3c-random-guid"`, ""},
		{"User", `emails[type eq "work"].value eq "w@contoso.test"`, ""},
		{"User", `favorite_color eq "red" and userName sw "a"`, `favoriteColor eq "red" and userName sw "a"`},
		{"User", `(favorite_color eq "red" or preferences.favoriteColor eq "blue") and not (department pr)`,
			`(favoriteColor eq "red" or favoriteColor eq "blue") and not (` + ent + `:department pr)`},
		{"User", `userName eq "x" or not (favorite_color ne "red" and active eq true)`,
			`userName eq "x" or not (favoriteColor ne "red" and active eq true)`},
		{"User", `emails[type eq "other"].value eq "o@x.test"`, `emails[type eq "work"].value eq "o@x.test"`},
		{"User", `emails[type eq "other" and value co "@x.test"]`, `emails[type eq "work" and value co "@x.test"]`},
		{"User", `workEmail eq "w@x.test"`, `emails[type eq "work" and value eq "w@x.test"]`},
		{"User", `postalAddresses[type eq "work" and locality eq "Oslo"]`, `addresses[type eq "work" and locality eq "Oslo"]`},
		{"User", `postalAddresses.locality eq "Oslo"`, `addresses.locality eq "Oslo"`},
		{"User", ent + `:division eq "Ops"`, ent + `:department eq "Ops"`},
		{"User", `urn:ietf:params:scim:schemas:core:2.0:User:favorite_color eq "x"`, `favoriteColor eq "x"`},
		{"User", `favorite_color eq "a \"quoted\" \\ value"`, `favoriteColor eq "a \"quoted\" \\ value"`},
		{"User", `favorite_color eq 12.50 or favorite_color eq true or favorite_color eq null or favorite_color pr`,
			`favoriteColor eq 12.50 or favoriteColor eq true or favoriteColor eq null or favoriteColor pr`},
		{"Group", `groupName eq "Eng"`, `displayName eq "Eng"`},
		{"Group", `displayName eq "Eng"`, ""},
		{"Device", `favorite_color eq "red"`, ""},
		{"User", strings.Repeat("(", 30) + `favorite_color pr` + strings.Repeat(")", 30), `favoriteColor pr`},
	}
	for _, tt := range tests {
		got, err := s.RewriteFilter(tt.rt, tt.in)
		if err != nil {
			t.Errorf("%s: error %v", tt.in, err)
			continue
		}
		want := tt.want
		if want == "" {
			want = tt.in
		}
		if got != want {
			t.Errorf("%s:\n got  %s\n want %s", tt.in, got, want)
			continue
		}
		again, err := s.RewriteFilter(tt.rt, got)
		if err != nil || again != got {
			t.Errorf("%s: not idempotent: %q, %v", tt.in, again, err)
		}
	}
}

func TestRewriteFilterUnparseable(t *testing.T) {
	s := mustCompile(t, testRules())
	for _, in := range []string{"favorite_color eq", "(favorite_color pr", `userName eq "x" and favorite_color`, `favorite_color eq "red`,
		`emails[type eq "other"].value eq "x" and userName eq "y"`, `FAVORITE_COLOR eq red`,
		strings.Repeat("(", 40) + `favorite_color pr` + strings.Repeat(")", 40), strings.Repeat(`favorite_color pr or `, 300) + "a pr"} {
		out, err := s.RewriteFilter("User", in)
		if err == nil {
			t.Errorf("%q: want an error, got %q", in, out)
		}
		if out != in {
			t.Errorf("%q: want the input back, got %q", in, out)
		}
	}
	// A filter naming no From attribute cannot need a rewrite: it is not parsed at all.
	for _, in := range []string{"", "(", `userName eq "x" and`} {
		if out, err := s.RewriteFilter("User", in); err != nil || out != in {
			t.Errorf("%q: want it back untouched, got %q, %v", in, out, err)
		}
	}
}

func TestRewriteAttributeList(t *testing.T) {
	s := mustCompile(t, testRules())
	tests := []struct{ in, want string }{
		{"userName,favorite_color", "userName,favoriteColor"},
		{"favorite_color, favoriteColor", "favoriteColor"},
		{"department", ent + ":department"},
		{"preferences.favoriteColor,emails", "favoriteColor,emails"},
		{"workEmail", "emails.value"},
		{"postalAddresses.locality", "addresses.locality"},
		{"userName, name.givenName", ""},
		{"", ""},
		{" , ,", ""},
	}
	for _, tt := range tests {
		want := tt.want
		if want == "" {
			want = tt.in
		}
		got := s.RewriteAttributeList("User", tt.in)
		if got != want {
			t.Errorf("%q: got %q, want %q", tt.in, got, want)
		}
		if again := s.RewriteAttributeList("User", got); again != got {
			t.Errorf("%q: not idempotent: %q", tt.in, again)
		}
	}
}

func TestRewriteSearch(t *testing.T) {
	s := mustCompile(t, testRules())
	in := []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"attributes":["userName","favorite_color","favoriteColor"],` +
		`"excludedAttributes":"department","filter":"favorite_color eq \"red\"","startIndex":1,"count":10}`)
	want := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"attributes":["userName","favoriteColor","favoriteColor"],` +
		`"excludedAttributes":"` + ent + `:department","filter":"favoriteColor eq \"red\"","startIndex":1,"count":10}`
	out, err := s.RewriteSearch("User", in)
	if err != nil || string(out) != want {
		t.Fatalf("got %s, %v\nwant %s", out, err, want)
	}
	if again, err := s.RewriteSearch("User", out); err != nil || !bytes.Equal(again, out) {
		t.Fatalf("not idempotent: %s %v", again, err)
	}
	dup := []byte(`{"attributes":["favoriteColor","favorite_color"]}`)
	if out, err := s.RewriteSearch("User", dup); err != nil || string(out) != `{"attributes":["favoriteColor"]}` {
		t.Fatalf("duplicate not removed: %s %v", out, err)
	}
	plain := []byte(`{"filter":"userName eq \"x\"","count":1}`)
	if out, err := s.RewriteSearch("User", plain); err != nil || !sameSlice(out, plain) {
		t.Fatalf("unchanged search body not returned as is: %s %v", out, err)
	}
	for _, bad := range []string{`{"filter":"favorite_color eq"}`, `not json`, `[1]`} {
		b := []byte(bad)
		if out, err := s.RewriteSearch("User", b); err == nil || !bytes.Equal(out, b) {
			t.Fatalf("%s: want an error and the input back, got %s %v", bad, out, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		rules   map[string]ResourceRules
		mention string
	}{
		{"bad target", map[string]ResourceRules{"User": {Rules: []Rule{{Target: `emails[type eq]`}}}}, `emails[type eq]`},
		{"empty target", map[string]ResourceRules{"User": {Rules: []Rule{{Target: ""}}}}, `target`},
		{"bad from", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "a", From: []string{"b..c"}}}}}, `b..c`},
		{"bad drop", map[string]ResourceRules{"User": {Drop: []string{"pass word"}}}, `pass word`},
		{"target inside from", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "name.givenName", From: []string{"name"}}}}}, `overlaps`},
		{"two rules, same target", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "a"}, {Target: "A"}}}}, `overlaps`},
		{"drop of a target", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "a"}}, Drop: []string{"a"}}}, `overlaps`},
		{"target is another rule's from", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "a", From: []string{"b"}}, {Target: "b"}}}}, `overlaps`},
		{"filtered target without sub-attribute", map[string]ResourceRules{"User": {Rules: []Rule{{Target: `emails[type eq "work"]`}}}}, `sub-attribute`},
		{"filtered from without sub-attribute", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "a", From: []string{`emails[type eq "work"]`}}}}}, `sub-attribute`},
		{"target filter not satisfiable", map[string]ResourceRules{"User": {Rules: []Rule{{Target: `emails[type eq "work" and primary pr].value`}}}}, `eq comparisons`},
		{"target sub in its filter", map[string]ResourceRules{"User": {Rules: []Rule{{Target: `emails[value eq "x"].value`}}}}, `must not appear`},
		{"bad default", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "a", Default: json.RawMessage(`{`)}}}}, `default`},
		{"null default", map[string]ResourceRules{"User": {Rules: []Rule{{Target: "a", Default: json.RawMessage(`null`)}}}}, `null`},
		{"empty type", map[string]ResourceRules{" ": {}}, `empty resource type`},
		{"type twice", map[string]ResourceRules{"User": {}, "user": {}}, `twice`},
	}
	for _, tt := range tests {
		s, err := Compile(tt.rules)
		if err == nil || s != nil {
			t.Errorf("%s: want an error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.mention)
		}
	}
}
