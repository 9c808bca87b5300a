package rules

import (
	"strings"
	"testing"
)

// usesOf returns a SourceFunc answering from a map of "Type target" → source.
func usesOf(m map[string]string) SourceFunc {
	return func(rt, target string) string { return m[rt+" "+target] }
}

func TestReverseResponse(t *testing.T) {
	s := mustCompile(t, testRules())
	used := usesOf(map[string]string{
		"User favoriteColor":          "favorite_color",
		"User " + ent + ":department": "department",
		"User name.givenName":         "firstName",
		"group displayName":           "groupName",
	})
	cases := []struct{ name, in, want string }{
		{"resource", `{"id":"1","userName":"a","favoriteColor":"red","name":{"givenName":"A","familyName":"B"},"` + ent + `":{"department":"D","employeeNumber":"7"}}`,
			`{"id":"1","userName":"a","favorite_color":"red","name":{"familyName":"B"},"firstName":"A","` + ent + `":{"employeeNumber":"7"},"department":"D"}`},
		{"list response, group by meta.resourceType", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":2,"Resources":[` +
			`{"id":"1","favoriteColor":"red","meta":{"resourceType":"User"}},{"id":"g","displayName":"Eng","meta":{"resourceType":"Group"}}]}`,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":2,"Resources":[` +
				`{"id":"1","favorite_color":"red","meta":{"resourceType":"User"}},{"id":"g","groupName":"Eng","meta":{"resourceType":"Group"}}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, n, err := s.ReverseResponse("User", []byte(c.in), used)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("nothing moved")
			}
			jsonEq(t, string(out), c.want)
			// Into a caller's buffer (roomy, too small): the same bytes, in its room when it fits.
			for _, dst := range [][]byte{make([]byte, 0, 4096), make([]byte, 3, 8)} {
				got, m, err := s.AppendReverseResponse(dst, "User", []byte(c.in), used)
				if err != nil || m != n || string(got) != string(out) {
					t.Fatalf("AppendReverseResponse = %s, %d, %v; want %s, %d", got, m, err, out, n)
				}
				if fits := cap(dst) >= len(c.in)+64; fits != (&got[:1][0] == &dst[:1][0]) {
					t.Errorf("written in dst's room: %v, want %v", !fits, fits)
				}
			}
			// The reversed body rewritten forward again is the backend's shape.
			if !strings.Contains(c.in, "Resources") {
				fwd, _, err := s.RewriteResource("User", OpReplace, out)
				if err != nil {
					t.Fatal(err)
				}
				jsonEq(t, string(fwd), string(mustForward(t, s, c.in)))
			}
		})
	}
}

// mustForward is the forward rewrite of in (the backend's resource is already in shape).
func mustForward(t *testing.T, s *Set, in string) []byte {
	out, _, err := s.RewriteResource("User", OpReplace, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAppendReverseUnmoved: a body nothing moves in comes back as itself, whatever dst.
func TestAppendReverseUnmoved(t *testing.T) {
	s := mustCompile(t, testRules())
	body := []byte(`{"id":"1","userName":"a"}`)
	out, n, err := s.AppendReverseResponse(make([]byte, 0, 256), "User", body, usesOf(map[string]string{"User favoriteColor": "favorite_color"}))
	if err != nil || n != 0 || &out[0] != &body[0] {
		t.Fatalf("= %s, %d, %v; want the body itself", out, n, err)
	}
}

func TestReverseOnlyUsedSources(t *testing.T) {
	s := mustCompile(t, testRules())
	in := `{"id":"1","favoriteColor":"red","` + ent + `":{"department":"D"}}`
	// Nothing used: the backend's shape.
	out, n, err := s.ReverseResponse("User", []byte(in), usesOf(nil))
	if err != nil || n != 0 || string(out) != in {
		t.Fatalf("%s %d %v", out, n, err)
	}
	// The second From of a rule: the value goes there.
	out, n, _ = s.ReverseResponse("User", []byte(in), usesOf(map[string]string{"User favoriteColor": "preferences.favoriteColor"}))
	jsonEq(t, string(out), `{"id":"1","preferences":{"favoriteColor":"red"},"`+ent+`":{"department":"D"}}`)
	if n != 1 {
		t.Errorf("moved %d", n)
	}
	// A source that is no From of the rule is ignored; so is a source already present.
	for _, src := range []string{"bogus", "favoriteColor"} {
		out, n, _ = s.ReverseResponse("User", []byte(in), usesOf(map[string]string{"User favoriteColor": src}))
		if n != 0 || string(out) != in {
			t.Errorf("%s: %s", src, out)
		}
	}
	both := `{"favoriteColor":"red","favorite_color":"blue"}`
	out, n, _ = s.ReverseResponse("User", []byte(both), usesOf(map[string]string{"User favoriteColor": "favorite_color"}))
	if n != 0 || string(out) != both {
		t.Errorf("present source overwritten: %s", out)
	}
	for _, bad := range []string{"", "[1]", "nope"} {
		if out, _, err := s.ReverseResponse("User", []byte(bad), usesOf(map[string]string{"User favoriteColor": "favorite_color"})); err == nil || string(out) != bad {
			t.Errorf("%q: %s %v", bad, out, err)
		}
	}
}

// TestReverseShortcut: skipping the parse of a body that names no attribute to move back
// answers byte for byte what the full reverse mapping does, over the fixtures, their
// forward rewrites (which hold the targets), ListResponses of them and escaped spellings.
func TestReverseShortcut(t *testing.T) {
	s := mustCompile(t, testRules())
	useds := []SourceFunc{
		usesOf(map[string]string{"User favoriteColor": "favorite_color", "User " + ent + ":department": "department",
			"User name.givenName": "firstName", "group displayName": "groupName"}),
		usesOf(map[string]string{"User favoriteColor": "preferences.favoriteColor", "User " + ent + ":department": "department",
			"User " + `emails[type eq "work"].value`: "workEmail", "User addresses": "postalAddresses"}),
		usesOf(map[string]string{"group displayName": "groupName"}),
	}
	var bodies []string
	for _, b := range fuzzSeeds {
		bodies = append(bodies, b)
		if fwd, _, err := s.RewriteResource("User", OpCreate, []byte(b)); err == nil {
			bodies = append(bodies, string(fwd), `{"Resources":[`+string(fwd)+`,{"displayName":"g","meta":{"resourceType":"Group"}}]}`)
		}
	}
	bodies = append(bodies,
		`{"id":"1","FAVORITECOLOR":"red"}`, `{"id":"1","favorite\u0043olor":"red"}`, `{"id":"1","\u0066avoriteColor":"red"}`,
		`{"id":"1","note":"\u0026","favoriteColor":"red"}`, `{"id":"1","note":"\u0026"}`, `{"`+ent+`:department":"D"}`,
		`{"Resources":[{"displayName":"g","meta":{"resourceType":"Group"}}]}`, `{"Resources":[]}`, `{"favoriteColor":`, ` {}`)
	for _, b := range bodies {
		for i, used := range useds {
			want, wn, werr := s.appendReverse(nil, "User", []byte(b), used)
			got, gn, gerr := s.AppendReverseResponse(nil, "User", []byte(b), used)
			if string(got) != string(want) || gn != wn || (gerr == nil) != (werr == nil) && !(gerr == nil && !s.mayReverse([]byte(b), used)) {
				t.Errorf("used %d, %s:\n shortcut %s %d %v\n     full %s %d %v", i, b, got, gn, gerr, want, wn, werr)
			}
		}
	}
	// The look itself: names in any case, escaped or not, and only the used targets'.
	for _, c := range []struct {
		body string
		want bool
	}{
		{`{"FavoriteCOLOR":1}`, true}, {`{"x":"favoritecolor"}`, true}, {`{"favorite_colour":1}`, false},
		{`{"\u0046avoriteColor":1}`, true}, {`{"a":"\u003c\u0026"}`, false}, {`{"` + ent + `:department":1}`, true},
		{`{"displayName":1}`, true}, {`{"nickName":1,"addresses":[]}`, false}, {`{"givenName":1}`, true}, {`{"name":{"familyName":1}}`, false},
	} {
		if got := s.mayReverse([]byte(c.body), useds[0]); got != c.want {
			t.Errorf("mayReverse(%s) = %v, want %v", c.body, got, c.want)
		}
	}
}
