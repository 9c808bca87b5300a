package rules

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestRewritePatch(t *testing.T) {
	s := mustCompile(t, testRules())
	ops := func(parts ...string) string { return patchPrefix + strings.Join(parts, ",") + patchSuffix }
	tests := []struct {
		name     string
		rt       string
		in, want string // want "" means: unchanged (the same slice)
		findings []string
	}{
		{name: "okta deactivate passes untouched", rt: "User", in: oktaDeactivate},
		{
			name: "entra capitalised ops: only the From path is rewritten",
			rt:   "User", in: entraUpdate,
			want: ops(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@contoso.test"}`,
				`{"op":"Replace","path":"name.familyName","value":"Smith"}`,
				`{"op":"Add","path":"`+ent+`:department","value":"Sales"}`,
				`{"op":"Replace","path":"active","value":"False"}`),
			findings: []string{"fallback_used " + ent + ":department<-department"},
		},
		{
			name: "value-filtered From path",
			rt:   "User", in: ops(`{"op":"Add","path":"emails[type eq \"other\"].value","value":"x@y.test"}`),
			want:     ops(`{"op":"Add","path":"emails[type eq \"work\"].value","value":"x@y.test"}`),
			findings: []string{`fallback_used emails[type eq "work"].value<-emails[type eq "other"].value`},
		},
		{
			name: "path below a From attribute keeps its filter and sub-attribute",
			rt:   "User", in: ops(`{"op":"replace","path":"postalAddresses[type eq \"work\"].locality","value":"Oslo"}`),
			want:     ops(`{"op":"replace","path":"addresses[type eq \"work\"].locality","value":"Oslo"}`),
			findings: []string{"fallback_used addresses<-postalAddresses"},
		},
		{
			name: "remove op on a From path",
			rt:   "User", in: ops(`{"op":"remove","path":"Favorite_Color"}`),
			want:     ops(`{"op":"remove","path":"favoriteColor"}`),
			findings: []string{"fallback_used favoriteColor<-favorite_color"},
		},
		{
			name: "entra path-less value with dotted and URN-qualified keys",
			rt:   "User", in: entraPathless,
			want: ops(`{"op":"replace","value":{"name.givenName":"Ann","` + ent + `:department":"Ops",` +
				`"` + ent + `:employeeNumber":"7","favoriteColor":"red",` +
				`"emails[type eq \"work\"].value":"o@x.test"}}`),
			findings: []string{
				"fallback_used favoriteColor<-favorite_color",
				"fallback_used " + ent + ":department<-" + ent + ":division",
				`fallback_used emails[type eq "work"].value<-emails[type eq "other"].value`,
			},
		},
		{
			name: "path-less value: dotted From key becomes the target's key",
			rt:   "User", in: ops(`{"op":"replace","value":{"preferences.favoriteColor":"blue","active":true}}`),
			want:     ops(`{"op":"replace","value":{"favoriteColor":"blue","active":true}}`),
			findings: []string{"fallback_used favoriteColor<-preferences.favoriteColor"},
		},
		{
			name: "path-less value: nested URN object and plain key moving into it",
			rt:   "User", in: ops(`{"op":"add","value":{"department":"Ops","` + ent + `":{"employeeNumber":"8"}}}`),
			want:     ops(`{"op":"add","value":{"` + ent + `":{"employeeNumber":"8","department":"Ops"}}}`),
			findings: []string{"fallback_used " + ent + ":department<-department"},
		},
		{
			name: "path-less value: null clears through the fallback, no defaults or warnings",
			rt:   "User", in: ops(`{"op":"replace","value":{"favorite_color":null}}`),
			want:     ops(`{"op":"replace","value":{"favoriteColor":null}}`),
			findings: []string{"fallback_used favoriteColor<-favorite_color"},
		},
		{name: "entra bare-string manager passes untouched", rt: "User", in: entraManager},
		{name: "okta group membership passes untouched", rt: "Group", in: oktaGroupMembers},
		{name: "entra group membership passes untouched", rt: "Group", in: entraGroupMembers},
		{name: "onelogin group membership passes untouched", rt: "Group", in: oneLoginGroupMembers},
		{
			name: "group rename through a From path and a path-less value",
			rt:   "Group", in: ops(`{"op":"replace","path":"groupName","value":"Ops"}`, `{"op":"replace","value":{"id":"g1","groupName":"Ops"}}`),
			want:     ops(`{"op":"replace","path":"displayName","value":"Ops"}`, `{"op":"replace","value":{"id":"g1","displayName":"Ops"}}`),
			findings: []string{"fallback_used displayName<-groupName", "fallback_used displayName<-groupName"},
		},
		{
			name: "operations on dropped attributes are removed",
			rt:   "User",
			in: ops(`{"op":"replace","path":"password","value":"x"}`, `{"op":"replace","value":{"password":"y"}}`,
				`{"op":"replace","value":{"password":"z","active":true}}`, `{"op":"Remove","path":"`+ent+`:manager.displayName"}`),
			want:     ops(`{"op":"replace","value":{"active":true}}`),
			findings: []string{"dropped password", "dropped password", "dropped password", "dropped " + ent + ":manager.displayName"},
		},
		{
			name:     "only-on-create attributes leave updates",
			rt:       "User",
			in:       ops(`{"op":"replace","path":"nickName","value":"x"}`, `{"op":"add","path":"nick","value":"y"}`, `{"op":"replace","value":{"nick":"z","title":"t"}}`),
			want:     ops(`{"op":"replace","value":{"title":"t"}}`),
			findings: []string{"dropped nickName", "dropped nickName<-nick", "dropped nickName<-nick"},
		},
		{
			name: "operation on a whole extension: its value is rewritten",
			rt:   "User", in: ops(`{"op":"add","path":"` + ent + `","value":{"division":"Ops","employeeNumber":"9"}}`),
			want:     ops(`{"op":"add","path":"` + ent + `","value":{"department":"Ops","employeeNumber":"9"}}`),
			findings: []string{"fallback_used " + ent + ":department<-" + ent + ":division"},
		},
		{
			name: "operation on a parent of a From path: the moved value becomes its own operation",
			rt:   "User", in: ops(`{"op":"replace","path":"preferences","value":{"favoriteColor":"c","theme":"dark"}}`),
			want:     ops(`{"op":"replace","path":"preferences","value":{"theme":"dark"}}`, `{"op":"replace","path":"favoriteColor","value":"c"}`),
			findings: []string{"fallback_used favoriteColor<-preferences.favoriteColor"},
		},
		{
			name: "operation on a multi-valued parent: elements are rewritten",
			rt:   "User", in: ops(`{"op":"add","path":"emails","value":[{"type":"other","value":"o@x.test"}]}`),
			want:     ops(`{"op":"add","path":"emails","value":[{"type":"work","value":"o@x.test"}]}`),
			findings: []string{`fallback_used emails[type eq "work"].value<-emails[type eq "other"].value`},
		},
		{
			name: "lower-case operations member, upper-case op",
			rt:   "User", in: `{"operations":[{"OP":"ADD","Path":"favorite_color","Value":"red"}]}`,
			want:     `{"operations":[{"OP":"ADD","Path":"favoriteColor","Value":"red"}]}`,
			findings: []string{"fallback_used favoriteColor<-favorite_color"},
		},
		{
			name: "unparseable path: operation left alone with a warning",
			rt:   "User", in: ops(`{"op":"replace","path":"emails[type eq","value":"x"}`, `{"op":"frobnicate","path":"favorite_color"}`, `{"value":1}`),
			findings: []string{"unparseable emails[type eq", "unparseable ", "unparseable "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			out, findings, err := s.RewritePatch(tt.rt, in)
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
			if !gjson.ValidBytes(out) {
				t.Fatalf("invalid JSON out: %s", out)
			}
			checkIdempotent(t, func(b []byte) ([]byte, []Finding, error) { return s.RewritePatch(tt.rt, b) }, out)
		})
	}
}

func TestRewritePatchUnparseable(t *testing.T) {
	s := mustCompile(t, testRules())
	for _, in := range []string{"", "null", "[]", `{"Operations":`, `{"schemas":[]}`, `{"Operations":{"op":"add"}}`,
		`{"Operations":[1]}`, `{"Operations":[{"op":"add","value":{}},"x"]}`, `{"Operations":"add"}`} {
		body := []byte(in)
		out, f, err := s.RewritePatch("User", body)
		if err == nil {
			t.Fatalf("%q: want an error", in)
		}
		if !bytes.Equal(out, body) || len(f) != 0 {
			t.Fatalf("%q: want the input back, got %q %v", in, out, f)
		}
	}
}
