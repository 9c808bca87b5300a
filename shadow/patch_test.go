package shadow_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/examples/backend"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// patchCase applies Operations to resource and expects want (the resource after) or an
// error with scimType wantErr at operation wantIndex.
type patchCase struct {
	name      string
	resource  string
	ops       string // the Operations array
	want      string
	wantErr   string
	wantIndex int
}

func ptPatchBody(ops string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":` + ops + `}`
}

func runPatchCases(t *testing.T, cases []patchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shadow.ApplyPatch([]byte(tc.resource), []byte(ptPatchBody(tc.ops)))
			if tc.wantErr != "" {
				var pe *shadow.PatchError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v (result %s), want a *PatchError %s", err, got, tc.wantErr)
				}
				if pe.ScimType != tc.wantErr || pe.Index != tc.wantIndex {
					t.Errorf("error = %s (index %d), want %s at index %d", pe.ScimType, pe.Index, tc.wantErr, tc.wantIndex)
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyPatch: %v", err)
			}
			ptAssertJSON(t, got, tc.want)
		})
	}
}

// ptAssertJSON compares two JSON documents semantically (array order matters).
func ptAssertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("result is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v: %s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("result differs\n got: %s\nwant: %s", gi, wi)
	}
}

// RFC 7644 examples (§3.5.2) use these resources.
const (
	rfcBabs  = "2819c223-7f76-453a-919d-413861904646"
	rfcMandy = "902c246b-6245-4190-8e05-00816be7344a"
	rfcJames = "08e1d05d-121c-4561-8b96-473d93df9210"
	rfcGroup = "acbf3ae7-8463-4692-b4fd-9b4da3f908ce"

	rfcGroupMeta  = `"id":"` + rfcGroup + `","meta":{"resourceType":"Group","location":"https://example.com/v2/Groups/` + rfcGroup + `","version":"W/\"3694e05e9dff592\""},"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]`
	rfcMemberBabs = `{"value":"` + rfcBabs + `","display":"Babs Jensen","type":"User","$ref":"https://example.com/v2/Users/` + rfcBabs + `"}`
	rfcMemberMan  = `{"value":"` + rfcMandy + `","display":"Mandy Pepperidge","type":"User","$ref":"https://example.com/v2/Users/` + rfcMandy + `"}`
	rfcMemberJam  = `{"value":"` + rfcJames + `","display":"James Smith","type":"User","$ref":"https://example.com/v2/Users/` + rfcJames + `"}`

	rfcGroupMandy = `{` + rfcGroupMeta + `,"displayName":"Tour Guides","members":[` + rfcMemberMan + `]}`
	rfcGroupAll   = `{` + rfcGroupMeta + `,"displayName":"Tour Guides","members":[` + rfcMemberBabs + `,` + rfcMemberMan + `,` + rfcMemberJam + `]}`

	rfcUserMeta = `"id":"` + rfcBabs + `","meta":{"resourceType":"User","location":"https://example.com/v2/Users/` + rfcBabs + `"},"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]`
	rfcWorkMail = `{"value":"bjensen@example.com","type":"work","primary":true}`
	rfcWorkAddr = `{"type":"work","streetAddress":"100 Universal City Plaza","locality":"Hollywood","region":"CA","postalCode":"91608","country":"USA","formatted":"100 Universal City Plaza\nHollywood, CA 91608 USA","primary":true}`
	rfcHomeAddr = `{"type":"home","streetAddress":"456 Hollywood Blvd","locality":"Hollywood","region":"CA","postalCode":"91608","country":"USA","formatted":"456 Hollywood Blvd\nHollywood, CA 91608 USA"}`
	rfcUserBody = `"userName":"bjensen","name":{"familyName":"Jensen","givenName":"Barbara"},"active":true`
	rfcUser     = `{` + rfcUserMeta + `,` + rfcUserBody + `,"emails":[` + rfcWorkMail + `],"addresses":[` + rfcWorkAddr + `,` + rfcHomeAddr + `]}`
)

// TestPatchRFC7644Add covers the examples of RFC 7644 §3.5.2.1.
func TestPatchRFC7644Add(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name:     "add a member to a group",
			resource: rfcGroupMandy,
			ops:      `[{"op":"add","path":"members","value":[{"display":"Babs Jensen","$ref":"https://example.com/v2/Users/` + rfcBabs + `","value":"` + rfcBabs + `"}]}]`,
			want:     `{` + rfcGroupMeta + `,"displayName":"Tour Guides","members":[` + rfcMemberMan + `,` + rfcMemberBabs + `]}`,
		},
		{
			name:     "add without path: the value's attributes are added (nickname takes the schema's case)",
			resource: rfcUser,
			ops:      `[{"op":"add","value":{"emails":[{"value":"babs@jensen.org","type":"home"}],"nickname":"Babs"}}]`,
			want: `{` + rfcUserMeta + `,` + rfcUserBody + `,"nickName":"Babs","emails":[` + rfcWorkMail + `,{"value":"babs@jensen.org","type":"home"}],` +
				`"addresses":[` + rfcWorkAddr + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "add of a member already present does not duplicate it",
			resource: rfcGroupAll,
			ops:      `[{"op":"add","path":"members","value":[{"value":"` + rfcBabs + `"}]}]`,
			want:     rfcGroupAll,
		},
		{
			name:     "add to a single-valued attribute replaces it",
			resource: rfcUser,
			ops:      `[{"op":"add","path":"userName","value":"babs"}]`,
			want:     `{` + rfcUserMeta + `,"userName":"babs","name":{"familyName":"Jensen","givenName":"Barbara"},"active":true,"emails":[` + rfcWorkMail + `],"addresses":[` + rfcWorkAddr + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "add of a complex value merges its sub-attributes",
			resource: rfcUser,
			ops:      `[{"op":"add","path":"name","value":{"middleName":"Jane"}}]`,
			want:     `{` + rfcUserMeta + `,"userName":"bjensen","name":{"familyName":"Jensen","givenName":"Barbara","middleName":"Jane"},"active":true,"emails":[` + rfcWorkMail + `],"addresses":[` + rfcWorkAddr + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "add without a value",
			resource: rfcUser,
			ops:      `[{"op":"add","path":"title"}]`,
			wantErr:  "invalidValue",
		},
	})
}

