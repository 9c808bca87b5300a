package rules

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"
)

// findingKeys renders findings as "code attribute[<-source]" for comparison.
func findingKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		k := f.Code + " " + f.Attribute
		if f.Source != "" {
			k += "<-" + f.Source
		}
		out = append(out, k)
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameSlice reports whether a and b share their first byte (the same backing array).
func sameSlice(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// checkIdempotent rewrites out again and fails unless the bytes stay identical and no
// finding says something was moved, defaulted or dropped.
func checkIdempotent(t *testing.T, again func([]byte) ([]byte, []Finding, error), out []byte) {
	t.Helper()
	out2, f2, err := again(out)
	if err != nil {
		t.Fatalf("second rewrite: %v", err)
	}
	if !bytes.Equal(out2, out) {
		t.Fatalf("not idempotent:\n first: %s\nsecond: %s", out, out2)
	}
	for _, f := range f2 {
		if f.Code == CodeFallback || f.Code == CodeDefault || f.Code == CodeDropped {
			t.Fatalf("second rewrite still reports %+v", f)
		}
	}
}

func TestRewriteResource(t *testing.T) {
	s := mustCompile(t, testRules())
	tests := []struct {
		name     string
		rt       string
		op       Operation
		in, want string // want "" means: unchanged (the same slice)
		findings []string
	}{
		{
			name: "okta create: top-level rename in place, password dropped",
			rt:   "User", op: OpCreate, in: oktaCreateUser,
			want: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada.l@example.com",` +
				`"name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"primary":true,"value":"ada.l@example.com","type":"work"}],` +
				`"displayName":"Ada Lovelace","locale":"en-GB","externalId":"00u1ada9x","groups":[],"active":true,` +
				`"favoriteColor":"green"}`,
			findings: []string{"dropped password", "fallback_used favoriteColor<-favorite_color", "missing_attribute " + ent + ":department"},
		},
		{
			name: "nested fallback; emptied parent removed",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","preferences":{"favoriteColor":"red"},"locale":"fr","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","locale":"fr","` + ent + `":{"department":"d"},"favoriteColor":"red"}`,
			findings: []string{"fallback_used favoriteColor<-preferences.favoriteColor"},
		},
		{
			name: "nested fallback; parent with other members kept",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","preferences":{"favoriteColor":"red","theme":"dark"},"locale":"fr","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","preferences":{"theme":"dark"},"locale":"fr","` + ent + `":{"department":"d"},"favoriteColor":"red"}`,
			findings: []string{"fallback_used favoriteColor<-preferences.favoriteColor"},
		},
		{
			name: "entra create: URN fallback renamed inside the extension, nested drop",
			rt:   "User", op: OpCreate, in: entraCreateUser,
			want: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + ent + `"],"externalId":"e1c3",` +
				`"userName":"grace@contoso.test","active":true,"displayName":"Grace Hopper","title":null,` +
				`"name":{"formatted":"Grace Hopper","familyName":"Hopper","givenName":"Grace"},` +
				`"emails":[{"primary":true,"type":"work","value":"grace@contoso.test"}],"favoriteColor":"blue","locale":"en-US",` +
				`"` + ent + `":{"employeeNumber":"42","department":"Navy","manager":{"value":"m-1"}}}`,
			findings: []string{"dropped " + ent + ":manager.displayName", "fallback_used " + ent + ":department<-" + ent + ":division"},
		},
		{
			name: "top-level attribute moves into a new extension object; schemas gains the URN",
			rt:   "User", op: OpCreate,
			in:       `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","department":"R&D","favoriteColor":"x","locale":"de"}`,
			want:     `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + ent + `"],"userName":"a","favoriteColor":"x","locale":"de","` + ent + `":{"department":"R&D"}}`,
			findings: []string{"fallback_used " + ent + ":department<-department"},
		},
		{
			name: "value-filtered fallback: element left with only its filter attribute is removed",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","emails":[{"type":"other","value":"a@x.test"},{"type":"home","value":"a@home.test"}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","emails":[{"type":"home","value":"a@home.test"},{"type":"work","value":"a@x.test"}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			findings: []string{`fallback_used emails[type eq "work"].value<-emails[type eq "other"].value`},
		},
		{
			name: "value-filtered fallback: element with other attributes is kept",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","emails":[{"type":"Other","value":"a@x.test","primary":true}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","emails":[{"type":"Other","primary":true},{"type":"work","value":"a@x.test"}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			findings: []string{`fallback_used emails[type eq "work"].value<-emails[type eq "other"].value`},
		},
		{
			name: "plain fallback into a value-filtered target fills the matching element",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","workEmail":"w@x.test","emails":[{"type":"home","value":"h@x.test"},{"type":"work","primary":true}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","emails":[{"type":"home","value":"h@x.test"},{"type":"work","primary":true,"value":"w@x.test"}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			findings: []string{`fallback_used emails[type eq "work"].value<-workEmail`},
		},
		{
			name: "plain fallback into a value-filtered target creates the array",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","workEmail":"w@x.test","favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"},"emails":[{"type":"work","value":"w@x.test"}]}`,
			findings: []string{`fallback_used emails[type eq "work"].value<-workEmail`},
		},
		{
			name: "sub-attribute fallback into an existing complex attribute",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","firstName":"Ann","name":{"familyName":"Lee"},"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","name":{"familyName":"Lee","givenName":"Ann"},"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			findings: []string{"fallback_used name.givenName<-firstName"},
		},
		{
			name: "default set when target and fallbacks are absent",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","favoriteColor":"x","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","favoriteColor":"x","` + ent + `":{"department":"d"},"locale":"en-US"}`,
			findings: []string{"default_used locale"},
		},
		{
			name: "case variants are matched and renamed to the rule's spelling",
			rt:   "USER", op: OpCreate,
			in:       `{"UserName":"a","Favorite_Color":"red","LOCALE":"x","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"Department":"d"}}`,
			want:     `{"userName":"a","favoriteColor":"red","locale":"x","` + ent + `":{"department":"d"}}`,
			findings: []string{"fallback_used favoriteColor<-favorite_color"},
		},
		{
			name: "target present: fallbacks are removed without findings",
			rt:   "User", op: OpCreate,
			in:   `{"userName":"a","favoriteColor":"blue","favorite_color":"red","preferences":{"favoriteColor":"green"},"locale":"x","` + ent + `":{"department":"d"}}`,
			want: `{"userName":"a","favoriteColor":"blue","locale":"x","` + ent + `":{"department":"d"}}`,
		},
		{
			name: "explicit null target is filled in place",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","favoriteColor":null,"locale":"x","favorite_color":"red","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","favoriteColor":"red","locale":"x","` + ent + `":{"department":"d"}}`,
			findings: []string{"fallback_used favoriteColor<-favorite_color"},
		},
		{
			name: "explicit null fallback is removed; target reported missing",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","favorite_color":null,"locale":"x","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","locale":"x","` + ent + `":{"department":"d"}}`,
			findings: []string{"missing_attribute favoriteColor"},
		},
		{
			name: "onelogin full PUT: only-on-create target and fallback dropped",
			rt:   "User", op: OpReplace, in: oneLoginPut,
			want: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223","externalId":"ol-77",` +
				`"userName":"linus","name":{"givenName":"Linus","familyName":"T"},` +
				`"emails":[{"value":"linus@example.net","type":"work","primary":true}],"active":false,"locale":"fi",` +
				`"favoriteColor":"grey","` + ent + `":{"department":"Kernel"},` +
				`"meta":{"resourceType":"User","location":"/Users/2819c223"},"groups":[{"value":"g1","display":"Devs"}]}`,
			findings: []string{"dropped nickName", "dropped nickName<-nick"},
		},
		{
			name: "only-on-create fallback used on create",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","nick":"al","favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","nickName":"al","favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			findings: []string{"fallback_used nickName<-nick"},
		},
		{
			name: "pretty-printed body keeps its layout",
			rt:   "User", op: OpCreate,
			in:       "{\n  \"userName\": \"a\",\n  \"favorite_color\": \"red\",\n  \"locale\": \"x\" ,\n  \"" + ent + "\": {\n    \"department\": \"d\"\n  }\n}\n",
			want:     "{\n  \"userName\": \"a\",\n  \"favoriteColor\": \"red\",\n  \"locale\": \"x\" ,\n  \"" + ent + "\": {\n    \"department\": \"d\"\n  }\n}\n",
			findings: []string{"fallback_used favoriteColor<-favorite_color"},
		},
		{
			name: "pretty-printed body: added member copies the indentation",
			rt:   "User", op: OpCreate,
			in:       "{\n  \"userName\": \"a\",\n  \"favoriteColor\": \"x\",\n  \"" + ent + "\": {\"department\": \"d\"}\n}",
			want:     "{\n  \"userName\": \"a\",\n  \"favoriteColor\": \"x\",\n  \"" + ent + "\": {\"department\": \"d\"},\n  \"locale\": \"en-US\"\n}",
			findings: []string{"default_used locale"},
		},
		{
			name: "a value of another kind in the target's place: fallback kept, warning",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","name":"Ada L","firstName":"Ada","favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			findings: []string{"unparseable name.givenName<-firstName"},
		},
		{
			name: "drop of a value-filtered element",
			rt:   "User", op: OpCreate,
			in:       `{"userName":"a","phoneNumbers":[{"type":"fax","value":"1"},{"type":"work","value":"2"}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			want:     `{"userName":"a","phoneNumbers":[{"type":"work","value":"2"}],"favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
			findings: []string{`dropped phoneNumbers[type eq "fax"]`},
		},
		{
			name: "core-schema-qualified key counts as the bare attribute",
			rt:   "User", op: OpCreate,
			in: `{"urn:ietf:params:scim:schemas:core:2.0:User:userName":"a","favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"}}`,
		},
		{
			name: "nothing to change: the same slice comes back",
			rt:   "User", op: OpReplace,
			in: `{"userName":"a","favoriteColor":"x","locale":"de","` + ent + `":{"department":"d"},"emails":[{"type":"work","value":"w"}]}`,
		},
		{
			name: "missing warnings only",
			rt:   "User", op: OpCreate,
			in:       `{"locale":"de"}`,
			findings: []string{"missing_attribute favoriteColor", "missing_attribute " + ent + ":department", "missing_attribute userName"},
		},
		{
			name: "group: rename and drop",
			rt:   "Group", op: OpCreate,
			in:       `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"groupName":"Eng","members":[],"owner":"u1"}`,
			want:     `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[]}`,
			findings: []string{"dropped owner", "fallback_used displayName<-groupName"},
		},
		{
			name: "okta group create passes untouched",
			rt:   "Group", op: OpCreate,
			in: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[]}`,
		},
		{
			name: "resource type without rules",
			rt:   "Device", op: OpCreate,
			in: `{"favorite_color":"red","password":"x"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			out, findings, err := s.RewriteResource(tt.rt, tt.op, in)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if tt.want == "" {
				if !sameSlice(out, in) {
					t.Fatalf("want the input slice back, got %s", out)
				}
			} else if string(out) != tt.want {
				t.Fatalf("got  %s\nwant %s", out, tt.want)
			}
			if got := findingKeys(findings); !sameStrings(got, tt.findings) {
				t.Fatalf("findings %q, want %q", got, tt.findings)
			}
			for _, f := range findings {
				wantSev := SeverityInfo
				if f.Code == CodeMissing || f.Code == CodeUnparseable {
					wantSev = SeverityWarning
				}
				if f.Severity != wantSev || f.Message == "" {
					t.Fatalf("finding %+v: want severity %s and a message", f, wantSev)
				}
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("invalid JSON out: %s", out)
			}
			checkIdempotent(t, func(b []byte) ([]byte, []Finding, error) { return s.RewriteResource(tt.rt, tt.op, b) }, out)
		})
	}
}

func TestRewriteResourceUnparseable(t *testing.T) {
	s := mustCompile(t, testRules())
	deep := strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
	for _, in := range []string{"", " ", "null", "[]", `"str"`, "42", `{"a":`, `{"a":1}x`, `{"a" 1}`, "\xff", deep} {
		body := []byte(in)
		for _, op := range []Operation{OpCreate, OpReplace} {
			out, f, err := s.RewriteResource("User", op, body)
			if err == nil {
				t.Fatalf("%q: want an error", in)
			}
			if !bytes.Equal(out, body) || len(f) != 0 {
				t.Fatalf("%q: want the input back and no findings, got %q %v", in, out, f)
			}
			if !strings.Contains(err.Error(), "User") {
				t.Fatalf("%q: error lacks context: %v", in, err)
			}
		}
	}
	if _, _, err := s.RewriteResource("User", OpPatch, []byte(`{}`)); err == nil {
		t.Fatal("OpPatch: want an error")
	}
}

func TestNilAndEmptySet(t *testing.T) {
	var nilSet *Set
	empty := mustCompile(t, nil)
	for _, s := range []*Set{nilSet, empty, mustCompile(t, map[string]ResourceRules{"User": {}})} {
		if !s.Empty() {
			t.Fatal("want Empty")
		}
		body := []byte(`not json`)
		if out, f, err := s.RewriteResource("User", OpCreate, body); err != nil || !sameSlice(out, body) || f != nil {
			t.Fatal("RewriteResource on an empty set changed something")
		}
		if out, f, err := s.RewritePatch("User", body); err != nil || !sameSlice(out, body) || f != nil {
			t.Fatal("RewritePatch on an empty set changed something")
		}
		if out, err := s.RewriteFilter("User", "favorite_color eq 1"); err != nil || out != "favorite_color eq 1" {
			t.Fatal("RewriteFilter on an empty set changed something")
		}
		if out := s.RewriteAttributeList("User", "a,b"); out != "a,b" {
			t.Fatal("RewriteAttributeList on an empty set changed something")
		}
		if out, err := s.RewriteSearch("User", body); err != nil || !sameSlice(out, body) {
			t.Fatal("RewriteSearch on an empty set changed something")
		}
	}
	if mustCompile(t, testRules()).Empty() {
		t.Fatal("test rules reported empty")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := mustCompile(t, testRules())
	want, _, err := s.RewriteResource("User", OpCreate, []byte(entraCreateUser))
	if err != nil {
		t.Fatal(err)
	}
	wantPatch, _, _ := s.RewritePatch("User", []byte(entraPathless))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				out, _, err := s.RewriteResource("User", OpCreate, []byte(entraCreateUser))
				if err != nil || !bytes.Equal(out, want) {
					t.Errorf("concurrent rewrite differs: %s", out)
					return
				}
				p, _, _ := s.RewritePatch("User", []byte(entraPathless))
				if !bytes.Equal(p, wantPatch) {
					t.Errorf("concurrent patch differs: %s", p)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCoreSchemaQualifiedRules(t *testing.T) {
	const core = "urn:ietf:params:scim:schemas:core:2.0:User:"
	s := mustCompile(t, map[string]ResourceRules{"User": {Rules: []Rule{
		{Target: core + "nickName", From: []string{core + "nick_name"}},
	}}})
	out, f, err := s.RewriteResource("User", OpCreate, []byte(`{"userName":"a","nick_name":"x"}`))
	if err != nil || string(out) != `{"userName":"a","nickName":"x"}` || len(f) != 1 || f[0].Attribute != core+"nickName" || f[0].Source != core+"nick_name" {
		t.Fatalf("got %s %+v %v", out, f, err)
	}
	if got, err := s.RewriteFilter("User", `nick_name eq "x"`); err != nil || got != `nickName eq "x"` {
		t.Fatalf("filter: %q %v", got, err)
	}
	out, _, err = s.RewritePatch("User", []byte(patchPrefix+`{"op":"replace","path":"`+core+`nick_name","value":"y"}`+patchSuffix))
	if err != nil || string(out) != patchPrefix+`{"op":"replace","path":"nickName","value":"y"}`+patchSuffix {
		t.Fatalf("patch: %s %v", out, err)
	}
}

func TestConcurrentReadPaths(t *testing.T) {
	s := mustCompile(t, testRules())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if out, err := s.RewriteFilter("User", `emails[type eq "other"].value eq "x"`); err != nil || out != `emails[type eq "work"].value eq "x"` {
					t.Errorf("filter: %q %v", out, err)
					return
				}
				if out, _, err := s.RewritePatch("User", []byte(entraUpdate)); err != nil || bytes.Equal(out, []byte(entraUpdate)) {
					t.Errorf("patch: %s %v", out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
