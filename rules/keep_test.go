package rules

import (
	"encoding/json"
	"testing"
)

func TestKeepOnReplace(t *testing.T) {
	const dept = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
	set, err := Compile(map[string]ResourceRules{"User": {Rules: []Rule{
		{Target: dept, From: []string{"department"}, OnlyOnCreate: true},
		{Target: `emails[type eq "work"].value`, OnlyOnCreate: true},
		{Target: "favoriteColor", From: []string{"favorite_color"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	current := `{"id":"1","userName":"a","favoriteColor":"red",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","costCenter":"9"},
		"emails":[{"type":"work","value":"a@work.example"}]}`
	for _, tc := range []struct {
		name, put, want string
	}{
		{
			name: "PUT without the attributes gets the current values",
			put:  `{"id":"1","userName":"a","department":"Marketing","favorite_color":"blue"}`,
			want: `{"id":"1","userName":"a","favoriteColor":"blue","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales"},"emails":[{"type":"work","value":"a@work.example"}]}`,
		},
		{
			name: "extension object present keeps its other attributes",
			put:  `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"X","costCenter":"7"}}`,
			want: `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"7","department":"Sales"},"emails":[{"type":"work","value":"a@work.example"}]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rewritten, _, err := set.RewriteResource("User", OpReplace, []byte(tc.put))
			if err != nil {
				t.Fatal(err)
			}
			out, err := set.KeepOnReplace("User", rewritten, []byte(current))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, out, tc.want) {
				t.Errorf("got  %s\nwant %s", out, tc.want)
			}
			again, _ := set.KeepOnReplace("User", out, []byte(current))
			if string(again) != string(out) {
				t.Errorf("not idempotent: %s", again)
			}
		})
	}
	// Nothing current: nothing invented.
	out, err := set.KeepOnReplace("User", []byte(`{"userName":"a"}`), []byte(`{"userName":"a"}`))
	if err != nil || string(out) != `{"userName":"a"}` {
		t.Errorf("got %s %v", out, err)
	}
	if _, err := set.KeepOnReplace("User", []byte(`{"userName":"a"}`), []byte(`not json`)); err == nil {
		t.Error("no error for an unparseable current resource")
	}
	if set.HasOnlyOnCreate("Group") || !set.HasOnlyOnCreate("user") {
		t.Error("HasOnlyOnCreate")
	}
}

func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("output is not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
