package shadow_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// dtAssert compares Diff(live, projected) with want, a JSON array of changes (order matters).
func dtAssert(t *testing.T, live, projected, want string) {
	t.Helper()
	var l, p []byte
	if live != "" {
		l = []byte(live)
	}
	if projected != "" {
		p = []byte(projected)
	}
	got, err := json.Marshal(shadow.Diff(l, p))
	if err != nil {
		t.Fatal(err)
	}
	ptAssertJSON(t, got, want)
}

const dtUser = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + entURN + `"],"id":"u1","meta":{"version":"W/\"1\""},` +
	`"userName":"pat@example.com","title":"Engineer","active":true,"name":{"givenName":"Pat","familyName":"Smith"},` +
	`"emails":[{"value":"pat@work.example","type":"work","primary":true},{"value":"pat@home.example","type":"home"}],` +
	`"groups":[{"value":"g1","display":"Eng"}],` +
	`"` + entURN + `":{"department":"Eng","manager":{"value":"m1","$ref":"https://x/Users/m1","displayName":"Boss"}}}`

func TestDiffCreate(t *testing.T) {
	created := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann","password":"pw","name":{"givenName":"Ann"},` +
		`"emails":[{"value":"b@x","type":"work"},{"value":"a@x","type":"home"}],"` + entURN + `":{"department":"Ops"}}`
	want := `[
		{"op":"add","path":"emails","new":{"type":"home","value":"a@x"}},
		{"op":"add","path":"emails","new":{"type":"work","value":"b@x"}},
		{"op":"add","path":"name.givenName","new":"Ann"},
		{"op":"add","path":"` + entURN + `:department","new":"Ops"},
		{"op":"add","path":"userName","new":"ann"}]`
	dtAssert(t, "", created, want)
	dtAssert(t, "null", created, want)
	dtAssert(t, "{}", created, want)
}

func TestDiffDelete(t *testing.T) {
	dtAssert(t, `{"id":"u1", "userName":"pat"}`, "", `[{"op":"remove","path":"","old":{"id":"u1","userName":"pat"}}]`)
	dtAssert(t, `{"id":"u1"}`, "null", `[{"op":"remove","path":"","old":{"id":"u1"}}]`)
	if d := shadow.Diff(nil, nil); len(d) != 0 {
		t.Errorf("Diff(nil, nil) = %v", d)
	}
}

func TestDiffScalarsAndSubAttributes(t *testing.T) {
	projected := withAttrs(t, dtUser, map[string]string{
		"title": `"CTO"`, "active": "", "nickName": `"P"`,
		"name": `{"givenName":"Patricia","familyName":"Smith","middleName":"Q"}`,
		"meta": `{"version":"W/\"2\""}`, "id": `"changed-but-ignored"`, "password": `"x"`,
		"groups": `[]`, "schemas": `["urn:ietf:params:scim:schemas:core:2.0:User"]`,
	})
	dtAssert(t, dtUser, projected, `[
		{"op":"remove","path":"active","old":true},
		{"op":"replace","path":"name.givenName","old":"Pat","new":"Patricia"},
		{"op":"add","path":"name.middleName","new":"Q"},
		{"op":"add","path":"nickName","new":"P"},
		{"op":"replace","path":"title","old":"Engineer","new":"CTO"}]`)
}

func TestDiffExtension(t *testing.T) {
	projected := withAttrs(t, dtUser, map[string]string{
		entURN: `{"department":"Sales","employeeNumber":"7","manager":{"value":"m2","$ref":"https://x/Users/m2"}}`,
	})
	dtAssert(t, dtUser, projected, `[
		{"op":"replace","path":"`+entURN+`:department","old":"Eng","new":"Sales"},
		{"op":"add","path":"`+entURN+`:employeeNumber","new":"7"},
		{"op":"replace","path":"`+entURN+`:manager.value","old":"m1","new":"m2"}]`)
	// The whole extension removed: one change per attribute.
	dtAssert(t, dtUser, withAttrs(t, dtUser, map[string]string{entURN: ""}), `[
		{"op":"remove","path":"`+entURN+`:department","old":"Eng"},
		{"op":"remove","path":"`+entURN+`:manager.value","old":"m1"}]`)
}