// TestPatchRFC7644Remove covers the examples of RFC 7644 §3.5.2.2.
func TestPatchRFC7644Remove(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name:     "remove a single member",
			resource: rfcGroupAll,
			ops:      `[{"op":"remove","path":"members[value eq \"` + rfcBabs + `\"]"}]`,
			want:     `{` + rfcGroupMeta + `,"displayName":"Tour Guides","members":[` + rfcMemberMan + `,` + rfcMemberJam + `]}`,
		},
		{
			name:     "remove all members",
			resource: rfcGroupAll,
			ops:      `[{"op":"remove","path":"members"}]`,
			want:     `{` + rfcGroupMeta + `,"displayName":"Tour Guides"}`,
		},
		{
			name:     "remove multiple members by filter",
			resource: rfcGroupAll,
			ops:      `[{"op":"remove","path":"members[value eq \"` + rfcBabs + `\" or value eq \"` + rfcJames + `\"]"}]`,
			want:     `{` + rfcGroupMeta + `,"displayName":"Tour Guides","members":[` + rfcMemberMan + `]}`,
		},
		{
			name:     "remove all members and add new ones in one request",
			resource: rfcGroupAll,
			ops: `[{"op":"remove","path":"members"},{"op":"add","path":"members","value":[` +
				`{"display":"Babs Jensen","$ref":"https://example.com/v2/Users/` + rfcBabs + `","value":"` + rfcBabs + `"},` +
				`{"display":"James Smith","$ref":"https://example.com/v2/Users/` + rfcJames + `","value":"` + rfcJames + `"}]}]`,
			// The live member types are lost with the removal: the engine assumes User.
			want: `{` + rfcGroupMeta + `,"displayName":"Tour Guides","members":[` + rfcMemberBabs + `,` + rfcMemberJam + `]}`,
		},
		{
			name:     "remove a filtered member that is not there changes nothing",
			resource: rfcGroupMandy,
			ops:      `[{"op":"remove","path":"members[value eq \"` + rfcBabs + `\"]"}]`,
			want:     rfcGroupMandy,
		},
		{
			name:     "remove with an and/ew filter",
			resource: rfcUser,
			ops:      `[{"op":"remove","path":"emails[type eq \"work\" and value ew \"example.com\"]"}]`,
			want:     `{` + rfcUserMeta + `,` + rfcUserBody + `,"addresses":[` + rfcWorkAddr + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "remove a sub-attribute of the filtered values",
			resource: rfcUser,
			ops:      `[{"op":"remove","path":"addresses[type eq \"work\"].formatted"}]`,
			want: `{` + rfcUserMeta + `,` + rfcUserBody + `,"emails":[` + rfcWorkMail + `],"addresses":[` +
				`{"type":"work","streetAddress":"100 Universal City Plaza","locality":"Hollywood","region":"CA","postalCode":"91608","country":"USA","primary":true},` + rfcHomeAddr + `]}`,
		},
		{
			// RFC 7644 §3.5.2.2 says noTarget; the example backend (elimity) answers invalidValue.
			name:     "remove without path",
			resource: rfcGroupAll,
			ops:      `[{"op":"remove"}]`,
			wantErr:  "invalidValue",
		},
		{
			name:     "remove of a required attribute",
			resource: rfcUser,
			ops:      `[{"op":"remove","path":"userName"}]`,
			wantErr:  "invalidValue", wantIndex: -1,
		},
	})
}

// TestPatchRFC7644Replace covers the examples of RFC 7644 §3.5.2.3.
func TestPatchRFC7644Replace(t *testing.T) {
	newWork := `{"type":"work","streetAddress":"911 Universal City Plaza","locality":"Hollywood","region":"CA","postalCode":"91608","country":"US","formatted":"911 Universal City Plaza\nHollywood, CA 91608 US","primary":true}`
	runPatchCases(t, []patchCase{
		{
			name:     "replace all members",
			resource: rfcGroupMandy,
			ops: `[{"op":"replace","path":"members","value":[` +
				`{"display":"Babs Jensen","$ref":"https://example.com/v2/Users/` + rfcBabs + `","value":"` + rfcBabs + `"},` +
				`{"display":"James Smith","$ref":"https://example.com/v2/Users/` + rfcJames + `","value":"` + rfcJames + `"}]}]`,
			want: `{` + rfcGroupMeta + `,"displayName":"Tour Guides","members":[` + rfcMemberBabs + `,` + rfcMemberJam + `]}`,
		},
		{
			name:     "replace a filtered complex value",
			resource: rfcUser,
			ops:      `[{"op":"replace","path":"addresses[type eq \"work\"]","value":` + newWork + `}]`,
			want:     `{` + rfcUserMeta + `,` + rfcUserBody + `,"emails":[` + rfcWorkMail + `],"addresses":[` + newWork + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "replace a sub-attribute of a filtered value",
			resource: rfcUser,
			ops:      `[{"op":"replace","path":"addresses[type eq \"work\"].streetAddress","value":"1010 Broadway Ave"}]`,
			want: `{` + rfcUserMeta + `,` + rfcUserBody + `,"emails":[` + rfcWorkMail + `],"addresses":[` +
				strings.Replace(rfcWorkAddr, `"100 Universal City Plaza"`, `"1010 Broadway Ave"`, 1) + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "replace without path: each attribute of the value replaced",
			resource: rfcUser,
			ops:      `[{"op":"replace","value":{"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],"nickname":"Babs"}}]`,
			want: `{` + rfcUserMeta + `,` + rfcUserBody + `,"nickName":"Babs","emails":[` + rfcWorkMail + `,{"value":"babs@jensen.org","type":"home"}],` +
				`"addresses":[` + rfcWorkAddr + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "replace of a complex attribute keeps sub-attributes not given",
			resource: rfcUser,
			ops:      `[{"op":"replace","path":"name","value":{"givenName":"Babs"}}]`,
			want:     `{` + rfcUserMeta + `,"userName":"bjensen","name":{"familyName":"Jensen","givenName":"Babs"},"active":true,"emails":[` + rfcWorkMail + `],"addresses":[` + rfcWorkAddr + `,` + rfcHomeAddr + `]}`,
		},
		{
			name:     "replace on a filter without a match is noTarget",
			resource: rfcUser,
			ops:      `[{"op":"replace","path":"title","value":"x"},{"op":"replace","path":"emails[type eq \"home\"].value","value":"x@y.example"}]`,
			wantErr:  "noTarget", wantIndex: 1,
		},
		{
			name:     "replace of a new primary value demotes the old one",
			resource: rfcUser,
			ops:      `[{"op":"replace","path":"addresses[type eq \"home\"].primary","value":true}]`,
			want: `{` + rfcUserMeta + `,` + rfcUserBody + `,"emails":[` + rfcWorkMail + `],"addresses":[` +
				strings.Replace(rfcWorkAddr, `"primary":true`, `"primary":false`, 1) + `,` +
				strings.Replace(rfcHomeAddr, `}`, `,"primary":true}`, 1) + `]}`,
		},
	})
}

