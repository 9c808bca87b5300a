package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchUser is a ~2 KB Okta-shaped user on which five rules fire: a top-level rename, a
// nested fallback, a move into the enterprise extension, a value-filter fallback and a
// default.
const benchUser = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],` +
	`"userName":"isabel.moreno@example.org","name":{"givenName":"Isabel","familyName":"Moreno","formatted":"Isabel Moreno"},` +
	`"emails":[{"primary":true,"value":"isabel.moreno@example.org","type":"other"},{"primary":false,"value":"imoreno@home.example","type":"home"}],` +
	`"displayName":"Isabel Moreno","externalId":"00u1a2b3c4d5e6f7g8h9","active":true,"groups":[],` +
	`"password":"Tr0ub4dor&3-correct-horse","title":"Senior Platform Engineer","userType":"Employee","timezone":"Europe/Madrid",` +
	`"phoneNumbers":[{"value":"+34 600 000 000","type":"mobile","primary":true},{"value":"+34 910 000 000","type":"work"}],` +
	`"addresses":[{"type":"work","streetAddress":"Calle de Alcala 1","locality":"Madrid","region":"MD","postalCode":"28014","country":"ES","primary":true}],` +
	`"favorite_color":"teal","preferences":{"nickname":"Isa","theme":"dark"},"department":"Platform",` +
	`"entitlements":[{"value":"vpn-access"},{"value":"prod-read"},{"value":"staging-write"}],` +
	`"roles":[{"value":"engineer","display":"Engineer","primary":true}],` +
	`"x509Certificates":[],"ims":[{"value":"isabel.moreno","type":"xmpp"}],` +
	`"photos":[{"value":"https://photos.example.org/isabel.moreno/profile-large.jpg","type":"photo"},{"value":"https://photos.example.org/isabel.moreno/profile-small.jpg","type":"thumbnail"}],` +
	`"profileUrl":"https://people.example.org/isabel.moreno","employeeNumber":"E-004217","costCenter":"CC-5100","organization":"Example Org",` +
	`"division":"Engineering","managerEmail":"oscar.alvarez@example.org","officeLocation":"Madrid HQ, Floor 4, Desk 4.117",` +
	`"mobileDevice":"ios","loginShell":"/bin/zsh","githubHandle":"imoreno","slackHandle":"@isabel","startDate":"2021-03-15",` +
	`"badgeId":"B-99812","parkingSpot":"P2-117","emergencyContact":"Luis Moreno +34 600 111 222","shirtSize":"M",` +
	`"dietaryPreferences":"vegetarian","pronouns":"she/her","homeOffice":false,"contractor":false,"seniority":7,` +
	`"notes":"Transferred from the Barcelona office in 2023; owns the build infrastructure and the release tooling."}`

func benchSet(b *testing.B) *Set {
	s, err := Compile(map[string]ResourceRules{"User": {Rules: []Rule{
		{Target: "favoriteColor", From: []string{"favorite_color"}},
		{Target: "nickName", From: []string{"preferences.nickname"}},
		{Target: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", From: []string{"department"}},
		{Target: `emails[type eq "work"].value`, From: []string{`emails[type eq "other"].value`}},
		{Target: "locale", Default: json.RawMessage(`"es-ES"`)},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkRewriteResource(b *testing.B) {
	s := benchSet(b)
	body := []byte(benchUser)
	out, f, err := s.RewriteResource("User", OpCreate, body)
	if err != nil || len(f) != 5 {
		b.Fatalf("setup: %v, %d findings: %+v\n%s", err, len(f), f, out)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.RewriteResource("User", OpCreate, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewritePatch(b *testing.B) {
	s := mustCompile(b, testRules())
	var members strings.Builder
	members.WriteString(patchPrefix)
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&members, `{"op":"remove","path":"members[value eq \"00g%04d\"]"},`, i)
	}
	members.WriteString(`{"op":"add","path":"members","value":[{"value":"00u1","display":"a@example.com"}]}` + patchSuffix)
	for _, bc := range []struct{ name, rt, body string }{
		{"entra-update", "User", entraUpdate},
		{"entra-pathless", "User", entraPathless},
		{"okta-group-50-members", "Group", members.String()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, err := s.RewritePatch(bc.rt, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRewriteFilter(b *testing.B) {
	s := mustCompile(b, testRules())
	for _, f := range []string{`userName eq "ada@example.com"`, `favorite_color eq "red"`} {
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := s.RewriteFilter("User", f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNormalizeAndRewrite2KB is the request path of an Entra connection with every
// normalisation on, then the five rules, on the 2 KB user: "dialect" carries a string
// boolean and a bare-string manager (both normalised), "clean" carries neither (the quick
// look finds nothing to do).
func BenchmarkNormalizeAndRewrite2KB(b *testing.B) {
	s := benchSet(b)
	dialect := strings.Replace(strings.Replace(benchUser, `"active":true`, `"active":"True"`, 1),
		`"department":"Platform"`, `"department":"Platform","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m-1"}`, 1)
	all := Normalization{true, true, true, true, true}
	for _, c := range []struct {
		name     string
		body     string
		findings int
	}{{"dialect", dialect, 2}, {"clean", benchUser, 0}} {
		b.Run(c.name, func(b *testing.B) {
			body := []byte(c.body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				n, fs, err := NormalizeResource(all, nil, body)
				if err != nil || len(fs) != c.findings {
					b.Fatalf("%v %d", err, len(fs))
				}
				if _, _, err := s.RewriteResource("User", OpCreate, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReverse2KB reverses the rewritten 2 KB user for a connection using every From.
func BenchmarkReverse2KB(b *testing.B) {
	s := benchSet(b)
	fwd, _, err := s.RewriteResource("User", OpCreate, []byte(benchUser))
	if err != nil {
		b.Fatal(err)
	}
	used := benchSources()
	b.SetBytes(int64(len(fwd)))
	b.ReportAllocs()
	for b.Loop() {
		if _, n, err := s.ReverseResponse("User", fwd, used); err != nil || n != 3 {
			b.Fatalf("%v %d", err, n)
		}
	}
}

// BenchmarkReverseUnmoved reverses a 100-member group for the connection of
// BenchmarkReverse2KB: no target name occurs in it, so it is not parsed ("full": parsed).
func BenchmarkReverseUnmoved(b *testing.B) {
	s := benchSet(b)
	used := benchSources()
	var sb strings.Builder
	sb.WriteString(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g","displayName":"group","members":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"value":"u%d","display":"user%d@example.org"}`, i, i)
	}
	sb.WriteString(`],"meta":{"resourceType":"Group"}}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for _, full := range []bool{false, true} {
		b.Run(map[bool]string{false: "shortcut", true: "full"}[full], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var n int
				if full {
					_, n, _ = s.appendReverse(nil, "User", body, used)
				} else {
					_, n, _ = s.AppendReverseResponse(nil, "User", body, used)
				}
				if n != 0 {
					b.Fatal("moved")
				}
			}
		})
	}
}

// benchSources is the SourceFunc of a connection using three of benchSet's From paths
// (its map made once, as the engine's is).
func benchSources() SourceFunc {
	m := map[string]string{"favoriteColor": "favorite_color", "nickName": "preferences.nickname",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "department"}
	return func(_, target string) string { return m[target] }
}