func TestDiffEmailsByValue(t *testing.T) {
	for _, tc := range []struct{ name, emails, want string }{
		{"reordered is no change",
			`[{"type":"home","value":"pat@home.example"},{"primary":true,"type":"work","value":"pat@work.example"}]`, `[]`},
		{"type in another case is the same element, its new spelling a replace",
			`[{"value":"pat@work.example","type":"WORK","primary":true},{"value":"pat@home.example","type":"home"}]`,
			`[{"op":"replace","path":"emails","old":{"primary":true,"type":"work","value":"pat@work.example"},"new":{"primary":true,"type":"WORK","value":"pat@work.example"}}]`},
		{"changed value: one removed, one added",
			`[{"value":"pat@new.example","type":"work","primary":true},{"value":"pat@home.example","type":"home"}]`,
			`[{"op":"add","path":"emails","new":{"primary":true,"type":"work","value":"pat@new.example"}},
			  {"op":"remove","path":"emails","old":{"primary":true,"type":"work","value":"pat@work.example"}}]`},
		{"other sub-attribute changed: replace",
			`[{"value":"pat@work.example","type":"work"},{"value":"pat@home.example","type":"home","primary":true}]`,
			`[{"op":"replace","path":"emails","old":{"type":"home","value":"pat@home.example"},"new":{"primary":true,"type":"home","value":"pat@home.example"}},
			  {"op":"replace","path":"emails","old":{"primary":true,"type":"work","value":"pat@work.example"},"new":{"type":"work","value":"pat@work.example"}}]`},
		{"same value with another type is another element",
			`[{"value":"pat@work.example","type":"other","primary":true},{"value":"pat@home.example","type":"home"}]`,
			`[{"op":"add","path":"emails","new":{"primary":true,"type":"other","value":"pat@work.example"}},
			  {"op":"remove","path":"emails","old":{"primary":true,"type":"work","value":"pat@work.example"}}]`},
		{"all removed", "", `[
			{"op":"remove","path":"emails","old":{"type":"home","value":"pat@home.example"}},
			{"op":"remove","path":"emails","old":{"primary":true,"type":"work","value":"pat@work.example"}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dtAssert(t, dtUser, withAttrs(t, dtUser, map[string]string{"emails": tc.emails}), tc.want)
		})
	}
}

func TestDiffMembers(t *testing.T) {
	live := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1","displayName":"Eng","members":[` +
		`{"value":"u1","display":"ann","type":"User","$ref":"https://x/Users/u1"},` +
		`{"value":"u2","display":"bob","type":"User","$ref":"https://x/Users/u2"},` +
		`{"value":"u3","display":"cy","type":"User","$ref":"https://x/Users/u3"}]}`
	projected := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1","displayName":"Eng","members":[` +
		`{"value":"u3","display":"Cy Young","type":"User"},` + // display change: not a membership change
		`{"value":"u1","display":"ann","type":"User","$ref":"https://x/Users/u1"},` +
		`{"value":"u9","display":"zed"},{"value":"u5"}]}`
	dtAssert(t, live, projected, `[
		{"op":"remove","path":"members","old":{"value":"u2","display":"bob","type":"User"}},
		{"op":"add","path":"members","new":{"value":"u5"}},
		{"op":"add","path":"members","new":{"value":"u9","display":"zed"}}]`)
	// Members removed all at once: one change per member.
	dtAssert(t, live, `{"id":"g1","displayName":"Eng","members":[]}`, `[
		{"op":"remove","path":"members","old":{"value":"u1","display":"ann","type":"User"}},
		{"op":"remove","path":"members","old":{"value":"u2","display":"bob","type":"User"}},
		{"op":"remove","path":"members","old":{"value":"u3","display":"cy","type":"User"}}]`)
}

func TestDiffNoOp(t *testing.T) {
	// Okta re-sends the group name with every membership push: no change.
	group := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1","displayName":"Eng","meta":{"resourceType":"Group"},` +
		`"members":[{"value":"u1","display":"ann","type":"User"}]}`
	projected, err := shadow.ApplyPatch([]byte(group), []byte(ptPatchBody(`[{"op":"replace","value":{"id":"g1","displayName":"Eng"}}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if d := shadow.Diff([]byte(group), projected); len(d) != 0 {
		t.Errorf("no-op rename: %+v", d)
	}
	// Equal up to formatting, key order, attribute-name case, number spelling, nulls.
	a := `{"userName":"x","name":{"givenName":"A","familyName":"B"},"n":1.0,"emails":[{"value":"a@x","type":"work"}],"title":null}`
	b := "{\n  \"NAME\": {\"familyName\": \"B\", \"GivenName\": \"A\"},\n  \"username\": \"x\", \"n\": 1,\n  \"emails\": [{\"Type\": \"work\", \"value\": \"a@x\"}], \"nickName\": null, \"roles\": []\n}"
	if d := shadow.Diff([]byte(a), []byte(b)); len(d) != 0 {
		t.Errorf("formatting only: %+v", d)
	}
	// But a value's case is a change.
	dtAssert(t, a, `{"userName":"X","name":{"givenName":"A","familyName":"B"},"n":1,"emails":[{"value":"a@x","type":"work"}]}`,
		`[{"op":"replace","path":"userName","old":"x","new":"X"}]`)
}

func TestDiffOrderingIsDeterministic(t *testing.T) {
	live := `{"zeta":"1","alpha":"1","roles":[{"value":"c"},{"value":"a"}],"members":[{"value":"m2"},{"value":"m1"}]}`
	projected := `{"alpha":"2","zeta":"2","roles":[{"value":"b"},{"value":"d"}],"members":[{"value":"m3"},{"value":"m0"}],"beta":[3,1,2]}`
	want := `[
		{"op":"replace","path":"alpha","old":"1","new":"2"},
		{"op":"add","path":"beta","new":1},
		{"op":"add","path":"beta","new":2},
		{"op":"add","path":"beta","new":3},
		{"op":"add","path":"members","new":{"value":"m0"}},
		{"op":"remove","path":"members","old":{"value":"m1"}},
		{"op":"remove","path":"members","old":{"value":"m2"}},
		{"op":"add","path":"members","new":{"value":"m3"}},
		{"op":"remove","path":"roles","old":{"value":"a"}},
		{"op":"add","path":"roles","new":{"value":"b"}},
		{"op":"remove","path":"roles","old":{"value":"c"}},
		{"op":"add","path":"roles","new":{"value":"d"}},
		{"op":"replace","path":"zeta","old":"1","new":"2"}]`
	for range 20 { // map iteration order varies between runs
		dtAssert(t, live, projected, want)
	}
}

func TestDiffNeverShowsPasswords(t *testing.T) {
	ext := "urn:example:params:scim:schemas:extension:custom:2.0:User"
	projected := `{"userName":"u","password":"top-Secret","` + ext + `":{"password":"ext-Secret","x":"1"},` +
		`"name":{"givenName":"G","PassWord":"sub-Secret"},"roles":[{"value":"r","password":"el-Secret"}]}`
	for _, d := range [][]shadow.Change{shadow.Diff(nil, []byte(projected)), shadow.Diff([]byte(projected), nil)} {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "Secret") || strings.Contains(strings.ToLower(string(raw)), "password") {
			t.Errorf("password in diff: %s", raw)
		}
	}
	// A projection never carries one either, even in a custom extension.
	out, err := shadow.ApplyPatch([]byte(idpUser), []byte(ptPatchBody(`[{"op":"add","path":"`+ext+`:password","value":"p-Secret"},{"op":"replace","path":"password","value":"q-Secret"}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "Secret") {
		t.Errorf("password in projection: %s", out)
	}
}
