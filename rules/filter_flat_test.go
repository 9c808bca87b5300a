package rules

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

var flatSeeds = []string{
	`userName eq "ada@example.com"`,
	`externalId eq "00u1"`,
	`favorite_color eq "blue" and active eq true`,
	`favorite_color EQ "blue" AND active eq false or name.givenName sw "A"`,
	`a eq 1 or b eq 2 and c eq 3`,
	`a eq 1 and b eq 2 and c eq 3 or d pr`,
	`title pr`, `title pr and x eq null`, `x gt -12`, `x gt 0`, `x gt 01`, `x gt -0`, `x eq 1.5`,
	`x eq "a\"b"`, `x eq "é"`, `x eq ""`, `x eq truex`, `x eq True`, `x  eq 1`, `x eq 1 `,
	`emails[type eq "work"].value eq "x"`, `not (x eq 1)`, `(x eq 1)`, `urn:x:y:z eq 1`,
	`and eq 1`, `x eq 1 and`, `x eq 1 andy eq 2`, `x.y.z eq 1`, `$ref eq "x"`, `x-y_z eq 1`,
	`department eq "R&D" or preferences.nickname co "x"`, `9x eq 1`, `x eq 1 or  y eq 2`,
}

func FuzzFlatFilter(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFlat(t, s) })
}

// checkFlat: a filter parseFlatFilter takes parses to the same AST with the parser, and
// the rewrite with the bench rules gives the same string as the parser-based one.
func checkFlat(t *testing.T, s string) {
	t.Helper()
	e, ok := parseFlatFilter(s)
	if !ok {
		return
	}
	pe, err := parseFilterSafe(s)
	if err != nil {
		t.Fatalf("%q: flat parse took it, the parser says %v", s, err)
	}
	if !reflect.DeepEqual(e, pe) {
		t.Fatalf("%q: flat AST %#v, parser %#v", s, e, pe)
	}
	set := flatRules(t)
	tr := set.lookup("User")
	got, err := set.RewriteFilter("User", s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	want := s
	if ne, changed := tr.renameExpr(pe); changed {
		var b strings.Builder
		writeExpr(&b, ne, false)
		want = b.String()
	}
	if got != want {
		t.Fatalf("%q: rewrite %q, parser-based %q", s, got, want)
	}
}

func flatRules(t testing.TB) *Set {
	set, err := Compile(map[string]ResourceRules{"User": {Rules: []Rule{
		{Target: "favoriteColor", From: []string{"favorite_color"}},
		{Target: "nickName", From: []string{"preferences.nickname"}},
		{Target: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", From: []string{"department"}},
		{Target: `emails[type eq "work"].value`, From: []string{`emails[type eq "other"].value`}},
		{Target: "name", From: []string{"fullName"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestFlatFilterGenerated: random filters from the flat grammar's pieces (and near
// misses) agree with the parser.
func TestFlatFilterGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"userName", "favorite_color", "Favorite_Color", "preferences.nickname", "department",
		"fullName.givenName", "fullName", "a-b", "x_1", "name.familyName", "emails", "nick"}
	ops := []string{"eq", "NE", "co", "Sw", "ew", "gt", "lt", "ge", "le", "pr", "PR", "eq"}
	vals := []string{`"x"`, `""`, `"a b"`, `"ada@example.com"`, `12`, `-3`, `0`, `true`, `false`, `null`, `"R&D"`, `"{}[]()"`}
	joins := []string{" and ", " or ", " AND ", " Or "}
	took := 0
	for range 3000 {
		var b strings.Builder
		for k := range 1 + r.IntN(4) {
			if k > 0 {
				b.WriteString(joins[r.IntN(len(joins))])
			}
			b.WriteString(names[r.IntN(len(names))])
			b.WriteByte(' ')
			op := ops[r.IntN(len(ops))]
			b.WriteString(op)
			if !strings.EqualFold(op, "pr") {
				b.WriteByte(' ')
				b.WriteString(vals[r.IntN(len(vals))])
			}
		}
		s := b.String()
		if _, ok := parseFlatFilter(s); ok {
			took++
		}
		checkFlat(t, s)
	}
	if took < 2900 {
		t.Fatalf("flat parse took only %d of 3000 generated filters", took)
	}
	for _, s := range flatSeeds {
		checkFlat(t, s)
	}
}
