package rules

import (
	"slices"
	"testing"
)

func TestWarnTargetsAndPresent(t *testing.T) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	work := `emails[type eq "work"].value`
	workJSON := `emails[type eq \"work\"].value` // in a JSON string
	set, err := Compile(map[string]ResourceRules{
		"User": {Rules: []Rule{
			{Target: "favoriteColor", From: []string{"favorite_color"}, WarnIfMissing: true},
			{Target: ent + ":department", WarnIfMissing: true},
			{Target: "name.givenName", WarnIfMissing: true},
			{Target: work, WarnIfMissing: true},
			{Target: "nickName", From: []string{"nick"}},
		}},
		"Group": {Rules: []Rule{{Target: "externalId", From: []string{"id_ext"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"favoriteColor", ent + ":department", "name.givenName", work}
	if got := set.WarnTargets("user"); !slices.Equal(got, all) {
		t.Errorf("WarnTargets(user) = %v", got)
	}
	if !set.HasWarnTargets("User") || set.HasWarnTargets("Group") || set.HasWarnTargets("Device") {
		t.Error("HasWarnTargets")
	}
	if got := set.WarnTargets("Group"); got != nil {
		t.Errorf("WarnTargets(Group) = %v", got)
	}
	var empty *Set
	if empty.HasWarnTargets("User") || empty.WarnTargets("User") != nil || empty.WarnPresent("User", OpCreate, []byte(`{}`)) != nil {
		t.Error("a nil set has warn targets")
	}

	patch := func(ops string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
	}
	for _, tc := range []struct {
		name string
		op   Operation
		body string
		want []string
	}{
		{"all", OpCreate, `{"FavoriteColor":"red","` + ent + `":{"Department":"R&D"},"name":{"givenName":"Ada"},
			"emails":[{"type":"home","value":"h"},{"type":"work","value":"w"}]}`, all},
		{"qualified and flat", OpReplace, `{"urn:ietf:params:scim:schemas:core:2.0:User:favoriteColor":"red","` + ent + `:department":"x","name.givenName":"Ada"}`,
			[]string{"favoriteColor", ent + ":department", "name.givenName"}},
		{"null and empty do not count", OpCreate, `{"favoriteColor":null,"name":{},"emails":[{"type":"home","value":"h"}],"` + ent + `":{"department":[]}}`, nil},
		{"not JSON", OpCreate, `{"favoriteColor":`, nil},
		{"not an object", OpCreate, `["favoriteColor"]`, nil},
		{"patch by path", OpPatch, patch(`{"op":"Replace","path":"favoriteColor","value":"red"},
			{"op":"add","path":"` + ent + `:department","value":"x"},{"op":"add","path":"` + workJSON + `","value":"w"}`),
			[]string{"favoriteColor", ent + ":department", work}},
		{"patch below the target", OpPatch, patch(`{"op":"replace","path":"name.givenName","value":"Ada"}`), []string{"name.givenName"}},
		{"patch on a parent", OpPatch, patch(`{"op":"add","path":"` + ent + `","value":{"department":"x"}},
			{"op":"replace","path":"name","value":{"givenName":"Ada"}},{"op":"add","path":"emails","value":[{"type":"work","value":"w"}]}`),
			[]string{ent + ":department", "name.givenName", work}},
		{"patch without path", OpPatch, patch(`{"op":"add","value":{"favoriteColor":"red","name.givenName":"A"}}`), []string{"favoriteColor", "name.givenName"}},
		{"patch removes and nulls", OpPatch, patch(`{"op":"remove","path":"favoriteColor"},{"op":"replace","path":"name.givenName","value":null},
			{"op":"replace","path":"name","value":{"familyName":"L"}},{"op":"add","value":{"favoriteColor":null}}`), nil},
		{"patch of other paths", OpPatch, patch(`{"op":"replace","path":"members[value eq \"x\"]","value":"y"},{"op":"add","path":"active","value":true}`), nil},
		{"not a PatchOp", OpPatch, `{"favoriteColor":"red"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := set.WarnPresent("User", tc.op, []byte(tc.body)); !slices.Equal(got, tc.want) {
				t.Errorf("WarnPresent = %v, want %v", got, tc.want)
			}
		})
	}
	// A create or replace: what RewriteResource does not report missing is present.
	body := []byte(`{"userName":"ada","favorite_color":"teal","name":{"givenName":"Ada"}}`)
	out, findings, err := set.RewriteResource("User", OpCreate, body)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, f := range findings {
		if f.Code == CodeMissing {
			missing = append(missing, f.Attribute)
		}
	}
	present := set.WarnPresent("User", OpCreate, out)
	if !slices.Equal(present, []string{"favoriteColor", "name.givenName"}) || !slices.Equal(missing, []string{ent + ":department", work}) {
		t.Errorf("present %v, missing %v", present, missing)
	}
}