// Fixtures in the shapes IdPs see from the example backend.
const (
	idpUserID  = "5d3c0f0e-0001-4000-8000-000000000001"
	idpMgrID   = "5d3c0f0e-0002-4000-8000-000000000002"
	idpGroupID = "5d3c0f0e-0100-4000-8000-000000000100"
	entURN     = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

	idpUserMeta = `"id":"` + idpUserID + `","meta":{"resourceType":"User","created":"2026-01-02T03:04:05Z","lastModified":"2026-01-02T03:04:05Z","location":"https://scim.example/scim/v2/Users/` + idpUserID + `","version":"W/\"3\""}`
	idpUser     = `{` + idpUserMeta + `,"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + entURN + `"],` +
		`"userName":"pat@example.com","displayName":"Pat Smith","active":true,"externalId":"00u1",` +
		`"name":{"givenName":"Pat","familyName":"Smith"},"emails":[{"value":"pat@work.example","type":"work","primary":true}],` +
		`"groups":[{"value":"` + idpGroupID + `","display":"Engineering","type":"direct","$ref":"https://scim.example/scim/v2/Groups/` + idpGroupID + `"}],` +
		`"` + entURN + `":{"department":"Eng","employeeNumber":"1"}}`
)

func idpGroup(members ...string) string {
	var ms []string
	for _, m := range members {
		ms = append(ms, `{"value":"`+m+`","display":"`+m[:4]+`@example.com","type":"User","$ref":"https://scim.example/scim/v2/Users/`+m+`"}`)
	}
	return `{"id":"` + idpGroupID + `","meta":{"resourceType":"Group","location":"https://scim.example/scim/v2/Groups/` + idpGroupID + `"},` +
		`"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[` + strings.Join(ms, ",") + `]}`
}

