package rules

import (
	"encoding/json"
	"testing"
)

// ent is the enterprise extension schema URN.
const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// testRules is the rule set most tests run with.
func testRules() map[string]ResourceRules {
	return map[string]ResourceRules{
		"User": {
			Rules: []Rule{
				{Target: "favoriteColor", From: []string{"favorite_color", "preferences.favoriteColor"}, WarnIfMissing: true},
				{Target: ent + ":department", From: []string{"department", ent + ":division"}, WarnIfMissing: true},
				{Target: `emails[type eq "work"].value`, From: []string{`emails[type eq "other"].value`, "workEmail"}},
				{Target: "name.givenName", From: []string{"firstName"}},
				{Target: "locale", Default: json.RawMessage(` "en-US" `)},
				{Target: "userName", WarnIfMissing: true},
				{Target: "nickName", From: []string{"nick"}, OnlyOnCreate: true},
				{Target: "addresses", From: []string{"postalAddresses"}},
			},
			Drop: []string{"password", ent + ":manager.displayName", `phoneNumbers[type eq "fax"]`},
		},
		"group": {
			Rules: []Rule{{Target: "displayName", From: []string{"groupName"}}},
			Drop:  []string{"owner"},
		},
	}
}

func mustCompile(tb testing.TB, m map[string]ResourceRules) *Set {
	tb.Helper()
	s, err := Compile(m)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return s
}

// Payloads in the shapes identity providers send (see IDP-DIALECTS.md).
const (
	oktaCreateUser = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada.l@example.com",` +
		`"name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"primary":true,"value":"ada.l@example.com","type":"work"}],` +
		`"displayName":"Ada Lovelace","locale":"en-GB","externalId":"00u1ada9x","groups":[],"password":"pa55-Word!","active":true,` +
		`"favorite_color":"green"}`

	entraCreateUser = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + ent + `"],"externalId":"e1c3",` +
		`"userName":"grace@contoso.test","active":true,"displayName":"Grace Hopper","title":null,` +
		`"name":{"formatted":"Grace Hopper","familyName":"Hopper","givenName":"Grace"},` +
		`"emails":[{"primary":true,"type":"work","value":"grace@contoso.test"}],"favoriteColor":"blue","locale":"en-US",` +
		`"` + ent + `":{"employeeNumber":"42","division":"Navy","manager":{"value":"m-1","displayName":"Boss"}}}`

	oneLoginPut = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223","externalId":"ol-77",` +
		`"userName":"linus","name":{"givenName":"Linus","familyName":"T"},"nickName":"lt","nick":"l",` +
		`"emails":[{"value":"linus@example.net","type":"work","primary":true}],"active":false,"locale":"fi",` +
		`"favoriteColor":"grey","` + ent + `":{"department":"Kernel"},` +
		`"meta":{"resourceType":"User","location":"/Users/2819c223"},"groups":[{"value":"g1","display":"Devs"}]}`

	patchPrefix = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`
	patchSuffix = `]}`

	oktaDeactivate = patchPrefix + `{"op":"replace","value":{"active":false}}` + patchSuffix

	entraUpdate = patchPrefix + `{"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@contoso.test"},` +
		`{"op":"Replace","path":"name.familyName","value":"Smith"},{"op":"Add","path":"department","value":"Sales"},` +
		`{"op":"Replace","path":"active","value":"False"}` + patchSuffix

	entraPathless = patchPrefix + `{"op":"replace","value":{"name.givenName":"Ann","` + ent + `:division":"Ops",` +
		`"` + ent + `:employeeNumber":"7","favorite_color":"red","preferences.favoriteColor":"blue",` +
		`"emails[type eq \"other\"].value":"o@x.test"}}` + patchSuffix

	entraManager = patchPrefix + `{"op":"Add","path":"` + ent + `:manager","value":"m-17"}` + patchSuffix

	oktaGroupMembers = patchPrefix + `{"op":"remove","path":"members[value eq \"u1\"]"},` +
		`{"op":"add","path":"members","value":[{"value":"u2","display":"bob@example.com"}]},` +
		`{"op":"replace","value":{"id":"g1","displayName":"Engineering"}}` + patchSuffix

	entraGroupMembers = patchPrefix + `{"op":"Add","path":"members","value":[{"value":"u3"},{"value":"u4"}]},` +
		`{"op":"Remove","path":"members","value":[{"value":"u5"}]}` + patchSuffix

	oneLoginGroupMembers = patchPrefix + `{"op":"add","path":"members","value":[{"value":"u6"}]}` + patchSuffix
)
