package backend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestAuth(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name, auth string
		want       int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"wrong scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"token only", testToken, http.StatusUnauthorized},
		{"valid", "Bearer " + testToken, http.StatusOK},
		{"valid lowercase scheme", "bearer " + testToken, http.StatusOK},
	}
	for _, path := range []string{"/Users", "/Groups", "/ServiceProviderConfig", "/Schemas"} {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				r := e.doAuth("GET", path, nil, tc.auth).must(t, tc.want)
				if got := r.header.Get("Content-Type"); got != "application/scim+json" {
					t.Errorf("Content-Type = %q", got)
				}
				if tc.want == http.StatusUnauthorized {
					if r.str("status") != "401" || r.str("schemas.0") != "urn:ietf:params:scim:api:messages:2.0:Error" {
						t.Errorf("not a SCIM error: %s", r.raw)
					}
					if r.header.Get("WWW-Authenticate") == "" {
						t.Error("missing WWW-Authenticate")
					}
				}
			})
		}
	}

	t.Run("no token configured", func(t *testing.T) {
		h, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		res, err := http.Get(srv.URL + "/scim/v2/Users")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}

func TestCreateAndGetUser(t *testing.T) {
	e := newTestEnv(t)
	body := map[string]any{
		"schemas":  []string{coreUser, entUser},
		"userName": "ada@example.com",
		"name":     map[string]any{"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
		"emails": []any{
			map[string]any{"value": "ada@example.com", "type": "work", "primary": true, "display": "Ada"},
		},
		"phoneNumbers":      []any{map[string]any{"value": "+1 555 0100", "type": "mobile"}},
		"addresses":         []any{map[string]any{"streetAddress": "1 Main St", "locality": "Town", "type": "work"}},
		"displayName":       "Ada Lovelace",
		"nickName":          "ada",
		"title":             "Engineer",
		"userType":          "Employee",
		"locale":            "en-GB",
		"timezone":          "Europe/London",
		"preferredLanguage": "en",
		"active":            true,
		"password":          "hunter2",
		"externalId":        "00u1",
		"favoriteColor":     "teal",
		"groups":            []any{},                     // readOnly: ignored
		"id":                "client-chosen",             // readOnly: ignored
		"unknownAttribute":  "dropped",                   // unknown: ignored
		"urn:example:other": map[string]any{"x": "drop"}, // unknown extension: ignored
		entUser: map[string]any{
			"employeeNumber": "701984",
			"costCenter":     "4130",
			"organization":   "Universal Studios",
			"division":       "Theme Park",
			"department":     "Tour Operations",
			"manager":        map[string]any{"value": "mgr-1"},
		},
	}
	r := e.do("POST", "/Users", body).must(t, http.StatusCreated)
	id := r.str("id")
	if !uuidRE.MatchString(id) {
		t.Fatalf("id %q is not UUID-like", id)
	}
	if got, want := r.header.Get("Location"), e.base+"/Users/"+id; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/scim+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if r.header.Get("ETag") == "" {
		t.Error("missing ETag")
	}

	fetched := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
	for _, res := range []response{r, fetched} {
		checks := map[string]any{
			"userName":                        "ada@example.com",
			"name.givenName":                  "Ada",
			"name.familyName":                 "Lovelace",
			"emails.0.value":                  "ada@example.com",
			"emails.0.primary":                true,
			"phoneNumbers.0.type":             "mobile",
			"addresses.0.locality":            "Town",
			"displayName":                     "Ada Lovelace",
			"nickName":                        "ada",
			"title":                           "Engineer",
			"userType":                        "Employee",
			"locale":                          "en-GB",
			"timezone":                        "Europe/London",
			"preferredLanguage":               "en",
			"active":                          true,
			"externalId":                      "00u1",
			"favoriteColor":                   "teal",
			"{" + entUser + "}.department":    "Tour Operations",
			"{" + entUser + "}.manager.value": "mgr-1",
			"meta.resourceType":               "User",
			"meta.location":                   e.base + "/Users/" + id,
			"meta.version":                    `W/"1"`,
			"id":                              id,
		}
		for path, want := range checks {
			if got := get(res.body, path); got != want {
				t.Errorf("%s = %#v, want %#v", path, got, want)
			}
		}
		for _, absent := range []string{"password", "unknownAttribute", "urn:example:other", "groups"} {
			if _, ok := res.body[absent]; ok {
				t.Errorf("%q must not be returned", absent)
			}
		}
		if res.str("meta.created") == "" || res.str("meta.lastModified") == "" {
			t.Errorf("meta incomplete: %v", res.body["meta"])
		}
		schemas := fmt.Sprint(res.body["schemas"])
		if schemas != fmt.Sprintf("[%s %s]", coreUser, entUser) {
			t.Errorf("schemas = %s", schemas)
		}
	}

	// Explicit nulls (Entra) are treated as absent.
	nr := e.do("POST", "/Users", map[string]any{
		"schemas": []string{coreUser, entUser}, "userName": "nulls@example.com",
		"title": nil, "name": map[string]any{"givenName": "N", "familyName": nil},
		entUser: map[string]any{"department": nil, "manager": nil},
	}).must(t, http.StatusCreated)
	if _, ok := nr.body["title"]; ok || get(nr.body, "name.givenName") != "N" || nr.body[entUser] != nil {
		t.Errorf("nulls: %s", nr.raw)
	}

	// A user without extension data does not list the extension schema.
	id2 := e.createUser("plain", nil)
	r2 := e.do("GET", "/Users/"+id2, nil).must(t, http.StatusOK)
	if fmt.Sprint(r2.body["schemas"]) != "["+coreUser+"]" {
		t.Errorf("schemas = %v", r2.body["schemas"])
	}
}

func TestCreateValidation(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name     string
		path     string
		body     any
		status   int
		scimType string
	}{
		{"missing userName", "/Users", map[string]any{"schemas": []string{coreUser}, "active": true}, 400, "invalidValue"},
		{"string boolean", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": "b1", "active": "False"}, 400, "invalidValue"},
		{"number for string", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": 42}, 400, "invalidValue"},
		{"string primary", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": "b2", "emails": []any{map[string]any{"value": "x@y", "primary": "true"}}}, 400, "invalidValue"},
		{"enterprise wrong type", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": "b3", entUser: map[string]any{"manager": "bare-id"}}, 400, "invalidValue"},
		{"empty userName", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": " "}, 400, "invalidValue"},
		{"invalid json", "/Users", `{"userName":`, 400, "invalidSyntax"},
		{"group without displayName", "/Groups", map[string]any{"schemas": []string{coreGroup}}, 400, "invalidValue"},
		{"group with unknown member", "/Groups", map[string]any{"schemas": []string{coreGroup}, "displayName": "g", "members": []any{map[string]any{"value": "nope"}}}, 400, "invalidValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", tc.path, tc.body).must(t, tc.status)
			if r.scimType() != tc.scimType {
				t.Errorf("scimType = %q, want %q (%s)", r.scimType(), tc.scimType, r.raw)
			}
		})
	}
}

func TestUniqueness(t *testing.T) {
	e := newTestEnv(t)
	uid := e.createUser("Bob@Example.com", nil)
	other := e.createUser("carol@example.com", nil)
	gid := e.createGroup("Engineering")
	g2 := e.createGroup("Sales")

	tests := []struct {
		name         string
		method, path string
		body         any
	}{
		{"same userName", "POST", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": "Bob@Example.com"}},
		{"case variant userName", "POST", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": "bob@EXAMPLE.com"}},
		{"same group name", "POST", "/Groups", map[string]any{"schemas": []string{coreGroup}, "displayName": "Engineering"}},
		{"case variant group name", "POST", "/Groups", map[string]any{"schemas": []string{coreGroup}, "displayName": "engineering"}},
		{"PUT onto taken userName", "PUT", "/Users/" + other, map[string]any{"schemas": []string{coreUser}, "userName": "BOB@example.com"}},
		{"PATCH onto taken userName", "PATCH", "/Users/" + other, patchBody(op("replace", "userName", "bob@example.com"))},
		{"PATCH onto taken group name", "PATCH", "/Groups/" + g2, patchBody(op("replace", "displayName", "ENGINEERING"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body).must(t, http.StatusConflict)
			if r.scimType() != "uniqueness" || r.str("status") != "409" {
				t.Errorf("bad error body: %s", r.raw)
			}
		})
	}
	// Renaming a resource to a case variant of its own name is fine.
	e.do("PATCH", "/Users/"+uid, patchBody(op("replace", "userName", "bob@example.com"))).must(t, http.StatusOK)
	e.do("PATCH", "/Groups/"+gid, patchBody(op("replace", "displayName", "ENGINEERING"))).must(t, http.StatusOK)
}

func TestNotFound(t *testing.T) {
	e := newTestEnv(t)
	missing := "00000000-0000-4000-8000-000000000000"
	tests := []struct {
		method, path string
		body         any
	}{
		{"GET", "/Users/" + missing, nil},
		{"PUT", "/Users/" + missing, map[string]any{"schemas": []string{coreUser}, "userName": "x"}},
		{"PATCH", "/Users/" + missing, patchBody(op("replace", "active", false))},
		{"DELETE", "/Users/" + missing, nil},
		{"GET", "/Groups/" + missing, nil},
		{"PUT", "/Groups/" + missing, map[string]any{"schemas": []string{coreGroup}, "displayName": "x"}},
		{"PATCH", "/Groups/" + missing, patchBody(op("replace", "displayName", "y"))},
		{"DELETE", "/Groups/" + missing, nil},
		{"GET", "/Nope", nil},
		{"GET", "/Schemas/urn:nope", nil},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body).must(t, http.StatusNotFound)
			if r.str("status") != "404" {
				t.Errorf("bad error body: %s", r.raw)
			}
		})
	}
	// Outside the base path.
	res, err := http.Get(e.srv.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusNotFound {
		t.Errorf("status %d", res.StatusCode)
	}
}

func TestFilters(t *testing.T) {
	e := newTestEnv(t)
	alice := e.createUser("alice@example.com", map[string]any{
		"externalId":  "ext-Alice",
		"displayName": "Alice A",
		"emails": []any{
			map[string]any{"value": "alice@work.example", "type": "work", "primary": true},
			map[string]any{"value": "alice@home.example", "type": "home"},
		},
		entUser: map[string]any{"employeeNumber": "1001", "department": "Eng"},
	})
	bob := e.createUser("bob@example.com", map[string]any{
		"externalId": "ext-bob",
		"active":     false,
		"emails":     []any{map[string]any{"value": "bob@work.example", "type": "work"}},
		entUser:      map[string]any{"department": "Sales"},
	})
	carol := e.createUser("carol@example.com", map[string]any{
		"emails": []any{map[string]any{"value": "shared@home.example", "type": "home"}},
	})
	eng := e.createGroup("Engineering", alice)
	e.createGroup("Sales", bob)

	tests := []struct {
		name, path string
		want       []string
	}{
		{"userName eq", `/Users?filter=userName eq "alice@example.com"`, []string{alice}},
		{"userName eq is case-insensitive", `/Users?filter=userName eq "ALICE@Example.COM"`, []string{alice}},
		{"attribute name is case-insensitive", `/Users?filter=USERNAME Eq "bob@example.com"`, []string{bob}},
		{"userName eq no match (Entra test connection)", `/Users?filter=userName eq "7f6f3c9e-1d2b-4c1e-9a51-6f2d4b0f9e11"`, nil},
		{"externalId eq", `/Users?filter=externalId eq "ext-bob"`, []string{bob}},
		{"id eq", `/Users?filter=id eq "` + carol + `"`, []string{carol}},
		{"externalId is case-exact", `/Users?filter=externalId eq "EXT-BOB"`, nil},
		{"displayName eq (user)", `/Users?filter=displayName eq "alice a"`, []string{alice}},
		{"emails[type eq work].value eq (Entra)", `/Users?filter=emails[type eq "work"].value eq "bob@work.example"`, []string{bob}},
		{"emails[type eq work].value ignores other types", `/Users?filter=emails[type eq "work"].value eq "alice@home.example"`, nil},
		{"emails[type eq work and value eq]", `/Users?filter=emails[type eq "work" and value eq "alice@work.example"]`, []string{alice}},
		{"emails.value eq", `/Users?filter=emails.value eq "alice@home.example"`, []string{alice}},
		{"emails.value eq case-insensitive", `/Users?filter=emails.value eq "SHARED@home.example"`, []string{carol}},
		{"emails co", `/Users?filter=emails co "@work.example"`, []string{alice, bob}},
		{"or", `/Users?filter=userName eq "alice@example.com" or userName eq "carol@example.com"`, []string{alice, carol}},
		{"and", `/Users?filter=userName eq "alice@example.com" and externalId eq "ext-Alice"`, []string{alice}},
		{"and no match", `/Users?filter=userName eq "alice@example.com" and externalId eq "ext-bob"`, nil},
		{"active eq false", `/Users?filter=active eq false`, []string{bob}},
		{"not", `/Users?filter=not (active eq false)`, []string{alice, carol}},
		{"enterprise attribute", `/Users?filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales"`, []string{bob}},
		{"pr", `/Users?filter=externalId pr`, []string{alice, bob}},
		{"sw", `/Users?filter=userName sw "CA"`, []string{carol}},
		{"groups.value eq", `/Users?filter=groups.value eq "` + eng + `"`, []string{alice}},
		{"group displayName eq", `/Groups?filter=displayName eq "engineering"`, []string{eng}},
		{"group members[value eq]", `/Groups?filter=members[value eq "` + alice + `"]`, []string{eng}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.path
			if i := len("/Users?filter="); len(u) > i && u[:i] == "/Users?filter=" {
				u = u[:i] + url.QueryEscape(u[i:])
			} else if i := len("/Groups?filter="); len(u) > i && u[:i] == "/Groups?filter=" {
				u = u[:i] + url.QueryEscape(u[i:])
			}
			r := e.do("GET", u, nil).must(t, http.StatusOK)
			got := listIDs(r)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
			if num(r.body["totalResults"]) != len(tc.want) {
				t.Errorf("totalResults = %v, want %d", r.body["totalResults"], len(tc.want))
			}
			if fmt.Sprint(r.body["schemas"]) != "[urn:ietf:params:scim:api:messages:2.0:ListResponse]" {
				t.Errorf("schemas = %v", r.body["schemas"])
			}
			if _, ok := r.body["Resources"].([]any); !ok {
				t.Errorf("Resources must be an array: %s", r.raw)
			}
		})
	}

	t.Run("invalid filters", func(t *testing.T) {
		for _, f := range []string{`userName eq`, `nosuchattr eq "x"`, `userName eq "a" and`} {
			r := e.do("GET", "/Users?filter="+url.QueryEscape(f), nil).must(t, http.StatusBadRequest)
			if r.scimType() != "invalidFilter" {
				t.Errorf("%s: scimType = %q", f, r.scimType())
			}
		}
	})

	t.Run("excludedAttributes=members with displayName filter (Entra)", func(t *testing.T) {
		r := e.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "Engineering"`), nil).must(t, http.StatusOK)
		res := r.body["Resources"].([]any)
		if len(res) != 1 {
			t.Fatalf("got %d resources", len(res))
		}
		g := res[0].(map[string]any)
		if _, ok := g["members"]; ok {
			t.Errorf("members not excluded: %v", g)
		}
		if g["displayName"] != "Engineering" || g["id"] != eng || g["meta"] == nil {
			t.Errorf("unexpected group %v", g)
		}
		single := e.do("GET", "/Groups/"+eng+"?excludedAttributes=members", nil).must(t, http.StatusOK)
		if _, ok := single.body["members"]; ok {
			t.Error("members not excluded on GET by id")
		}
		full := e.do("GET", "/Groups/"+eng, nil).must(t, http.StatusOK)
		if len(memberIDs(full.body)) != 1 {
			t.Error("members missing without excludedAttributes")
		}
	})

	t.Run("attributes", func(t *testing.T) {
		r := e.do("GET", "/Users/"+alice+"?attributes=userName,name.givenName,"+url.QueryEscape(entUser+":department"), nil).must(t, http.StatusOK)
		want := map[string]bool{"id": true, "schemas": true, "userName": true, entUser: true}
		for k := range r.body {
			if !want[k] {
				t.Errorf("unexpected attribute %q", k)
			}
		}
		if get(r.body, "{"+entUser+"}.department") != "Eng" || get(r.body, "{"+entUser+"}.employeeNumber") != nil {
			t.Errorf("extension projection wrong: %v", r.body[entUser])
		}
	})
}

func TestPaging(t *testing.T) {
	e := newTestEnv(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.createUser(fmt.Sprintf("user%d@example.com", i), nil))
	}
	tests := []struct {
		query                  string
		want                   []string
		startIndex, perPageLen int
	}{
		{"startIndex=1&count=2", ids[0:2], 1, 2},
		{"startIndex=3&count=2", ids[2:4], 3, 2},
		{"startIndex=5&count=2", ids[4:5], 5, 1},
		{"startIndex=6&count=2", nil, 6, 0},
		{"count=0", nil, 1, 0},
		{"startIndex=0&count=100", ids, 1, 5},
		{"", ids, 1, 5},
		{"startIndex=2", ids[1:], 2, 4},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := e.do("GET", "/Users?"+tc.query, nil).must(t, http.StatusOK)
			if got := listIDs(r); !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
			if num(r.body["totalResults"]) != 5 {
				t.Errorf("totalResults = %v", r.body["totalResults"])
			}
			if num(r.body["startIndex"]) != tc.startIndex {
				t.Errorf("startIndex = %v", r.body["startIndex"])
			}
			if num(r.body["itemsPerPage"]) != tc.perPageLen {
				t.Errorf("itemsPerPage = %v", r.body["itemsPerPage"])
			}
		})
	}
	t.Run("paging with filter", func(t *testing.T) {
		f := url.QueryEscape(`userName sw "user" and not (userName eq "user0@example.com")`)
		r := e.do("GET", "/Users?startIndex=2&count=2&filter="+f, nil).must(t, http.StatusOK)
		if got := listIDs(r); !slices.Equal(got, ids[2:4]) || num(r.body["totalResults"]) != 4 {
			t.Errorf("ids = %v total %v", got, r.body["totalResults"])
		}
	})
	t.Run("bad count", func(t *testing.T) {
		e.do("GET", "/Users?count=abc", nil).must(t, http.StatusBadRequest)
	})
}

func TestPutReplace(t *testing.T) {
	e := newTestEnv(t)
	id := e.createUser("dana@example.com", map[string]any{
		"title":    "Engineer",
		"nickName": "dee",
		"password": "first",
		"emails":   []any{map[string]any{"value": "dana@example.com", "type": "work"}},
		entUser:    map[string]any{"department": "Eng"},
	})
	gid := e.createGroup("Team", id)
	before := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)

	time.Sleep(1100 * time.Millisecond) // meta timestamps have second precision
	// Okta wizard apps: GET, then PUT the whole object back with changes.
	put := before.body
	delete(put, "nickName")
	delete(put, entUser)
	put["title"] = "Manager"
	put["active"] = false
	put["groups"] = []any{} // readOnly: ignored, membership unchanged
	r := e.do("PUT", "/Users/"+id, put).must(t, http.StatusOK)

	if r.str("title") != "Manager" || r.body["active"] != false {
		t.Errorf("not replaced: %s", r.raw)
	}
	if _, ok := r.body["nickName"]; ok {
		t.Error("nickName should be removed by PUT")
	}
	if _, ok := r.body[entUser]; ok {
		t.Error("extension should be removed by PUT")
	}
	if r.str("meta.version") == before.str("meta.version") {
		t.Error("version not bumped")
	}
	if r.str("meta.created") != before.str("meta.created") || r.str("meta.lastModified") == before.str("meta.lastModified") {
		t.Errorf("meta wrong: before %v after %v", before.body["meta"], r.body["meta"])
	}
	if get(r.body, "groups.0.value") != gid {
		t.Errorf("groups lost by PUT: %v", r.body["groups"])
	}
	// Group PUT replaces members.
	other := e.createUser("erin@example.com", nil)
	g := e.do("PUT", "/Groups/"+gid, map[string]any{
		"schemas": []string{coreGroup}, "displayName": "Team 2",
		"members": []any{map[string]any{"value": other}},
	}).must(t, http.StatusOK)
	if ids := memberIDs(g.body); !slices.Equal(ids, []string{other}) || g.str("displayName") != "Team 2" {
		t.Errorf("group PUT: %s", g.raw)
	}
	// PUT with a type error is rejected and changes nothing.
	e.do("PUT", "/Users/"+id, map[string]any{"schemas": []string{coreUser}, "userName": "dana@example.com", "active": "False"}).must(t, http.StatusBadRequest)
	if e.do("GET", "/Users/"+id, nil).str("title") != "Manager" {
		t.Error("failed PUT modified the user")
	}
}

func TestPatchUser(t *testing.T) {
	e := newTestEnv(t)
	manager := e.createUser("boss@example.com", map[string]any{"displayName": "The Boss"})
	var n int
	newUser := func(t *testing.T) string {
		n++
		return e.createUser(fmt.Sprintf("patch%d@example.com", n), map[string]any{
			"displayName": "Pat",
			"name":        map[string]any{"givenName": "Pat", "familyName": "Smith"},
			"emails": []any{
				map[string]any{"value": "pat@work.example", "type": "work", "primary": true},
			},
			"favoriteColor": "red",
			entUser:         map[string]any{"department": "Eng", "employeeNumber": "1"},
		})
	}
	type check map[string]any
	tests := []struct {
		name     string
		ops      []map[string]any
		status   int
		scimType string
		want     check // path -> expected value (nil = absent)
		wantLen  map[string]int
	}{
		{
			name:   "Okta path-less replace active false",
			ops:    []map[string]any{op("replace", "", map[string]any{"active": false})},
			status: 200, want: check{"active": false, "name.givenName": "Pat"},
		},
		{
			name:   "Entra string boolean is rejected",
			ops:    []map[string]any{op("Replace", "active", "False")},
			status: 400, scimType: "invalidValue",
		},
		{
			name:   "capitalised ops and sub-attribute path",
			ops:    []map[string]any{op("Replace", "name.familyName", "Jones"), op("Add", "title", "CTO")},
			status: 200, want: check{"name.familyName": "Jones", "name.givenName": "Pat", "title": "CTO"},
		},
		{
			name:   "uppercase op",
			ops:    []map[string]any{op("REPLACE", "displayName", "P.")},
			status: 200, want: check{"displayName": "P."},
		},
		{
			name:   "value-filtered path replace existing",
			ops:    []map[string]any{op("replace", `emails[type eq "work"].value`, "new@work.example")},
			status: 200, want: check{"emails.0.value": "new@work.example", "emails.0.type": "work", "emails.0.primary": true},
		},
		{
			name:   "value-filtered path add changes existing (Entra)",
			ops:    []map[string]any{op("Add", `emails[type eq "work"].value`, "add@work.example")},
			status: 200, want: check{"emails.0.value": "add@work.example"}, wantLen: map[string]int{"emails": 1},
		},
		{
			name:   "value-filtered path add creates missing value",
			ops:    []map[string]any{op("add", `emails[type eq "home"].value`, "pat@home.example")},
			status: 200, want: check{"emails.1.value": "pat@home.example", "emails.1.type": "home"}, wantLen: map[string]int{"emails": 2},
		},
		{
			name:   "value-filtered path replace without match is noTarget",
			ops:    []map[string]any{op("replace", `emails[type eq "home"].value`, "x@home.example")},
			status: 400, scimType: "noTarget",
		},
		{
			name:   "remove by value filter",
			ops:    []map[string]any{op("remove", `emails[type eq "work"]`, nil)},
			status: 200, want: check{"emails": nil},
		},
		{
			name:   "remove sub-attribute",
			ops:    []map[string]any{op("remove", "name.givenName", nil)},
			status: 200, want: check{"name.givenName": nil, "name.familyName": "Smith"},
		},
		{
			name:   "remove attribute",
			ops:    []map[string]any{op("remove", "favoriteColor", nil)},
			status: 200, want: check{"favoriteColor": nil},
		},
		{
			name:   "custom attribute replace",
			ops:    []map[string]any{op("replace", "favoriteColor", "green")},
			status: 200, want: check{"favoriteColor": "green"},
		},
		{
			name:   "multi-valued add is a union",
			ops:    []map[string]any{op("add", "emails", []any{map[string]any{"value": "pat@work.example", "type": "work", "primary": true}, map[string]any{"value": "p2@x.example", "type": "other"}})},
			status: 200, want: check{"emails.1.value": "p2@x.example"}, wantLen: map[string]int{"emails": 2},
		},
		{
			name:   "added primary value demotes the old primary",
			ops:    []map[string]any{op("add", "emails", []any{map[string]any{"value": "p3@x.example", "type": "other", "primary": true}})},
			status: 200, want: check{"emails.0.primary": false, "emails.1.primary": true},
		},
		{
			name:   "replace multi-valued replaces all",
			ops:    []map[string]any{op("replace", "emails", []any{map[string]any{"value": "only@x.example", "type": "home"}})},
			status: 200, want: check{"emails.0.value": "only@x.example"}, wantLen: map[string]int{"emails": 1},
		},
		{
			name:   "URN-qualified extension path",
			ops:    []map[string]any{op("add", entUser+":employeeNumber", "42"), op("replace", entUser+":department", "Sales")},
			status: 200, want: check{"{" + entUser + "}.employeeNumber": "42", "{" + entUser + "}.department": "Sales"},
		},
		{
			name:   "URN-qualified core path",
			ops:    []map[string]any{op("replace", coreUser+":name.givenName", "Patricia")},
			status: 200, want: check{"name.givenName": "Patricia"},
		},
		{
			name: "path-less dotted and URN-qualified keys (Entra aadOptscim062020)",
			ops: []map[string]any{op("replace", "", map[string]any{
				"name.givenName":            "Patty",
				"displayName":               "Patty Smith",
				entUser + ":employeeNumber": "777",
				coreUser + ":title":         "Lead",
				entUser + ":manager":        map[string]any{"value": manager},
				"active":                    false,
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "CC1",
			})},
			status: 200,
			want: check{
				"name.givenName": "Patty", "name.familyName": "Smith", "displayName": "Patty Smith", "title": "Lead", "active": false,
				"{" + entUser + "}.employeeNumber": "777", "{" + entUser + "}.costCenter": "CC1", "{" + entUser + "}.department": "Eng",
				"{" + entUser + "}.manager.value": manager, "{" + entUser + "}.manager.displayName": "The Boss",
			},
		},
		{
			name:   "path-less extension object",
			ops:    []map[string]any{op("replace", "", map[string]any{entUser: map[string]any{"division": "R&D"}})},
			status: 200, want: check{"{" + entUser + "}.division": "R&D", "{" + entUser + "}.department": "Eng"},
		},
		{
			name:   "extension URN as path",
			ops:    []map[string]any{op("add", entUser, map[string]any{"organization": "ACME"})},
			status: 200, want: check{"{" + entUser + "}.organization": "ACME"},
		},
		{
			name:   "path-less complex value merges sub-attributes",
			ops:    []map[string]any{op("replace", "", map[string]any{"name": map[string]any{"familyName": "Doe"}})},
			status: 200, want: check{"name.givenName": "Pat", "name.familyName": "Doe"},
		},
		{
			name:   "manager as object",
			ops:    []map[string]any{op("Add", entUser+":manager", map[string]any{"value": manager})},
			status: 200, want: check{"{" + entUser + "}.manager.value": manager, "{" + entUser + "}.manager.$ref": "BASE/Users/" + manager},
		},
		{
			name:   "manager as bare string (Entra) is rejected",
			ops:    []map[string]any{op("Add", entUser+":manager", manager)},
			status: 400, scimType: "invalidValue",
		},
		{
			name:   "remove extension attribute",
			ops:    []map[string]any{op("remove", entUser+":department", nil), op("remove", entUser+":employeeNumber", nil)},
			status: 200, want: check{"{" + entUser + "}": nil},
		},
		{
			name:   "path-less id is ignored (Okta)",
			ops:    []map[string]any{op("replace", "", map[string]any{"id": "other", "title": "X"})},
			status: 200, want: check{"title": "X"},
		},
		{
			name:   "remove without path",
			ops:    []map[string]any{op("remove", "", nil)},
			status: 400,
		},
		{
			name:   "unknown attribute path",
			ops:    []map[string]any{op("replace", "shoeSize", "42")},
			status: 400, scimType: "invalidPath",
		},
		{
			name:   "unknown attribute in path-less value",
			ops:    []map[string]any{op("replace", "", map[string]any{"shoeSize": "42"})},
			status: 400, scimType: "invalidValue",
		},
		{
			name:   "read-only attribute path",
			ops:    []map[string]any{op("add", "groups", []any{map[string]any{"value": "x"}})},
			status: 400, scimType: "mutability",
		},
		{
			name:   "removing required userName",
			ops:    []map[string]any{op("remove", "userName", nil)},
			status: 400, scimType: "invalidValue",
		},
		{
			name:   "unknown op",
			ops:    []map[string]any{op("merge", "title", "x")},
			status: 400,
		},
		{
			name:   "failed operation leaves the user unchanged",
			ops:    []map[string]any{op("replace", "title", "Changed"), op("replace", "active", "False")},
			status: 400, scimType: "invalidValue",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := newUser(t)
			before := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
			r := e.do("PATCH", "/Users/"+id, patchBody(tc.ops...)).must(t, tc.status)
			after := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
			if tc.status != http.StatusOK {
				if tc.scimType != "" && r.scimType() != tc.scimType {
					t.Errorf("scimType = %q, want %q: %s", r.scimType(), tc.scimType, r.raw)
				}
				if after.raw != before.raw {
					t.Errorf("failed PATCH changed the resource:\nbefore %s\nafter  %s", before.raw, after.raw)
				}
				return
			}
			if r.raw != after.raw {
				t.Errorf("PATCH response differs from GET:\n%s\n%s", r.raw, after.raw)
			}
			for path, want := range tc.want {
				if s, ok := want.(string); ok && len(s) > 4 && s[:4] == "BASE" {
					want = e.base + s[4:]
				}
				if got := get(after.body, path); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %#v, want %#v\n%s", path, got, want, after.raw)
				}
			}
			for path, n := range tc.wantLen {
				if l, _ := get(after.body, path).([]any); len(l) != n {
					t.Errorf("len(%s) = %d, want %d: %s", path, len(l), n, after.raw)
				}
			}
			if _, ok := after.body["password"]; ok {
				t.Error("password returned")
			}
		})
	}

	t.Run("no-op PATCH keeps version", func(t *testing.T) {
		id := newUser(t)
		before := e.do("GET", "/Users/"+id, nil)
		r := e.do("PATCH", "/Users/"+id, patchBody(op("replace", "favoriteColor", "red"))).must(t, http.StatusOK)
		if r.str("meta.version") != before.str("meta.version") {
			t.Error("version changed on no-op")
		}
		r = e.do("PATCH", "/Users/"+id, patchBody(op("replace", "favoriteColor", "blue"))).must(t, http.StatusOK)
		if r.str("meta.version") == before.str("meta.version") {
			t.Error("version not changed")
		}
	})
	t.Run("PatchOp schema required", func(t *testing.T) {
		id := newUser(t)
		e.do("PATCH", "/Users/"+id, map[string]any{"Operations": []any{op("replace", "title", "x")}}).must(t, http.StatusBadRequest)
	})
}

func TestPatchGroupMembers(t *testing.T) {
	e := newTestEnv(t)
	var users []string
	for i := range 7 {
		users = append(users, e.createUser(fmt.Sprintf("member%d@example.com", i), nil))
	}
	var n int
	tests := []struct {
		name     string
		initial  []string
		ops      []map[string]any
		status   int
		want     []string
		wantName string
	}{
		{
			name:    "Entra value-array removal removes only the listed member (1 of 5)",
			initial: users[:5],
			ops:     []map[string]any{op("Remove", "members", []any{map[string]any{"value": users[2]}})},
			status:  200, want: []string{users[0], users[1], users[3], users[4]},
		},
		{
			name:    "value-array removal of several members",
			initial: users[:5],
			ops:     []map[string]any{op("remove", "members", []any{map[string]any{"value": users[0]}, map[string]any{"value": users[4]}})},
			status:  200, want: []string{users[1], users[2], users[3]},
		},
		{
			name:    "Entra add members",
			initial: users[:1],
			ops:     []map[string]any{op("Add", "members", []any{map[string]any{"value": users[1]}, map[string]any{"value": users[2]}})},
			status:  200, want: users[:3],
		},
		{
			name:    "add existing member does not duplicate",
			initial: users[:2],
			ops:     []map[string]any{op("add", "members", []any{map[string]any{"value": users[1], "display": "m1"}, map[string]any{"value": users[1]}})},
			status:  200, want: users[:2],
		},
		{
			name:    "Okta filtered remove plus add in one request",
			initial: users[:3],
			ops: []map[string]any{
				op("remove", `members[value eq "`+users[1]+`"]`, nil),
				op("add", "members", []any{map[string]any{"value": users[5], "display": "member5@example.com"}}),
			},
			status: 200, want: []string{users[0], users[2], users[5]},
		},
		{
			name:    "filtered remove of a non-member is a no-op",
			initial: users[:2],
			ops:     []map[string]any{op("remove", `members[value eq "`+users[6]+`"]`, nil)},
			status:  200, want: users[:2],
		},
		{
			name:    "replace members replaces all",
			initial: users[:4],
			ops:     []map[string]any{op("replace", "members", []any{map[string]any{"value": users[6]}})},
			status:  200, want: []string{users[6]},
		},
		{
			name:    "path-less replace of members replaces all",
			initial: users[:4],
			ops:     []map[string]any{op("replace", "", map[string]any{"members": []any{map[string]any{"value": users[0]}}})},
			status:  200, want: []string{users[0]},
		},
		{
			name:    "remove members without value removes all",
			initial: users[:3],
			ops:     []map[string]any{op("remove", "members", nil)},
			status:  200, want: nil,
		},
		{
			name:    "Okta rename (path-less with id) keeps members",
			initial: users[:2],
			ops:     []map[string]any{op("replace", "", map[string]any{"id": "whatever", "displayName": "Renamed"})},
			status:  200, want: users[:2], wantName: "Renamed",
		},
		{
			name:    "add unknown member id",
			initial: users[:1],
			ops:     []map[string]any{op("add", "members", []any{map[string]any{"value": "no-such-id"}})},
			status:  400, want: users[:1],
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n++
			name := fmt.Sprintf("group-%d", n)
			gid := e.createGroup(name, tc.initial...)
			r := e.do("PATCH", "/Groups/"+gid, patchBody(tc.ops...)).must(t, tc.status)
			after := e.do("GET", "/Groups/"+gid, nil).must(t, http.StatusOK)
			if tc.status == http.StatusOK && r.raw != after.raw {
				t.Errorf("PATCH response differs from GET")
			}
			if got := memberIDs(after.body); !slices.Equal(got, tc.want) {
				t.Errorf("members = %v, want %v", got, tc.want)
			}
			wantName := name
			if tc.wantName != "" {
				wantName = tc.wantName
			}
			if after.str("displayName") != wantName {
				t.Errorf("displayName = %q", after.str("displayName"))
			}
			for i := range memberIDs(after.body) {
				m := get(after.body, fmt.Sprintf("members.%d", i)).(map[string]any)
				if m["type"] != "User" || m["$ref"] != e.base+"/Users/"+fmt.Sprint(m["value"]) || m["display"] == nil {
					t.Errorf("member %v incomplete", m)
				}
			}
		})
	}
}

func TestGroupMembershipReflectedInUser(t *testing.T) {
	e := newTestEnv(t)
	u1 := e.createUser("frank@example.com", map[string]any{"displayName": "Frank"})
	u2 := e.createUser("grace@example.com", nil)
	g1 := e.createGroup("Admins", u1)
	g2 := e.createGroup("Everyone")

	groupsOf := func(id string) map[string]string {
		r := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
		out := map[string]string{}
		gs, _ := r.body["groups"].([]any)
		for _, g := range gs {
			gm := g.(map[string]any)
			out[fmt.Sprint(gm["value"])] = fmt.Sprint(gm["display"])
			if gm["$ref"] != e.base+"/Groups/"+fmt.Sprint(gm["value"]) {
				t.Errorf("$ref = %v", gm["$ref"])
			}
		}
		return out
	}
	steps := []struct {
		name   string
		do     func()
		u1, u2 map[string]string
	}{
		{"after create", func() {}, map[string]string{g1: "Admins"}, map[string]string{}},
		{"after add", func() {
			e.do("PATCH", "/Groups/"+g2, patchBody(op("add", "members", []any{map[string]any{"value": u1}, map[string]any{"value": u2}}))).must(t, 200)
		}, map[string]string{g1: "Admins", g2: "Everyone"}, map[string]string{g2: "Everyone"}},
		{"after rename", func() {
			e.do("PATCH", "/Groups/"+g1, patchBody(op("replace", "displayName", "Administrators"))).must(t, 200)
		}, map[string]string{g1: "Administrators", g2: "Everyone"}, map[string]string{g2: "Everyone"}},
		{"after remove", func() {
			e.do("PATCH", "/Groups/"+g2, patchBody(op("remove", `members[value eq "`+u1+`"]`, nil))).must(t, 200)
		}, map[string]string{g1: "Administrators"}, map[string]string{g2: "Everyone"}},
		{"after group delete", func() {
			e.do("DELETE", "/Groups/"+g1, nil).must(t, http.StatusNoContent)
		}, map[string]string{}, map[string]string{g2: "Everyone"}},
	}
	for _, s := range steps {
		s.do()
		if got := groupsOf(u1); fmt.Sprint(got) != fmt.Sprint(s.u1) {
			t.Errorf("%s: u1 groups = %v, want %v", s.name, got, s.u1)
		}
		if got := groupsOf(u2); fmt.Sprint(got) != fmt.Sprint(s.u2) {
			t.Errorf("%s: u2 groups = %v, want %v", s.name, got, s.u2)
		}
	}

	// Deleting a user removes it from its groups.
	before := e.do("GET", "/Groups/"+g2, nil)
	e.do("DELETE", "/Users/"+u2, nil).must(t, http.StatusNoContent)
	after := e.do("GET", "/Groups/"+g2, nil).must(t, http.StatusOK)
	if ids := memberIDs(after.body); len(ids) != 0 {
		t.Errorf("deleted user still a member: %v", ids)
	}
	if after.str("meta.version") == before.str("meta.version") {
		t.Error("group version not bumped by member deletion")
	}
}

func TestDelete(t *testing.T) {
	e := newTestEnv(t)
	uid := e.createUser("henry@example.com", nil)
	gid := e.createGroup("Temp", uid)
	tests := []struct {
		method, path string
		status       int
	}{
		{"DELETE", "/Users/" + uid, http.StatusNoContent},
		{"GET", "/Users/" + uid, http.StatusNotFound},
		{"DELETE", "/Users/" + uid, http.StatusNotFound},
		{"DELETE", "/Groups/" + gid, http.StatusNoContent},
		{"GET", "/Groups/" + gid, http.StatusNotFound},
		{"DELETE", "/Groups/" + gid, http.StatusNotFound},
	}
	for _, tc := range tests {
		r := e.do(tc.method, tc.path, nil).must(t, tc.status)
		if tc.status == http.StatusNoContent && r.raw != "" {
			t.Errorf("204 with body %q", r.raw)
		}
	}
	// the userName is free again
	e.createUser("henry@example.com", nil)
}

func TestDiscovery(t *testing.T) {
	e := newTestEnv(t)
	r := e.do("GET", "/Schemas", nil).must(t, http.StatusOK)
	found := map[string]map[string]any{}
	for _, s := range r.body["Resources"].([]any) {
		sm := s.(map[string]any)
		found[fmt.Sprint(sm["id"])] = sm
	}
	for _, id := range []string{coreUser, entUser, coreGroup} {
		if found[id] == nil {
			t.Errorf("schema %s missing", id)
		}
	}
	hasAttr := func(schemaID, name string) map[string]any {
		for _, a := range found[schemaID]["attributes"].([]any) {
			if am := a.(map[string]any); am["name"] == name {
				return am
			}
		}
		return nil
	}
	if a := hasAttr(coreUser, "favoriteColor"); a == nil || a["type"] != "string" {
		t.Errorf("favoriteColor: %v", a)
	}
	if a := hasAttr(coreUser, "password"); a == nil || a["returned"] != "never" || a["mutability"] != "writeOnly" {
		t.Errorf("password: %v", a)
	}
	if a := hasAttr(coreUser, "userName"); a == nil || a["uniqueness"] != "server" || a["required"] != true {
		t.Errorf("userName: %v", a)
	}
	if a := hasAttr(coreGroup, "displayName"); a == nil || a["uniqueness"] != "server" {
		t.Errorf("group displayName: %v", a)
	}
	if a := hasAttr(entUser, "manager"); a == nil {
		t.Error("manager missing")
	}
	e.do("GET", "/Schemas/"+coreUser, nil).must(t, http.StatusOK)

	rt := e.do("GET", "/ResourceTypes", nil).must(t, http.StatusOK)
	if num(rt.body["totalResults"]) != 2 {
		t.Errorf("ResourceTypes: %s", rt.raw)
	}
	u := e.do("GET", "/ResourceTypes/User", nil).must(t, http.StatusOK)
	if u.str("endpoint") != "/Users" || get(u.body, "schemaExtensions.0.schema") != entUser {
		t.Errorf("User resource type: %s", u.raw)
	}
	spc := e.do("GET", "/ServiceProviderConfig", nil).must(t, http.StatusOK)
	if get(spc.body, "patch.supported") != true || get(spc.body, "filter.supported") != true ||
		get(spc.body, "authenticationSchemes.0.type") != "oauthbearertoken" {
		t.Errorf("ServiceProviderConfig: %s", spc.raw)
	}
}

func TestBasePathAndForwardedHeaders(t *testing.T) {
	h, err := New(Options{BasePath: "/api/scim/"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &testEnv{t: t, srv: srv, base: srv.URL + "/api/scim"}
	e.do("GET", "/Users", nil).must(t, http.StatusOK)
	res, err := http.Get(srv.URL + "/scim/v2/Users")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("old base path: %d", res.StatusCode)
	}
	id := e.createUser("ivy@example.com", nil)

	req, _ := http.NewRequest("GET", e.base+"/Users/"+id, nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "idp-facing.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	err = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := get(body, "meta.location"), "https://idp-facing.example/api/scim/Users/"+id; got != want {
		t.Errorf("forwarded location %q, want %q", got, want)
	}
	r := e.do("GET", "/Users/"+id, nil)
	if r.str("meta.location") != e.base+"/Users/"+id {
		t.Errorf("location %q", r.str("meta.location"))
	}
}

func TestConcurrency(t *testing.T) {
	e := newTestEnv(t)
	gid := e.createGroup("Concurrent")
	const n = 40
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			r := e.do("POST", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": fmt.Sprintf("c%d@example.com", i)})
			if r.status != http.StatusCreated {
				t.Errorf("create: %d %s", r.status, r.raw)
				return
			}
			ids[i] = r.str("id")
			r = e.do("PATCH", "/Groups/"+gid, patchBody(op("add", "members", []any{map[string]any{"value": ids[i]}})))
			if r.status != http.StatusOK {
				t.Errorf("patch: %d %s", r.status, r.raw)
			}
			e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "c1@example.com"`), nil)
		})
	}
	wg.Wait()
	g := e.do("GET", "/Groups/"+gid, nil).must(t, http.StatusOK)
	if got := len(memberIDs(g.body)); got != n {
		t.Errorf("members = %d, want %d", got, n)
	}

	// Racing creates of the same userName: exactly one wins.
	var mu sync.Mutex
	codes := map[int]int{}
	for range 20 {
		wg.Go(func() {
			r := e.do("POST", "/Users", map[string]any{"schemas": []string{coreUser}, "userName": "Race@example.com"})
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusCreated] != 1 || codes[http.StatusConflict] != 19 {
		t.Errorf("status counts = %v", codes)
	}
}

func TestRewriteSubAttrValuePaths(t *testing.T) {
	tests := []struct{ in, want string }{
		{`emails[type eq "work"].value eq "a@b.c"`, `emails[type eq "work" and value eq "a@b.c"]`},
		{`emails[type eq "work"].value pr`, `emails[type eq "work" and value pr]`},
		{`userName eq "x" and emails[type eq "work"].value eq "a"`, `userName eq "x" and emails[type eq "work" and value eq "a"]`},
		{`emails[type eq "w]."].value eq "a"`, `emails[type eq "w]." and value eq "a"]`},
		{`userName eq "a].b c"`, `userName eq "a].b c"`},
		{`emails[type eq "work"]`, `emails[type eq "work"]`},
		{`emails[type eq "work"].value eq`, `emails[type eq "work"].value eq`},
	}
	for _, tc := range tests {
		if got := rewriteSubAttrValuePaths(tc.in); got != tc.want {
			t.Errorf("rewrite(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