// withAttrs returns idpUser with the given top-level attributes set (raw JSON values; ""
// deletes).
func withAttrs(t *testing.T, doc string, attrs map[string]string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range attrs {
		if v == "" {
			delete(m, k)
			continue
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		m[k] = val
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestPatchIdPDialects covers the PATCH shapes of IDP-DIALECTS.md.
func TestPatchIdPDialects(t *testing.T) {
	u := []string{
		"11111111-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002",
		"33333333-0000-4000-8000-000000000003", "44444444-0000-4000-8000-000000000004",
		"55555555-0000-4000-8000-000000000005", "66666666-0000-4000-8000-000000000006",
	}
	newMember := func(id, display string) string {
		d := ""
		if display != "" {
			d = `"display":"` + display + `",`
		}
		return `{"value":"` + id + `",` + d + `"type":"User","$ref":"https://scim.example/scim/v2/Users/` + id + `"}`
	}
	groupWith := func(name string, members ...string) string {
		return `{"id":"` + idpGroupID + `","meta":{"resourceType":"Group","location":"https://scim.example/scim/v2/Groups/` + idpGroupID + `"},` +
			`"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + name + `","members":[` + strings.Join(members, ",") + `]}`
	}
	existing := func(id string) string { return newMember(id, id[:4]+"@example.com") }
	runPatchCases(t, []patchCase{
		{
			name:     "Okta deactivate: path-less replace active false",
			resource: idpUser,
			ops:      `[{"op":"replace","value":{"active":false}}]`,
			want:     withAttrs(t, idpUser, map[string]string{"active": "false"}),
		},
		{
			name:     "Okta group rename with id in the value, plus member remove and add",
			resource: idpGroup(u[0], u[1], u[2]),
			ops: `[{"op":"replace","value":{"id":"` + idpGroupID + `","displayName":"Engineers"}},` +
				`{"op":"remove","path":"members[value eq \"` + u[1] + `\"]"},` +
				`{"op":"add","path":"members","value":[{"value":"` + u[3] + `","display":"dora@example.com"}]}]`,
			want: groupWith("Engineers", existing(u[0]), existing(u[2]), newMember(u[3], "dora@example.com")),
		},
		{
			name:     "Okta full replace of members",
			resource: idpGroup(u[0], u[1]),
			ops:      `[{"op":"replace","path":"members","value":[{"value":"` + u[1] + `","display":"` + u[1][:4] + `@example.com"},{"value":"` + u[4] + `","display":"eve@example.com"}]}]`,
			want:     groupWith("Engineering", existing(u[1]), newMember(u[4], "eve@example.com")),
		},
		{
			name:     "Entra capitalised ops, sub-attribute and filtered paths",
			resource: idpUser,
			ops: `[{"op":"Replace","path":"name.familyName","value":"Jones"},{"op":"Add","path":"title","value":"CTO"},` +
				`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"pat.jones@work.example"},{"op":"REMOVE","path":"externalId"}]`,
			want: withAttrs(t, idpUser, map[string]string{
				"name": `{"givenName":"Pat","familyName":"Jones"}`, "title": `"CTO"`, "externalId": "",
				"emails": `[{"value":"pat.jones@work.example","type":"work","primary":true}]`,
			}),
		},
		{
			name:     "Entra changed value arriving as Add on a filtered path",
			resource: idpUser,
			ops:      `[{"op":"Add","path":"emails[type eq \"work\"].value","value":"new@work.example"}]`,
			want:     withAttrs(t, idpUser, map[string]string{"emails": `[{"value":"new@work.example","type":"work","primary":true}]`}),
		},
		{
			name:     "Entra Add on a filtered path without a match creates the value from the filter",
			resource: idpUser,
			ops:      `[{"op":"Add","path":"emails[type eq \"home\"].value","value":"pat@home.example"}]`,
			want: withAttrs(t, idpUser, map[string]string{
				"emails": `[{"value":"pat@work.example","type":"work","primary":true},{"type":"home","value":"pat@home.example"}]`,
			}),
		},
		{
			name:     "Entra member add",
			resource: idpGroup(u[0]),
			ops:      `[{"op":"Add","path":"members","value":[{"value":"` + u[1] + `"},{"value":"` + u[2] + `"}]}]`,
			want:     groupWith("Engineering", existing(u[0]), newMember(u[1], ""), newMember(u[2], "")),
		},
		{
			name:     "Entra value-array removal removes only the listed member (1 of 5)",
			resource: idpGroup(u[0], u[1], u[2], u[3], u[4]),
			ops:      `[{"op":"Remove","path":"members","value":[{"value":"` + u[2] + `"}]}]`,
			want:     groupWith("Engineering", existing(u[0]), existing(u[1]), existing(u[3]), existing(u[4])),
		},
		{
			name:     "OneLogin lowercase member add and value-array remove",
			resource: idpGroup(u[0], u[1]),
			ops:      `[{"op":"add","path":"members","value":[{"value":"` + u[5] + `"}]},{"op":"remove","path":"members","value":[{"value":"` + u[0] + `"}]}]`,
			want:     groupWith("Engineering", existing(u[1]), newMember(u[5], "")),
		},
		{
			name:     `Entra string boolean "False" is invalidValue`,
			resource: idpUser,
			ops:      `[{"op":"Replace","path":"title","value":"x"},{"op":"Replace","path":"active","value":"False"}]`,
			wantErr:  "invalidValue", wantIndex: 1,
		},
		{
			name:     `string boolean for primary is invalidValue`,
			resource: idpUser,
			ops:      `[{"op":"replace","path":"emails[type eq \"work\"].primary","value":"True"}]`,
			wantErr:  "invalidValue",
		},
		{
			name:     "Entra path-less replace with dotted and URN-qualified keys",
			resource: idpUser,
			ops: `[{"op":"replace","value":{"name.givenName":"Patty","displayName":"Patty Smith",` +
				`"urn:ietf:params:scim:schemas:core:2.0:User:title":"Lead",` +
				`"` + entURN + `:employeeNumber":"777","` + entURN + `:costCenter":"CC1","active":false}}]`,
			want: withAttrs(t, idpUser, map[string]string{
				"name": `{"givenName":"Patty","familyName":"Smith"}`, "displayName": `"Patty Smith"`, "title": `"Lead"`, "active": "false",
				entURN: `{"department":"Eng","employeeNumber":"777","costCenter":"CC1"}`,
			}),
		},
		{
			name:     "path-less value with a nested extension object",
			resource: idpUser,
			ops:      `[{"op":"add","value":{"` + entURN + `":{"division":"R&D","department":"Research"}}}]`,
			want:     withAttrs(t, idpUser, map[string]string{entURN: `{"department":"Research","employeeNumber":"1","division":"R&D"}`}),
		},
		{
			name:     "extension URN as the path",
			resource: idpUser,
			ops:      `[{"op":"add","path":"` + entURN + `","value":{"organization":"ACME"}}]`,
			want:     withAttrs(t, idpUser, map[string]string{entURN: `{"department":"Eng","employeeNumber":"1","organization":"ACME"}`}),
		},
		{
			name:     "Entra manager as a bare string is invalidValue (as the backend answers)",
			resource: idpUser,
			ops:      `[{"op":"Add","path":"` + entURN + `:manager","value":"` + idpMgrID + `"}]`,
			wantErr:  "invalidValue",
		},
		{
			name:     "manager as an object gets the $ref the backend computes",
			resource: idpUser,
			ops:      `[{"op":"Add","path":"` + entURN + `:manager","value":{"value":"` + idpMgrID + `"}}]`,
			want: withAttrs(t, idpUser, map[string]string{
				entURN: `{"department":"Eng","employeeNumber":"1","manager":{"value":"` + idpMgrID + `","$ref":"https://scim.example/scim/v2/Users/` + idpMgrID + `"}}`,
			}),
		},
		{
			name:     "enterprise attribute without its URN is refused",
			resource: idpUser,
			ops:      `[{"op":"replace","path":"department","value":"Sales"}]`,
			wantErr:  "invalidValue",
		},
		{
			name:     "enterprise attribute without its URN in a path-less value is refused",
			resource: idpUser,
			ops:      `[{"op":"replace","value":{"department":"Sales"}}]`,
			wantErr:  "invalidValue",
		},
		{
			name:     "custom attribute (not in RFC 7643) is accepted",
			resource: idpUser,
			ops:      `[{"op":"replace","path":"favoriteColor","value":"green"}]`,
			want:     withAttrs(t, idpUser, map[string]string{"favoriteColor": `"green"`}),
		},
		{
			name:     "custom attribute takes the case the resource already has",
			resource: withAttrs(t, idpUser, map[string]string{"favoriteColor": `"red"`}),
			ops:      `[{"op":"replace","path":"FAVORITECOLOR","value":"green"}]`,
			want:     withAttrs(t, idpUser, map[string]string{"favoriteColor": `"green"`}),
		},
		{
			name:     "read-only groups path is mutability",
			resource: idpUser,
			ops:      `[{"op":"add","path":"groups","value":[{"value":"x"}]}]`,
			wantErr:  "mutability",
		},
		{
			name:     "read-only groups in a path-less value are ignored",
			resource: idpUser,
			ops:      `[{"op":"replace","value":{"groups":[{"value":"x"}],"title":"X"}}]`,
			want:     withAttrs(t, idpUser, map[string]string{"title": `"X"`}),
		},
		{
			name:     "unknown op",
			resource: idpUser,
			ops:      `[{"op":"merge","path":"title","value":"x"}]`,
			wantErr:  "invalidValue",
		},
		{
			name:     "malformed path",
			resource: idpUser,
			ops:      `[{"op":"replace","path":"emails[type eq","value":"x"}]`,
			wantErr:  "invalidPath",
		},
		{
			name:     "unknown sub-attribute of a known attribute",
			resource: idpUser,
			ops:      `[{"op":"replace","path":"name.nick","value":"x"}]`,
			wantErr:  "invalidPath",
		},
		{
			name:     "a group cannot be its own member",
			resource: idpGroup(u[0]),
			ops:      `[{"op":"add","path":"members","value":[{"value":"` + idpGroupID + `"}]}]`,
			wantErr:  "invalidValue", wantIndex: -1,
		},
		{
			name:     "member without value",
			resource: idpGroup(u[0]),
			ops:      `[{"op":"add","path":"members","value":[{"display":"nobody"}]}]`,
			wantErr:  "invalidValue", wantIndex: -1,
		},
	})
}

func TestPatchErrors(t *testing.T) {
	for _, tc := range []struct {
		name, resource, body string
		plain                bool // not a *PatchError
		scimType             string
	}{
		{name: "resource not JSON", resource: `{`, body: ptPatchBody(`[]`), plain: true},
		{name: "resource not an object", resource: `[1]`, body: ptPatchBody(`[]`), plain: true},
		{name: "body not JSON", resource: idpUser, body: `{"schemas":`, scimType: "invalidSyntax"},
		{name: "missing PatchOp schema", resource: idpUser, body: `{"Operations":[{"op":"add","path":"title","value":"x"}]}`, scimType: "invalidValue"},
		{name: "no operations", resource: idpUser, body: ptPatchBody(`[]`), scimType: "invalidValue"},
		{name: "op not a string", resource: idpUser, body: ptPatchBody(`[{"op":1,"path":"title","value":"x"}]`), scimType: "invalidPath"},
		{name: "path-less value not an object", resource: idpUser, body: ptPatchBody(`[{"op":"add","value":"x"}]`), scimType: "invalidValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := shadow.ApplyPatch([]byte(tc.resource), []byte(tc.body))
			var pe *shadow.PatchError
			isPE := errors.As(err, &pe)
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.plain && isPE:
				t.Errorf("got a refusal %v, want a plain error", err)
			case !tc.plain && (!isPE || pe.ScimType != tc.scimType):
				t.Errorf("err = %v, want scimType %s", err, tc.scimType)
			}
			if err.Error() == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestApplyReplaceAndCreate(t *testing.T) {
	put := withAttrs(t, idpUser, map[string]string{
		"title": `"Manager"`, "active": "false", "groups": "[]", "password": `"s3cret"`,
		"id": `"other"`, "meta": `{"resourceType":"User"}`, entURN: "", "displayName": "",
	})
	got, err := shadow.ApplyReplace([]byte(idpUser), []byte(put))
	if err != nil {
		t.Fatal(err)
	}
	want := withAttrs(t, idpUser, map[string]string{
		"title": `"Manager"`, "active": "false", entURN: "", "displayName": "",
		"schemas": `["urn:ietf:params:scim:schemas:core:2.0:User"]`,
	})
	ptAssertJSON(t, got, want) // id, meta, groups kept; password never returned; extension gone

	// A password the current state carries survives a PUT without one.
	cur := withAttrs(t, idpUser, map[string]string{"password": `"old"`})
	body := withAttrs(t, idpUser, map[string]string{"password": ""})
	got, err = shadow.ApplyReplace([]byte(cur), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	ptAssertJSON(t, got, cur)

	for _, tc := range []struct{ name, body, scimType string }{
		{"string boolean", `{"userName":"x","active":"False"}`, "invalidValue"},
		{"missing userName", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"displayName":"x"}`, "invalidValue"},
		{"blank userName", `{"userName":"  "}`, "invalidValue"},
		{"not an object", `[]`, "invalidSyntax"},
		{"extension not an object", `{"userName":"x","` + entURN + `":"y"}`, "invalidSyntax"},
		{"attribute given twice", `{"userName":"x","active":true,"USERNAME":"y"}`, "invalidSyntax"},
		{"sub-attribute given twice", `{"userName":"x","name":{"givenName":"a","GivenName":"b"}}`, "invalidSyntax"},
		{"sub-attribute of an element given twice", `{"userName":"x","emails":[{"value":"a","VALUE":"b"}]}`, "invalidSyntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := shadow.ApplyReplace([]byte(idpUser), []byte(tc.body))
			var pe *shadow.PatchError
			if !errors.As(err, &pe) || pe.ScimType != tc.scimType {
				t.Errorf("ApplyReplace err = %v, want %s", err, tc.scimType)
			}
			_, err = shadow.ApplyCreate([]byte(tc.body))
			if !errors.As(err, &pe) || pe.ScimType != tc.scimType {
				t.Errorf("ApplyCreate err = %v, want %s", err, tc.scimType)
			}
		})
	}

	// A name given twice is reported with its first two spellings in sorted order, whatever
	// the order of the map the body was decoded into.
	for range 20 {
		_, err := shadow.ApplyCreate([]byte(`{"userName":"x","usERName":"z","USERNAME":"y"}`))
		if want := `"userName" given twice ("USERNAME" and "usERName")`; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ApplyCreate err = %v, want %s", err, want)
		}
	}

	// Okta's create: id, meta, groups and password dropped; schemas computed; names canonical.
	created, err := shadow.ApplyCreate([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"username":"ann@example.com",` +
		`"name":{"givenName":"Ann","familyName":"Lee"},"emails":[{"primary":true,"value":"ann@example.com","type":"work"}],` +
		`"displayName":"Ann Lee","locale":"en-US","externalId":"00u9","groups":[],"password":"pw","active":true,"id":"x",` +
		`"department":"dropped","` + entURN + `":{"department":"Ops","manager":{"value":"m","displayName":"dropped"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ptAssertJSON(t, created, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","`+entURN+`"],"userName":"ann@example.com",`+
		`"name":{"givenName":"Ann","familyName":"Lee"},"emails":[{"primary":true,"value":"ann@example.com","type":"work"}],`+
		`"displayName":"Ann Lee","locale":"en-US","externalId":"00u9","active":true,"`+entURN+`":{"department":"Ops","manager":{"value":"m"}}}`)

	// A group create: members reduced to value/type/display, duplicates dropped.
	created, err = shadow.ApplyCreate([]byte(`{"displayName":"Ops","members":[{"value":"a","$ref":"x"},{"value":"b","type":"group","display":"B"},{"value":"a"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ptAssertJSON(t, created, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Ops",`+
		`"members":[{"value":"a","type":"User"},{"value":"b","type":"Group","display":"B"}]}`)
}

// ---------------------------------------------------------------------------------------
// Fidelity: the prediction equals what the example backend really does.

type ptBackend struct {
	t *testing.T
	h http.Handler
}

const ptBase = "http://backend.test/scim/v2"

func newPTBackend(t *testing.T) *ptBackend {
	t.Helper()
	h, err := backend.New(backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &ptBackend{t: t, h: h}
}

func (b *ptBackend) do(method, path, body string) (int, []byte) {
	b.t.Helper()
	req := httptest.NewRequest(method, ptBase+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

func (b *ptBackend) create(endpoint, body string) string {
	b.t.Helper()
	status, raw := b.do("POST", endpoint, body)
	if status != http.StatusCreated {
		b.t.Fatalf("POST %s: %d %s", endpoint, status, raw)
	}
	var r struct{ ID string }
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
		b.t.Fatalf("POST %s: no id in %s", endpoint, raw)
	}
	return r.ID
}

func (b *ptBackend) get(path string) []byte {
	b.t.Helper()
	status, raw := b.do("GET", path, "")
	if status != http.StatusOK {
		b.t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	return raw
}

// ptComparable drops what the engine cannot know from the backend's resource: meta (times,
// version), and a member's display or the manager's displayName and $ref (of a created
// user, whose base URL is unknown) that the backend computes from another resource where the
// prediction has none.
func ptComparable(t *testing.T, predicted, actual []byte) (any, any) {
	t.Helper()
	var p, a map[string]any
	if err := json.Unmarshal(predicted, &p); err != nil {
		t.Fatalf("prediction not JSON: %s", predicted)
	}
	if err := json.Unmarshal(actual, &a); err != nil {
		t.Fatalf("backend answer not JSON: %s", actual)
	}
	delete(p, "meta")
	delete(a, "meta")
	pm, _ := p["members"].([]any)
	am, _ := a["members"].([]any)
	for i := range min(len(pm), len(am)) {
		pe, _ := pm[i].(map[string]any)
		ae, _ := am[i].(map[string]any)
		if _, ok := pe["display"]; !ok && ae != nil {
			delete(ae, "display")
		}
	}
	pext, _ := p[entURN].(map[string]any)
	aext, _ := a[entURN].(map[string]any)
	pmgr, _ := pext["manager"].(map[string]any)
	amgr, _ := aext["manager"].(map[string]any)
	for _, k := range []string{"displayName", "$ref"} {
		if _, ok := pmgr[k]; !ok && amgr != nil {
			delete(amgr, k)
		}
	}
	return p, a
}

type fidelityCase struct {
	name  string
	group bool   // the write goes to the fixture group, else to the fixture user
	ops   string // PATCH Operations; ids as {u0}…{u6}, {mgr}, {self}
	put   string // a PUT body instead
}

func TestPatchMatchesExampleBackend(t *testing.T) {
	b := newPTBackend(t)
	ids := map[string]string{}
	ids["{mgr}"] = b.create("/Users", `{"userName":"boss@example.com","displayName":"The Boss"}`)
	for i := range 7 {
		ids[fmt.Sprintf("{u%d}", i)] = b.create("/Users", fmt.Sprintf(`{"userName":"member%d@example.com"}`, i))
	}
	subst := func(s string) string {
		for k, v := range ids {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	userBody := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + entURN + `"],"userName":"pat%d@example.com","displayName":"Pat",` +
		`"name":{"givenName":"Pat","familyName":"Smith"},"title":"Engineer","active":true,"favoriteColor":"red","externalId":"ext%d",` +
		`"emails":[{"value":"pat@work.example","type":"work","primary":true},{"value":"pat@home.example","type":"home"}],` +
		`"phoneNumbers":[{"value":"+1 555 0100","type":"mobile"}],` +
		`"addresses":[{"type":"work","streetAddress":"1 Main St","locality":"Town","primary":true}],` +
		`"roles":[{"value":"admin"},{"value":"dev","primary":true}],` +
		`"` + entURN + `":{"department":"Eng","employeeNumber":"1","manager":{"value":"` + ids["{mgr}"] + `"}}}`

	for i, tc := range fidelityCases {
		t.Run(tc.name, func(t *testing.T) {
			var endpoint string
			if tc.group {
				endpoint = "/Groups/" + b.create("/Groups", subst(fmt.Sprintf(
					`{"displayName":"group-%d","members":[{"value":"{u0}"},{"value":"{u1}","display":"One"},{"value":"{u2}"},{"value":"{u3}"},{"value":"{u4}"}]}`, i)))
			} else {
				endpoint = "/Users/" + b.create("/Users", fmt.Sprintf(userBody, i, i))
			}
			ids["{self}"] = endpoint[strings.LastIndex(endpoint, "/")+1:]
			ids["{name}"] = fmt.Sprintf("group-%d", i)
			live := b.get(endpoint)
			var (
				predicted []byte
				err       error
				method    = "PATCH"
				body      string
			)
			if tc.put != "" {
				method, body = "PUT", subst(tc.put)
				predicted, err = shadow.ApplyReplace(live, []byte(body))
			} else {
				body = subst(ptPatchBody(tc.ops))
				predicted, err = shadow.ApplyPatch(live, []byte(body))
			}
			status, answer := b.do(method, endpoint, body)
			after := b.get(endpoint)
			t.Logf("backend: %d %.120s", status, answer)
			if status != http.StatusOK {
				var e struct{ ScimType string }
				_ = json.Unmarshal(answer, &e)
				var pe *shadow.PatchError
				if !errors.As(err, &pe) {
					t.Fatalf("backend answered %d %s; predicted success: %v %s", status, answer, err, predicted)
				}
				if pe.ScimType != e.ScimType {
					t.Errorf("backend answered %s, predicted %s (%v)", e.ScimType, pe.ScimType, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("backend applied it (%s); predicted %v", after, err)
			}
			p, a := ptComparable(t, predicted, after)
			if !reflect.DeepEqual(p, a) {
				pi, _ := json.MarshalIndent(p, "", "  ")
				ai, _ := json.MarshalIndent(a, "", "  ")
				t.Errorf("prediction differs from the backend\npredicted: %s\n  backend: %s", pi, ai)
			}
			// The review shows Diff(live, projected): it must list what really changed.
			if pd, ad := shadow.Diff(live, predicted), shadow.Diff(live, after); !sameChanges(pd, ad) {
				t.Errorf("diff differs\npredicted: %+v\n  backend: %+v", pd, ad)
			}
		})
	}
}

// sameChanges compares diffs by op, path and value; member changes by member value only
// (the backend fills in display names the prediction cannot know).
func sameChanges(a, b []shadow.Change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Op != y.Op || x.Path != y.Path {
			return false
		}
		if x.Path == "members" {
			var mx, my struct{ Value string }
			_ = json.Unmarshal(append(x.Old, x.New...), &mx)
			_ = json.Unmarshal(append(y.Old, y.New...), &my)
			if mx.Value != my.Value {
				return false
			}
			continue
		}
		if string(x.Old) != string(y.Old) || string(x.New) != string(y.New) {
			return false
		}
	}
	return true
}

// fidelityCases run against the example backend. Deliberately left out, because the engine
// differs there on purpose: attributes and extension URNs in no schema the engine knows are
// kept as a backend's custom attributes (the example backend refuses such a PATCH path with
// invalidPath and drops such a PUT attribute), and referenced ids are not checked for
// existence (the backend refuses an unknown member id).
var fidelityCases = []fidelityCase{
	// Users
	{name: "Okta deactivate", ops: `[{"op":"replace","value":{"active":false}}]`},
	{name: "capitalised ops and sub-attribute", ops: `[{"op":"Replace","path":"name.familyName","value":"Jones"},{"op":"Add","path":"title","value":"CTO"}]`},
	{name: "uppercase op", ops: `[{"op":"REPLACE","path":"displayName","value":"P."}]`},
	{name: "filtered replace", ops: `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@work.example"}]`},
	{name: "filtered add changes existing", ops: `[{"op":"Add","path":"emails[type eq \"work\"].value","value":"add@work.example"}]`},
	{name: "filtered add creates missing", ops: `[{"op":"add","path":"emails[type eq \"other\"].value","value":"o@x.example"}]`},
	{name: "filtered add with and creates missing", ops: `[{"op":"add","path":"phoneNumbers[type eq \"work\" and display eq \"desk\"].value","value":"+1 555 0199"}]`},
	{name: "filtered replace without match", ops: `[{"op":"replace","path":"emails[type eq \"other\"].value","value":"x@x.example"}]`},
	{name: "filtered add without eq", ops: `[{"op":"add","path":"emails[type ne \"work\" and type ne \"home\"].value","value":"x@x.example"}]`},
	{name: "filtered remove", ops: `[{"op":"remove","path":"emails[type eq \"work\"]"}]`},
	{name: "filtered remove of a sub-attribute", ops: `[{"op":"remove","path":"emails[type eq \"work\"].primary"}]`},
	{name: "filter with pr and not", ops: `[{"op":"remove","path":"emails[not (primary pr)]"}]`},
	{name: "filter case-insensitive value", ops: `[{"op":"replace","path":"emails[type eq \"WORK\"].display","value":"Work"}]`},
	{name: "filter co sw", ops: `[{"op":"replace","path":"emails[value co \"HOME\" or value sw \"zz\"].type","value":"other"}]`},
	{name: "filtered replace of whole value", ops: `[{"op":"replace","path":"emails[type eq \"home\"]","value":{"value":"h2@x.example","type":"home","primary":true}}]`},
	{name: "filtered add of whole value merges", ops: `[{"op":"add","path":"emails[type eq \"home\"]","value":{"display":"Home"}}]`},
	{name: "filtered add of whole value without match adds", ops: `[{"op":"add","path":"emails[type eq \"other\"]","value":{"value":"o@x.example","type":"other"}}]`},
	{name: "filtered primary true demotes", ops: `[{"op":"replace","path":"emails[type eq \"home\"].primary","value":true}]`},
	{name: "sub-attribute on all values", ops: `[{"op":"replace","path":"emails.display","value":"E"}]`},
	{name: "sub-attribute remove on all values", ops: `[{"op":"remove","path":"emails.type"}]`},
	{name: "sub-attribute add to empty multi-valued", ops: `[{"op":"add","path":"ims.value","value":"pat@im"}]`},
	{name: "remove sub-attribute", ops: `[{"op":"remove","path":"name.givenName"}]`},
	{name: "remove last sub-attributes prunes the object", ops: `[{"op":"remove","path":"name.givenName"},{"op":"remove","path":"name.familyName"}]`},
	{name: "remove attribute", ops: `[{"op":"remove","path":"favoriteColor"}]`},
	{name: "custom attribute replace", ops: `[{"op":"replace","path":"favoriteColor","value":"green"}]`},
	{name: "custom attribute case", ops: `[{"op":"replace","path":"FavoriteColor","value":"blue"}]`},
	{name: "multi-valued add is a union", ops: `[{"op":"add","path":"emails","value":[{"value":"pat@work.example","type":"work","primary":true},{"value":"p2@x.example","type":"other"}]}]`},
	{name: "union case-insensitive match", ops: `[{"op":"add","path":"emails","value":[{"value":"PAT@home.example","type":"HOME"}]}]`},
	{name: "added primary demotes old", ops: `[{"op":"add","path":"emails","value":[{"value":"p3@x.example","type":"other","primary":true}]}]`},
	{name: "single value for a multi-valued add", ops: `[{"op":"add","path":"roles","value":{"value":"ops"}}]`},
	{name: "replace multi-valued", ops: `[{"op":"replace","path":"emails","value":[{"value":"only@x.example","type":"home"}]}]`},
	{name: "replace multi-valued with empty array", ops: `[{"op":"replace","path":"roles","value":[]}]`},
	{name: "remove with value array", ops: `[{"op":"remove","path":"roles","value":[{"value":"admin"}]}]`},
	{name: "remove with empty value array", ops: `[{"op":"remove","path":"roles","value":[]}]`},
	{name: "remove of a single-valued attribute with a value", ops: `[{"op":"remove","path":"title","value":"anything"}]`},
	{name: "URN-qualified extension paths", ops: `[{"op":"add","path":"` + entURN + `:employeeNumber","value":"42"},{"op":"replace","path":"` + entURN + `:department","value":"Sales"}]`},
	{name: "URN-qualified core path", ops: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName","value":"Patricia"}]`},
	{name: "lower-case extension URN", ops: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department","value":"x"}]`},
	{name: "Entra path-less dotted and URN keys", ops: `[{"op":"replace","value":{"name.givenName":"Patty","displayName":"Patty Smith","` + entURN + `:employeeNumber":"777",` +
		`"urn:ietf:params:scim:schemas:core:2.0:User:title":"Lead","` + entURN + `:manager":{"value":"{u5}"},"active":false,"` + entURN + `:costCenter":"CC1"}}]`},
	{name: "path-less extension object", ops: `[{"op":"replace","value":{"` + entURN + `":{"division":"R&D"}}}]`},
	{name: "extension URN as path", ops: `[{"op":"add","path":"` + entURN + `","value":{"organization":"ACME"}}]`},
	{name: "path-less complex merges", ops: `[{"op":"replace","value":{"name":{"familyName":"Doe"}}}]`},
	{name: "path-less complex and its sub-attribute", ops: `[{"op":"replace","value":{"name":{"familyName":"Doe","givenName":"Jo"},"name.givenName":"Al"}}]`},
	{name: "path-less filtered key", ops: `[{"op":"replace","value":{"emails[type eq \"home\"].value":"h@x.example"}}]`},
	{name: "manager as object", ops: `[{"op":"Add","path":"` + entURN + `:manager","value":{"value":"{u6}"}}]`},
	{name: "manager value sub-attribute", ops: `[{"op":"replace","path":"` + entURN + `:manager.value","value":"{u6}"}]`},
	{name: "manager unchanged while department changes", ops: `[{"op":"replace","path":"` + entURN + `:department","value":"Ops"}]`},
	{name: "manager bare string", ops: `[{"op":"Add","path":"` + entURN + `:manager","value":"{mgr}"}]`},
	{name: "manager displayName is read-only", ops: `[{"op":"replace","path":"` + entURN + `:manager.displayName","value":"x"}]`},
	{name: "remove whole extension attributes", ops: `[{"op":"remove","path":"` + entURN + `:department"},{"op":"remove","path":"` + entURN + `:employeeNumber"},{"op":"remove","path":"` + entURN + `:manager"}]`},
	{name: "path-less id ignored", ops: `[{"op":"replace","value":{"id":"other","title":"X"}}]`},
	{name: "path-less ID twice", ops: `[{"op":"replace","value":{"id":"a","ID":"b","title":"X"}}]`},
	{name: "remove without path", ops: `[{"op":"remove"}]`},
	{name: "enterprise attribute without URN", ops: `[{"op":"replace","path":"department","value":"x"}]`},
	{name: "schemas as path", ops: `[{"op":"replace","path":"schemas","value":["x"]}]`},
	{name: "meta in a path-less value", ops: `[{"op":"replace","value":{"meta":{"version":"x"}}}]`},
	{name: "read-only groups path", ops: `[{"op":"add","path":"groups","value":[{"value":"x"}]}]`},
	{name: "read-only id path", ops: `[{"op":"replace","path":"id","value":"x"}]`},
	{name: "remove required userName", ops: `[{"op":"remove","path":"userName"}]`},
	{name: "blank userName", ops: `[{"op":"replace","path":"userName","value":" "}]`},
	{name: "unknown op", ops: `[{"op":"merge","path":"title","value":"x"}]`},
	{name: "string boolean", ops: `[{"op":"replace","path":"title","value":"Changed"},{"op":"replace","path":"active","value":"False"}]`},
	{name: "number for a string", ops: `[{"op":"replace","path":"title","value":42}]`},
	{name: "null value", ops: `[{"op":"replace","path":"title","value":null}]`},
	{name: "null inside a path-less value", ops: `[{"op":"replace","value":{"title":null}}]`},
	{name: "null sub-attribute dropped", ops: `[{"op":"replace","path":"name","value":{"givenName":null,"familyName":"N"}}]`},
	{name: "filter on a single-valued attribute", ops: `[{"op":"replace","path":"name[givenName eq \"Pat\"].familyName","value":"x"}]`},
	{name: "filter naming an unknown sub-attribute", ops: `[{"op":"replace","path":"emails[kind eq \"work\"].value","value":"x"}]`},
	{name: "three comparisons in a filter", ops: `[{"op":"remove","path":"emails[type eq \"a\" or type eq \"b\" or type eq \"c\"]"}]`},
	{name: "x509 not base64", ops: `[{"op":"add","path":"x509Certificates","value":[{"value":"not base64!"}]}]`},
	{name: "x509 base64", ops: `[{"op":"add","path":"x509Certificates","value":[{"value":"TUlJQw=="}]}]`},
	{name: "unknown sub-attributes dropped", ops: `[{"op":"add","path":"emails","value":[{"value":"q@x.example","kind":"x"}]}]`},
	{name: "path with spaces in filter, no space after eq", ops: `[{"op":"remove","path":"emails[type eq\"work\"]"}]`},
	{name: "body not JSON", ops: ``},
	{name: "trailing data after the message is ignored", ops: `[]}, "schemas": null, "x": {`},
	// Groups
	{name: "group: Entra value-array removal 1 of 5", group: true, ops: `[{"op":"Remove","path":"members","value":[{"value":"{u2}"}]}]`},
	{name: "group: value-array removal of several", group: true, ops: `[{"op":"remove","path":"members","value":[{"value":"{u0}"},{"value":"{u4}"}]}]`},
	{name: "group: Entra add members", group: true, ops: `[{"op":"Add","path":"members","value":[{"value":"{u5}"},{"value":"{u6}"}]}]`},
	{name: "group: re-add merges display", group: true, ops: `[{"op":"add","path":"members","value":[{"value":"{u1}","display":"m1"},{"value":"{u1}"}]}]`},
	{name: "group: Okta rename + filtered remove + add", group: true, ops: `[{"op":"replace","value":{"id":"{self}","displayName":"Renamed"}},` +
		`{"op":"remove","path":"members[value eq \"{u1}\"]"},{"op":"add","path":"members","value":[{"value":"{u5}","display":"member5@example.com"}]}]`},
	{name: "group: Okta no-op rename", group: true, ops: `[{"op":"replace","value":{"id":"{self}","displayName":"{name}"}}]`},
	{name: "group: filtered remove of a non-member", group: true, ops: `[{"op":"remove","path":"members[value eq \"{u6}\"]"}]`},
	{name: "group: filtered remove of two", group: true, ops: `[{"op":"remove","path":"members[value eq \"{u0}\" or value eq \"{u3}\"]"}]`},
	{name: "group: replace members", group: true, ops: `[{"op":"replace","path":"members","value":[{"value":"{u6}"},{"value":"{u1}"}]}]`},
	{name: "group: path-less replace of members", group: true, ops: `[{"op":"replace","value":{"members":[{"value":"{u0}"}]}}]`},
	{name: "group: remove all members", group: true, ops: `[{"op":"remove","path":"members"}]`},
	{name: "group: add members with type and $ref", group: true, ops: `[{"op":"add","path":"members","value":[{"value":"{u5}","type":"User","$ref":"http://elsewhere/Users/{u5}"}]}]`},
	{name: "group: add self", group: true, ops: `[{"op":"add","path":"members","value":[{"value":"{self}"}]}]`},
	{name: "group: member without value", group: true, ops: `[{"op":"add","path":"members","value":[{"display":"x"}]}]`},
	{name: "group: members display filter", group: true, ops: `[{"op":"remove","path":"members[display eq \"One\"]"}]`},
	{name: "group: replace member display by filter", group: true, ops: `[{"op":"replace","path":"members[value eq \"{u0}\"].display","value":"Zero"}]`},
	{name: "group: rename", group: true, ops: `[{"op":"replace","path":"displayName","value":"New name"}]`},
	{name: "group: blank displayName", group: true, ops: `[{"op":"replace","path":"displayName","value":""}]`},
	{name: "group: enterprise URN path", group: true, ops: `[{"op":"replace","path":"` + entURN + `:department","value":"x"}]`},
	{name: "group: externalId", group: true, ops: `[{"op":"add","path":"externalId","value":"g-ext"}]`},
	{name: "group: path-less keys in another case and URN-qualified", group: true, ops: `[{"op":"replace","value":{"DISPLAYNAME":"C","ExternalID":"E"}},` +
		`{"op":"replace","value":{"urn:ietf:params:scim:schemas:core:2.0:Group:displayName":"U","members[value eq \"{u1}\"].display":"D"}}]`},
	{name: "group: user attribute refused", group: true, ops: `[{"op":"replace","value":{"userName":"x"}}]`},
	{name: "user: members refused", ops: `[{"op":"add","path":"members","value":[{"value":"{u1}"}]}]`},
	{name: "user: ext URN as path without value", ops: `[{"op":"add","path":"` + entURN + `"}]`},
	// PUT
	{name: "PUT Okta wizard full object", put: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"{self}","userName":"pat-put@example.com",` +
		`"name":{"givenName":"Pat","familyName":"Smith"},"emails":[{"value":"pat@work.example","type":"work","primary":true}],"active":false,` +
		`"groups":[{"value":"x"}],"meta":{"resourceType":"User"},"password":"pw","locale":"en-US"}`},
	{name: "PUT with extension and unknown attributes", put: `{"userName":"pat-put2@example.com","department":"top-level is dropped",` +
		`"` + entURN + `":{"department":"Ops","manager":{"value":"{mgr}","displayName":"ignored"}},"emails":{"value":"single@x.example"}}`},
	{name: "PUT string boolean", put: `{"userName":"pat-put3@example.com","active":"False"}`},
	{name: "PUT without userName", put: `{"displayName":"x"}`},
	{name: "PUT group members", group: true, put: `{"displayName":"put-group","members":[{"value":"{u6}"},{"value":"{u1}","display":"Uno"},{"value":"{u6}"}]}`},
}

func TestApplyCreateMatchesExampleBackend(t *testing.T) {
	b := newPTBackend(t)
	mgr := b.create("/Users", `{"userName":"boss@example.com"}`)
	for i, body := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"okta%d@example.com","name":{"givenName":"A","familyName":"B"},` +
			`"emails":[{"primary":true,"value":"a@example.com","type":"work"}],"displayName":"A B","locale":"en-US","externalId":"00u%d","groups":[],"password":"pw","active":true}`,
		`{"userName":"entra%d@example.com","externalId":"e%d","active":true,"title":null,"` + entURN + `":{"employeeNumber":"9","manager":{"value":"` + mgr + `"}},"phoneNumbers":[{"value":"1","type":"work"}]}`,
		`{"UserName":"case%d@example.com","DisplayName":"Case %d","EMAILS":[{"VALUE":"c@x.example","Type":"work"}]}`,
		`{"userName":"drop%d@example.com","id":"x","groups":[{"value":"g"}],"department":"top","meta":{"created":"%d"}}`,
		// The Kelvin sign folds to k: a key of another length still names nickName.
		`{"userName":"kelvin%d@example.com","nic\u212AName":"K%d"}`,
	} {
		body = fmt.Sprintf(body, i, i)
		predicted, err := shadow.ApplyCreate([]byte(body))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		status, answer := b.do("POST", "/Users", body)
		if status != http.StatusCreated {
			t.Fatalf("%d: backend %d %s", i, status, answer)
		}
		var a map[string]any
		_ = json.Unmarshal(answer, &a)
		delete(a, "id")
		raw, _ := json.Marshal(a)
		p, q := ptComparable(t, predicted, raw)
		if !reflect.DeepEqual(p, q) {
			t.Errorf("%d: predicted %v\nbackend %v", i, p, q)
		}
	}
}
