package rules

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// fuzzSeeds are the IdP-shaped payloads of the table tests.
var fuzzSeeds = []string{
	oktaCreateUser, entraCreateUser, oneLoginPut,
	oktaDeactivate, entraUpdate, entraPathless, entraManager,
	oktaGroupMembers, entraGroupMembers, oneLoginGroupMembers,
	`{"UserName":"a","Favorite_Color":"red","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"Department":"d"}}`,
	`{"userName":"a","preferences":{"favoriteColor":"red","theme":"dark"},"department":"R&D","emails":[{"type":"other","value":"o"}],"workEmail":"w","firstName":"F","nick":"n"}`,
	`{"userName":"a","favoriteColor":null,"favorite_color":"red","name":"x","firstName":"y","emails":null,"workEmail":"w","phoneNumbers":[{"type":"fax"}]}`,
	patchPrefix + `{"op":"replace","path":"preferences","value":{"favoriteColor":"c","theme":"dark"}},{"op":"add","path":"` + ent + `","value":{"division":"Ops"}},{"op":"add","path":"emails","value":[{"type":"other","value":"o"}]}` + patchSuffix,
	patchPrefix + `{"op":"replace","path":"password","value":"x"},{"op":"replace","value":{"nick":"z","password":"p"}},{"op":"remove","path":"postalAddresses[type eq \"work\"].locality"}` + patchSuffix,
}

var fuzzFilterSeeds = []string{
	`favorite_color eq "red"`, `userName eq "bjensen"`, `emails[type eq "other"].value eq "o@x.test"`,
	`(favorite_color eq "red" or preferences.favoriteColor eq "blue") and not (department pr)`,
	`emails[type eq "other" and value co "@x"]`, `workEmail eq "w"`, `postalAddresses[type eq "work" and locality eq "Oslo"]`,
	ent + `:division eq "Ops"`, `favorite_color eq "a \"q\" \\ v" or x eq 1.5e3 or y eq false or z eq null`,
	`groupName eq "Eng"`, `emails[not (type eq "other")]`, `a gt 1 and (b lt 2 or c le 3)`,
}

func fuzzSet(tb testing.TB) *Set { return mustCompile(tb, testRules()) }

// secondPassClean fails when a second rewrite still moved, defaulted or dropped.
func secondPassClean(t *testing.T, fs []Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Code == CodeFallback || f.Code == CodeDefault || f.Code == CodeDropped {
			t.Fatalf("second rewrite reports %+v", f)
		}
	}
}

func FuzzRewriteResource(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	s := fuzzSet(f)
	f.Fuzz(func(t *testing.T, body []byte, replace bool) {
		op := OpCreate
		if replace {
			op = OpReplace
		}
		orig := bytes.Clone(body)
		for _, rt := range []string{"User", "Group"} {
			out, _, err := s.RewriteResource(rt, op, body)
			if !bytes.Equal(body, orig) {
				t.Fatal("input modified")
			}
			if err != nil {
				if !bytes.Equal(out, body) {
					t.Fatalf("error %v but output differs", err)
				}
				continue
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("invalid JSON out: %s", out)
			}
			out2, f2, err := s.RewriteResource(rt, op, out)
			if err != nil {
				t.Fatalf("second rewrite: %v", err)
			}
			if !bytes.Equal(out2, out) {
				t.Fatalf("not idempotent:\n   in: %s\nfirst: %s\nsecond: %s", body, out, out2)
			}
			secondPassClean(t, f2)
		}
	})
}

func FuzzRewritePatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
		f.Add([]byte(patchPrefix + `{"op":"add","value":` + s + `}` + patchSuffix))
	}
	s := fuzzSet(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		for _, rt := range []string{"User", "Group"} {
			out, _, err := s.RewritePatch(rt, body)
			if !bytes.Equal(body, orig) {
				t.Fatal("input modified")
			}
			if err != nil {
				if !bytes.Equal(out, body) {
					t.Fatalf("error %v but output differs", err)
				}
				continue
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("invalid JSON out: %s", out)
			}
			out2, f2, err := s.RewritePatch(rt, out)
			if err != nil {
				t.Fatalf("second rewrite: %v", err)
			}
			if !bytes.Equal(out2, out) {
				t.Fatalf("not idempotent:\n   in: %s\nfirst: %s\nsecond: %s", body, out, out2)
			}
			secondPassClean(t, f2)
		}
	})
}

func FuzzRewriteFilter(f *testing.F) {
	for _, s := range fuzzFilterSeeds {
		f.Add(s)
	}
	s := fuzzSet(f)
	f.Fuzz(func(t *testing.T, in string) {
		for _, rt := range []string{"User", "Group"} {
			out, err := s.RewriteFilter(rt, in)
			if err != nil {
				if out != in {
					t.Fatalf("error %v but output differs", err)
				}
				continue
			}
			out2, err := s.RewriteFilter(rt, out)
			if err != nil {
				t.Fatalf("rewritten filter %q does not parse: %v", out, err)
			}
			if out2 != out {
				t.Fatalf("not idempotent:\n   in: %s\nfirst: %s\nsecond: %s", in, out, out2)
			}
		}
		// Attribute lists and search bodies must not panic either, and be idempotent.
		l := s.RewriteAttributeList("User", in)
		if l2 := s.RewriteAttributeList("User", l); l2 != l {
			t.Fatalf("attribute list not idempotent: %q -> %q -> %q", in, l, l2)
		}
		body := []byte(`{"filter":` + quote(in) + `,"attributes":` + quote(in) + `}`)
		if out, err := s.RewriteSearch("User", body); err == nil {
			if out2, err := s.RewriteSearch("User", out); err != nil || !bytes.Equal(out2, out) {
				t.Fatalf("search not idempotent: %s -> %s (%v)", out, out2, err)
			}
		} else if !strings.Contains(err.Error(), "search") {
			t.Fatalf("search error lacks context: %v", err)
		}
	})
}

