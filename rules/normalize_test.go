package rules

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// jsonEq compares two JSON texts by value.
func jsonEq(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

const po = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`

func TestNormalizePatch(t *testing.T) {
	all := Normalization{true, true, true, true, true}
	cases := []struct {
		name  string
		n     Normalization
		in    string
		want  string
		kinds []string
	}{
		{"entra disable: capitalised op, string boolean", all,
			po + `{"op":"Replace","path":"active","value":"False"}]}`,
			po + `{"op":"replace","path":"active","value":false}]}`, []string{KindOpCase, KindBooleans}},
		{"booleans only keeps the op's case", Normalization{Booleans: true},
			po + `{"op":"Replace","path":"active","value":"TRUE"}]}`,
			po + `{"op":"Replace","path":"active","value":true}]}`, []string{KindBooleans}},
		{"string that is no boolean stays", all,
			po + `{"op":"replace","path":"active","value":"yes"}]}`, "", nil},
		{"a string attribute holding \"true\" stays", all,
			po + `{"op":"replace","path":"title","value":"True"}]}`, "", nil},
		{"filtered primary", all,
			po + `{"op":"replace","path":"emails[type eq \"work\"].primary","value":"True"}]}`,
			po + `{"op":"replace","path":"emails[type eq \"work\"].primary","value":true}]}`, []string{KindBooleans}},
		{"emails array value", all,
			po + `{"op":"add","path":"emails","value":[{"type":"work","value":"a@x","primary":"true"}]}]}`,
			po + `{"op":"add","path":"emails","value":[{"type":"work","value":"a@x","primary":true}]}]}`, []string{KindBooleans}},
		{"entra member removal by value array", all,
			po + `{"op":"Remove","path":"members","value":[{"value":"u1"},{"value":"u\"2"}]}]}`,
			po + `{"op":"remove","path":"members[value eq \"u1\"]"},{"op":"remove","path":"members[value eq \"u\\\"2\"]"}]}`,
			[]string{KindOpCase, KindMemberRemoval}},
		{"member removal with a non-object element stays", Normalization{MemberRemoval: true},
			po + `{"op":"remove","path":"members","value":["u1"]}]}`, "", nil},
		{"remove of all members without value stays", all,
			po + `{"op":"remove","path":"members"}]}`, "", nil},
		{"bare-string manager by path", all,
			po + `{"op":"Add","path":"` + ent + `:manager","value":"m-9"}]}`,
			po + `{"op":"add","path":"` + ent + `:manager","value":{"value":"m-9"}}]}`, []string{KindOpCase, KindManager}},
		{"bare-string manager in a path-less URN key", Normalization{Manager: true},
			po + `{"op":"replace","value":{"` + ent + `:manager":"m-9"}}]}`,
			po + `{"op":"replace","value":{"` + ent + `:manager":{"value":"m-9"}}}]}`, []string{KindManager}},
		{"bare-string manager in the extension object", Normalization{Manager: true},
			po + `{"op":"replace","path":"` + ent + `","value":{"manager":"m-9","department":"D"}}]}`,
			po + `{"op":"replace","path":"` + ent + `","value":{"manager":{"value":"m-9"},"department":"D"}}]}`, []string{KindManager}},
		{"manager object stays", all,
			po + `{"op":"add","path":"` + ent + `:manager","value":{"value":"m-9"}}]}`, "", nil},
		{"dotted keys nest and merge", all,
			po + `{"op":"replace","value":{"name.givenName":"Cara","active":"False","name.familyName":"Ng","` + ent + `:employeeNumber":"7"}}]}`,
			po + `{"op":"replace","value":{"name":{"givenName":"Cara","familyName":"Ng"},"active":false,"` + ent + `:employeeNumber":"7"}}]}`,
			[]string{KindDottedKeys, KindDottedKeys, KindBooleans}},
		{"dotted key merges into an existing object", Normalization{DottedKeys: true},
			po + `{"op":"replace","value":{"name":{"formatted":"C N"},"name.givenName":"Cara"}}]}`,
			po + `{"op":"replace","value":{"name":{"formatted":"C N","givenName":"Cara"}}}]}`, []string{KindDottedKeys}},
		{"a versioned extension URN is no dotted key", Normalization{DottedKeys: true},
			po + `{"op":"replace","value":{"urn:example:ext:1.0":{"vip":true},"x.1":"y"}}]}`, "", nil},
		{"dotted key under a string stays", Normalization{DottedKeys: true},
			po + `{"op":"replace","value":{"name":"x","name.givenName":"Cara"}}]}`, "", nil},
		{"okta path-less deactivate is already standard", all,
			po + `{"op":"replace","value":{"active":false}}]}`, "", nil},
		{"unchanged operations around a changed one keep their place", all,
			po + `{"op":"add","path":"title","value":"x"}, "junk", {"op":"Replace","path":"active","value":"False"},{"op":"remove","path":"nickName"}]}`,
			po + `{"op":"add","path":"title","value":"x"},"junk",{"op":"replace","path":"active","value":false},{"op":"remove","path":"nickName"}]}`,
			[]string{KindOpCase, KindBooleans}},
		{"a member removal after unchanged operations", all,
			po + `{"op":"add","path":"displayName","value":"g"},{"op":"remove","path":"members","value":[{"value":"u1"},{"value":"u2"}]}]}`,
			po + `{"op":"add","path":"displayName","value":"g"},{"op":"remove","path":"members[value eq \"u1\"]"},{"op":"remove","path":"members[value eq \"u2\"]"}]}`,
			[]string{KindMemberRemoval}},
		{"switches off", Normalization{},
			po + `{"op":"Replace","path":"active","value":"False"}]}`, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, fs, err := NormalizePatch(c.n, nil, []byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if string(out) != c.in || len(fs) != 0 {
					t.Fatalf("changed: %s %+v", out, fs)
				}
				return
			}
			jsonEq(t, string(out), c.want)
			var kinds []string
			for _, f := range fs {
				if f.Code != CodeNormalized || f.Severity != SeverityInfo || f.Message == "" {
					t.Errorf("finding %+v", f)
				}
				kinds = append(kinds, f.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(c.kinds, ",") {
				t.Errorf("kinds %v, want %v", kinds, c.kinds)
			}
			again, fs2, err := NormalizePatch(c.n, nil, out)
			if err != nil || string(again) != string(out) || len(fs2) != 0 {
				t.Errorf("not idempotent: %s %+v %v", again, fs2, err)
			}
		})
	}
}

func TestNormalizeUsesBackendSchema(t *testing.T) {
	types := AttrTypes{"active": "boolean", "urn:example:ext:1.0:user:vip": "boolean", "urn:example:ext:1.0:user:vip2": "string"}
	in := `{"userName":"a","active":"false","urn:example:ext:1.0:User":{"vip":"True","vip2":"True"}}`
	out, fs, err := NormalizeResource(Normalization{Booleans: true}, types, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, string(out), `{"userName":"a","active":false,"urn:example:ext:1.0:User":{"vip":true,"vip2":"True"}}`)
	if len(fs) != 2 {
		t.Errorf("findings %+v", fs)
	}
	// The backend says emails.primary is a string: leave it.
	in = `{"emails":[{"value":"x","primary":"True"}]}`
	out, _, _ = NormalizeResource(Normalization{Booleans: true}, AttrTypes{"emails.primary": "string"}, []byte(in))
	if string(out) != in {
		t.Errorf("changed: %s", out)
	}
}

func TestNormalizeErrors(t *testing.T) {
	n := Normalization{OpCase: true}
	for _, in := range []string{``, `[]`, `{"Operations":{}}`, `{"a":`, strings.Repeat("[", 200) + strings.Repeat("]", 200)} {
		out, _, err := NormalizePatch(n, nil, []byte(in))
		if err == nil || string(out) != in {
			t.Errorf("%q: out %q err %v", in, out, err)
		}
	}
	if _, err := ParseNormalization([]string{"op_case", "bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("ParseNormalization: %v", err)
	}
	if n, err := ParseNormalization([]string{"all"}); err != nil || n != (Normalization{true, true, true, true, true}) {
		t.Errorf("all: %+v %v", n, err)
	}
}

// TestMayNormalizeResource: where the quick look says no, NormalizeResource returns the
// body itself without findings (an error at most, which callers drop with the body
// unchanged); where it changes a body, the quick look says yes.
func TestMayNormalizeResource(t *testing.T) {
	user := `{"userName":"ada","active":true,"emails":[{"value":"a@x","primary":false}],"title":"Manager of trues"}`
	bodies := []string{
		user,
		strings.Replace(user, `"active":true`, `"active":"True"`, 1),
		strings.Replace(user, `"primary":false`, `"primary":"FALSE"`, 1),
		`{"` + EnterpriseURN + `":{"manager":"m-1"}}`,
		`{"` + EnterpriseURN + `":{"MANAGER":{"value":"m-1"}}}`,
		`{"nickName":"true","x":"falsey","y":"Mtrue"}`,
		`{"a":`, `[]`, ``, `"true"`,
		strings.Repeat(`{"a":`, 100) + `"True"` + strings.Repeat(`}`, 100),
	}
	for _, n := range []Normalization{{Booleans: true}, {Manager: true}, {true, true, true, true, true}, {OpCase: true}} {
		for _, in := range bodies {
			body := []byte(in)
			out, fs, _ := NormalizeResource(n, nil, body)
			same := len(out) == len(body) && (len(body) == 0 || &out[0] == &body[0])
			if !MayNormalizeResource(n, body) && (!same || len(fs) > 0) {
				t.Errorf("%+v %s: skipped, but NormalizeResource gave %s %v", n, in, out, fs)
			}
		}
	}
}
