// Package bench is the load harness of scim-shadow: a fast canned SCIM backend, a load
// client, the Caddy processes under test, the scenarios of BENCHMARKS.md and its report.
// It is run by bench/cmd/scimbench (make bench) and, at tiny scale, by smoke_test.go.
package bench

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
)

// enterprise is the enterprise extension schema URN.
const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// UserBody is a ~2 KB Okta-shaped user (the shape of rules/bench_test.go's benchUser) on
// which the five rules of rulesBlock fire: a top-level rename, a nested fallback, a move
// into the enterprise extension, a value-filter fallback and a default. n makes it unique.
func UserBody(n int) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],`+
		`"userName":"user%[1]d@example.org","name":{"givenName":"Isabel","familyName":"Moreno %[1]d","formatted":"Isabel Moreno %[1]d"},`+
		`"emails":[{"primary":true,"value":"user%[1]d@example.org","type":"other"},{"primary":false,"value":"u%[1]d@home.example","type":"home"}],`+
		`"displayName":"Isabel Moreno %[1]d","externalId":"00u%[1]d","active":true,"groups":[],`+
		`"password":"Tr0ub4dor&3-correct-horse","title":"Senior Platform Engineer","userType":"Employee","timezone":"Europe/Madrid",`+
		`"phoneNumbers":[{"value":"+34 600 000 000","type":"mobile","primary":true},{"value":"+34 910 000 000","type":"work"}],`+
		`"addresses":[{"type":"work","streetAddress":"Calle de Alcala 1","locality":"Madrid","region":"MD","postalCode":"28014","country":"ES","primary":true}],`+
		`"favorite_color":"teal","preferences":{"nickname":"Isa","theme":"dark"},"department":"Platform",`+
		`"entitlements":[{"value":"vpn-access"},{"value":"prod-read"},{"value":"staging-write"}],`+
		`"roles":[{"value":"engineer","display":"Engineer","primary":true}],`+
		`"x509Certificates":[],"ims":[{"value":"isabel.moreno","type":"xmpp"}],`+
		`"photos":[{"value":"https://photos.example.org/%[1]d/profile-large.jpg","type":"photo"},{"value":"https://photos.example.org/%[1]d/profile-small.jpg","type":"thumbnail"}],`+
		`"profileUrl":"https://people.example.org/%[1]d","employeeNumber":"E-%[1]d","costCenter":"CC-5100","organization":"Example Org",`+
		`"division":"Engineering","managerEmail":"oscar.alvarez@example.org","officeLocation":"Madrid HQ, Floor 4, Desk 4.117",`+
		`"mobileDevice":"ios","loginShell":"/bin/zsh","githubHandle":"imoreno","slackHandle":"@isabel","startDate":"2021-03-15",`+
		`"badgeId":"B-99812","parkingSpot":"P2-117","emergencyContact":"Luis Moreno +34 600 111 222","shirtSize":"M",`+
		`"dietaryPreferences":"vegetarian","pronouns":"she/her","homeOffice":false,"contractor":false,"seniority":7,`+
		`"notes":"Transferred from the Barcelona office in 2023; owns the build infrastructure and the release tooling."}`, n)
}

// liveUser is the user the fast backend answers for /Users/{id}: userBody after the
// rules, with an id and meta.
func liveUser(id string) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User",%q],"id":%q,`+
		`"userName":"%[2]s@example.org","name":{"givenName":"Isabel","familyName":"Moreno","formatted":"Isabel Moreno"},`+
		`"emails":[{"primary":true,"value":"%[2]s@example.org","type":"work"}],"displayName":"Isabel Moreno","externalId":"00u%[2]s",`+
		`"active":true,"title":"Platform Engineer","nickName":"Isa","favoriteColor":"blue","locale":"es-ES",`+
		`%[1]q:{"department":"Platform","employeeNumber":"E-1"},`+
		`"meta":{"resourceType":"User","created":"2024-01-01T00:00:00Z","lastModified":"2024-01-01T00:00:00Z","location":"/scim/v2/Users/%[2]s"}}`,
		enterprise, id)
}

// PatchBody is an Okta/Entra-shaped user PATCH: a path replace that a rule rewrites
// (favorite_color → favoriteColor), a path-less value with a renamed key, and active.
func PatchBody(n int) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+
		`{"op":"replace","path":"favorite_color","value":"color-%[1]d"},`+
		`{"op":"replace","value":{"department":"Dept %[1]d","title":"Engineer %[1]d"}},`+
		`{"op":"replace","path":"active","value":%[2]t}]}`, n, n%10 != 0)
}

// groupBody is a group create with members (ids the fast backend knows: it knows every id).
func groupBody(name string, first, members int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q,"members":[`, name)
	for i := 0; i < members; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"value":"u%d","display":"user%d@example.org"}`, first+i, first+i)
	}
	sb.WriteString(`]}`)
	return sb.String()
}

// rulesBlock is the map block of the scim_shadow handler: five rules that fire on
// userBody (and on patchBody's paths).
const rulesBlock = `map User {
			favoriteColor {
				from favorite_color
			}
			nickName {
				from preferences.nickname
			}
			urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department {
				from department
			}
			` + "`" + `emails[type eq "work"].value` + "`" + ` {
				from ` + "`" + `emails[type eq "other"].value` + "`" + `
			}
			locale {
				default es-ES
			}
		}`

// Rules is rulesBlock as a rule set, for micro-benchmarks.
func Rules() map[string]rules.ResourceRules {
	return map[string]rules.ResourceRules{"User": {Rules: []rules.Rule{
		{Target: "favoriteColor", From: []string{"favorite_color"}},
		{Target: "nickName", From: []string{"preferences.nickname"}},
		{Target: enterprise + ":department", From: []string{"department"}},
		{Target: `emails[type eq "work"].value`, From: []string{`emails[type eq "other"].value`}},
		{Target: "locale", Default: json.RawMessage(`"es-ES"`)},
	}}}
}