// vocab holds the keys and strings the structured fuzzer builds bodies from: the
// names the rules know, in several spellings, so the rewriting paths are exercised.
var vocab = []string{
	"userName", "UserName", "favoriteColor", "favorite_color", "Favorite_Color", "preferences", "Preferences",
	"favoriteColor", "department", ent, strings.ToUpper(ent), ent + ":division", ent + ":department", "division",
	"emails", "Emails", "type", "Type", "value", "other", "work", "Work", "home", "primary", "workEmail",
	"name", "givenName", "firstName", "name.givenName", "locale", "nick", "nickName", "password", "manager",
	"displayName", "phoneNumbers", "fax", "postalAddresses", "addresses", "locality", "schemas", "groupName",
	`emails[type eq "other"].value`, `emails[type eq "work"].value`, "preferences.favoriteColor", "owner",
	"urn:ietf:params:scim:schemas:core:2.0:User:userName", "urn:ietf:params:scim:schemas:core:2.0:User",
}

// gen builds a JSON value from fuzz bytes.
type gen struct {
	b []byte
	i int
}

func (g *gen) next() int {
	if g.i >= len(g.b) {
		return 0
	}
	g.i++
	return int(g.b[g.i-1])
}

func (g *gen) word() string { return quote(vocab[g.next()%len(vocab)]) }

func (g *gen) value(depth int) string {
	switch k := g.next() % 9; {
	case k == 0:
		return "null"
	case k == 1:
		return "true"
	case k == 2:
		return "[]"
	case k == 3 && depth < 3:
		return g.object(depth + 1)
	case k == 4 && depth < 3:
		n := g.next() % 4
		parts := make([]string, n)
		for i := range parts {
			parts[i] = g.object(depth + 1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case k == 5:
		return "7"
	}
	return g.word()
}

func (g *gen) object(depth int) string {
	n := g.next() % 6
	parts := make([]string, n)
	for i := range parts {
		parts[i] = g.word() + ":" + g.value(depth)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func FuzzRewriteStructured(f *testing.F) {
	f.Add([]byte{5, 3, 3, 4, 3, 2, 1, 14, 4, 2, 3, 2, 15, 1, 17, 18})
	f.Add([]byte("the quick brown fox jumps over the lazy dog, twice over the fence"))
	f.Add([]byte{0x10, 0x22, 0x35, 0x47, 0x59, 0x6b, 0x7d, 0x8f, 0x91, 0xa3, 0xb5, 0xc7})
	s := fuzzSet(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{b: data}
		obj := g.object(0)
		patch := patchPrefix + `{"op":"replace","value":` + obj + `},{"op":"add","path":` + g.word() + `,"value":` + g.value(1) + `}` + patchSuffix
		for _, rt := range []string{"User", "Group"} {
			for _, op := range []Operation{OpCreate, OpReplace} {
				out, _, err := s.RewriteResource(rt, op, []byte(obj))
				if err != nil {
					t.Fatalf("resource %s: %v", obj, err)
				}
				out2, f2, err := s.RewriteResource(rt, op, out)
				if err != nil || !bytes.Equal(out, out2) {
					t.Fatalf("resource not idempotent (%v):\n   in: %s\nfirst: %s\nsecond: %s", err, obj, out, out2)
				}
				secondPassClean(t, f2)
			}
			out, _, err := s.RewritePatch(rt, []byte(patch))
			if err != nil {
				t.Fatalf("patch %s: %v", patch, err)
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("invalid JSON out: %s", out)
			}
			out2, f2, err := s.RewritePatch(rt, out)
			if err != nil || !bytes.Equal(out, out2) {
				t.Fatalf("patch not idempotent (%v):\n   in: %s\nfirst: %s\nsecond: %s", err, patch, out, out2)
			}
			secondPassClean(t, f2)
		}
	})
}

// FuzzParseSimple checks the fast path parser against the filter parser.
func FuzzParseSimple(f *testing.F) {
	for _, s := range []string{"userName", "name.givenName", ent + ":manager.value", "$ref", "a.b.c", "a:", ":a",
		"urn:a:b.c", "x-y_z", "9a", "a..b", "urn::a", "a.b:c", "urn:ietf:params:scim:schemas:core:2.0:User:userName", `emails[type eq "work"].value`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uri, attr, sub, ok := parseSimple(s)
		p, err := parsePathSafe(s)
		full := err == nil && p.ValueExpression == nil
		if ok != full {
			t.Fatalf("%q: fast parser ok=%v, filter parser ok=%v (%v)", s, ok, full, err)
		}
		if ok && (uri != p.AttributePath.URI() || attr != p.AttributePath.AttributeName || sub != p.AttributePath.SubAttributeName()) {
			t.Fatalf("%q: fast (%q %q %q) != filter parser %+v", s, uri, attr, sub, p)
		}
	})
}
