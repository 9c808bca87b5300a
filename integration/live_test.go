package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// liveCaddyfile maps attributes the ways customers get them wrong.
const liveCaddyfile = `{
	admin {{ADMIN}}
	scim_shadow {
		store sqlite {{DB}}
	}
}
:{{PORT}} {
	route /scim/v2/* {
		scim_shadow {
			connection acme
			max_body 64KiB
			map User {
				userName {
					warn_if_missing
				}
				favoriteColor {
					from favorite_color
					from preferences.favoriteColor
					warn_if_missing
				}
				urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department {
					from department
					from urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division
					default "Unassigned"
					only_on create
				}
				urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter {
					from cost_center
				}
				` + "`" + `phoneNumbers[type eq "work"].value` + "`" + ` {
					from ` + "`" + `phoneNumbers[type eq "office"].value` + "`" + `
				}
				drop x-internal-flag password
			}
		}
		reverse_proxy {{BACKEND}}
	}
	respond /healthz "ok" 200
}
`

// lastBody returns the body of the last request the backend received with method.
func lastBody(t *testing.T, be *testBackend, method string) map[string]any {
	t.Helper()
	reqs := be.Requests(method)
	if len(reqs) == 0 {
		t.Fatalf("backend received no %s", method)
	}
	return decode(t, reqs[len(reqs)-1].Body)
}

func createUser(t *testing.T, c *caddyProc, body string) map[string]any {
	t.Helper()
	status, out, _ := c.scim(t, http.MethodPost, "/Users", body)
	if status != http.StatusCreated {
		t.Fatalf("POST /Users: %d %s", status, out)
	}
	return decode(t, out)
}

func ext(m map[string]any) map[string]any {
	e, _ := m[enterprise].(map[string]any)
	return e
}

func workPhone(m map[string]any) string {
	phones, _ := m["phoneNumbers"].([]any)
	for _, p := range phones {
		p := p.(map[string]any)
		if p["type"] == "work" {
			s, _ := p["value"].(string)
			return s
		}
	}
	return ""
}

func TestLiveRewritesCreateAndReplace(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, liveCaddyfile, be)

	t.Run("top-level fallback, URN extension, value filter, default, drop", func(t *testing.T) {
		created := createUser(t, c, `{
			"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"primary":true,"value":"ada@example.com","type":"work"}],
			"favorite_color":"teal","department":"Research","cost_center":"CC-7",
			"phoneNumbers":[{"type":"office","value":"+1 555 0100"}],
			"password":"hunter2","x-internal-flag":true,"active":true}`)
		sent := lastBody(t, be, http.MethodPost)
		for _, k := range []string{"favorite_color", "department", "cost_center", "password", "x-internal-flag"} {
			if _, ok := sent[k]; ok {
				t.Errorf("backend received %q: %v", k, sent)
			}
		}
		stored := be.Get(t, "/Users/"+created["id"].(string))
		if stored["favoriteColor"] != "teal" {
			t.Errorf("favoriteColor = %v, want teal", stored["favoriteColor"])
		}
		if got := ext(stored)["department"]; got != "Research" {
			t.Errorf("department = %v, want Research", got)
		}
		if got := ext(stored)["costCenter"]; got != "CC-7" {
			t.Errorf("costCenter = %v, want CC-7", got)
		}
		if got := workPhone(stored); got != "+1 555 0100" {
			t.Errorf("work phone = %q, want +1 555 0100 (stored %v)", got, stored["phoneNumbers"])
		}
		schemas, _ := json.Marshal(sent["schemas"])
		if !strings.Contains(string(schemas), enterprise) {
			t.Errorf("schemas sent = %s, want the enterprise URN added", schemas)
		}
	})

	t.Run("nested fallback, URN fallback and default", func(t *testing.T) {
		created := createUser(t, c, `{"userName":"grace@example.com",
			"preferences":{"favoriteColor":"navy"},
			"`+enterprise+`":{"division":"Navy"}}`)
		stored := be.Get(t, "/Users/"+created["id"].(string))
		if stored["favoriteColor"] != "navy" {
			t.Errorf("favoriteColor = %v, want navy", stored["favoriteColor"])
		}
		if got := ext(stored)["department"]; got != "Navy" {
			t.Errorf("department = %v, want Navy (from division)", got)
		}
		if _, ok := lastBody(t, be, http.MethodPost)["preferences"]; ok {
			t.Error("backend received preferences")
		}
		created = createUser(t, c, `{"userName":"linus@example.com","favoriteColor":"red"}`)
		if got := ext(be.Get(t, "/Users/"+created["id"].(string)))["department"]; got != "Unassigned" {
			t.Errorf("department = %v, want the default Unassigned", got)
		}
	})

	t.Run("case-variant names", func(t *testing.T) {
		created := createUser(t, c, `{"UserName":"Margaret@example.com","Favorite_Color":"amber"}`)
		sent := lastBody(t, be, http.MethodPost)
		if sent["userName"] != "Margaret@example.com" || sent["UserName"] != nil {
			t.Errorf("backend received %v, want userName spelled as the rule says", sent)
		}
		stored := be.Get(t, "/Users/"+created["id"].(string))
		if stored["favoriteColor"] != "amber" || stored["userName"] != "Margaret@example.com" {
			t.Errorf("stored %v", stored)
		}
	})

	t.Run("PUT with fallbacks keeps only_on create attributes", func(t *testing.T) {
		created := createUser(t, c, `{"userName":"put@example.com","department":"Sales","favorite_color":"red"}`)
		id := created["id"].(string)
		status, out, _ := c.scim(t, http.MethodPut, "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"id":"`+id+`","userName":"put@example.com","preferences":{"favoriteColor":"green"},
			"department":"Marketing","cost_center":"CC-9","active":true}`)
		if status != http.StatusOK {
			t.Fatalf("PUT: %d %s", status, out)
		}
		sent := lastBody(t, be, http.MethodPut)
		if e := ext(sent); e != nil && e["department"] == "Marketing" {
			t.Errorf("PUT sent department %v, want it left out (only_on create)", e["department"])
		}
		stored := be.Get(t, "/Users/"+id)
		if stored["favoriteColor"] != "green" {
			t.Errorf("favoriteColor = %v, want green", stored["favoriteColor"])
		}
		if got := ext(stored)["costCenter"]; got != "CC-9" {
			t.Errorf("costCenter = %v, want CC-9", got)
		}
		if got := ext(stored)["department"]; got != "Sales" {
			t.Errorf("department = %v, want Sales kept (only_on create)", got)
		}
	})
}

func TestLiveRewritesPatch(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, liveCaddyfile, be)
	created := createUser(t, c, `{"userName":"patch@example.com","favoriteColor":"red","department":"Ops"}`)
	id := created["id"].(string)

	t.Run("path", func(t *testing.T) {
		status, out, _ := c.scim(t, http.MethodPatch, "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"Replace","path":"favorite_color","value":"blue"},
			              {"op":"Add","path":"cost_center","value":"CC-1"}]}`)
		if status != http.StatusOK && status != http.StatusNoContent {
			t.Fatalf("PATCH: %d %s", status, out)
		}
		stored := be.Get(t, "/Users/"+id)
		if stored["favoriteColor"] != "blue" {
			t.Errorf("favoriteColor = %v, want blue", stored["favoriteColor"])
		}
		if got := ext(stored)["costCenter"]; got != "CC-1" {
			t.Errorf("costCenter = %v, want CC-1", got)
		}
	})

	t.Run("path-less value with dotted and URN keys", func(t *testing.T) {
		status, out, _ := c.scim(t, http.MethodPatch, "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","value":{"preferences.favoriteColor":"violet","name.givenName":"Pat",
			"`+enterprise+`:division":"Legal","cost_center":"CC-2"}}]}`)
		if status != http.StatusOK && status != http.StatusNoContent {
			t.Fatalf("PATCH: %d %s", status, out)
		}
		sent := string(be.Requests(http.MethodPatch)[len(be.Requests(http.MethodPatch))-1].Body)
		if strings.Contains(sent, "division") || strings.Contains(sent, "preferences") || strings.Contains(sent, "cost_center") {
			t.Errorf("backend received IdP paths: %s", sent)
		}
		stored := be.Get(t, "/Users/"+id)
		if stored["favoriteColor"] != "violet" {
			t.Errorf("favoriteColor = %v, want violet", stored["favoriteColor"])
		}
		if got := stored["name"].(map[string]any)["givenName"]; got != "Pat" {
			t.Errorf("givenName = %v, want Pat", got)
		}
		if got := ext(stored)["department"]; got != "Ops" {
			t.Errorf("department = %v, want Ops kept (only_on create drops the division update)", got)
		}
		if got := ext(stored)["costCenter"]; got != "CC-2" {
			t.Errorf("costCenter = %v, want CC-2", got)
		}
	})
}

func TestLiveRewritesFilterQueries(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, liveCaddyfile, be)
	createUser(t, c, `{"userName":"filter@example.com","favorite_color":"magenta"}`)
	createUser(t, c, `{"userName":"other@example.com","favorite_color":"grey"}`)

	q := url.Values{"filter": {`favorite_color eq "magenta"`}, "attributes": {"userName,favorite_color"}}
	status, out, _ := c.scim(t, http.MethodGet, "/Users?"+q.Encode(), nil)
	if status != http.StatusOK {
		t.Fatalf("GET: %d %s", status, out)
	}
	list := decode(t, out)
	if list["totalResults"] != float64(1) {
		t.Fatalf("totalResults = %v, want 1: %s", list["totalResults"], out)
	}
	gets := be.Requests(http.MethodGet)
	got, _ := url.ParseQuery(strings.SplitN(gets[len(gets)-1].URL, "?", 2)[1])
	if got.Get("filter") != `favoriteColor eq "magenta"` {
		t.Errorf("backend filter = %q", got.Get("filter"))
	}
	if got.Get("attributes") != "userName,favoriteColor" {
		t.Errorf("backend attributes = %q", got.Get("attributes"))
	}
}

func TestLivePassThrough(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, liveCaddyfile, be)

	t.Run("unparseable body goes through unchanged", func(t *testing.T) {
		const bad = `{"userName": "broken@example.com", "favorite_color": `
		status, _, _ := c.scim(t, http.MethodPost, "/Users", bad)
		if status != http.StatusBadRequest {
			t.Errorf("status = %d, want the backend's 400", status)
		}
		reqs := be.Requests(http.MethodPost)
		if len(reqs) == 0 || string(reqs[len(reqs)-1].Body) != bad {
			t.Fatalf("backend did not receive the body unchanged")
		}
		if !c.waitLog(`"finding":"unparseable"`) {
			t.Errorf("no warning logged for the unparseable body")
		}
	})

	t.Run("too large", func(t *testing.T) {
		before := len(be.Requests(http.MethodPost))
		big := `{"userName":"big@example.com","title":"` + strings.Repeat("x", 70<<10) + `"}`
		status, out, h := c.scim(t, http.MethodPost, "/Users", big)
		if status != http.StatusRequestEntityTooLarge || !strings.HasPrefix(h.Get("Content-Type"), "application/scim+json") {
			t.Fatalf("status %d %s, want 413 SCIM error", status, h.Get("Content-Type"))
		}
		if !strings.Contains(string(out), "urn:ietf:params:scim:api:messages:2.0:Error") {
			t.Errorf("body %s is not a SCIM error", out)
		}
		if len(be.Requests(http.MethodPost)) != before {
			t.Error("a too large body reached the backend")
		}
	})

	t.Run("warn_if_missing is logged", func(t *testing.T) {
		createUser(t, c, `{"userName":"nocolor@example.com"}`)
		if !c.waitLog(`"finding":"missing_attribute"`) {
			t.Errorf("no missing_attribute warning in the log")
		}
	})

	t.Run("non-SCIM path untouched", func(t *testing.T) {
		status, out := do(t, http.MethodGet, c.URL+"/healthz", nil, map[string]string{})
		if status != http.StatusOK || string(out) != "ok" {
			t.Errorf("healthz: %d %s", status, out)
		}
	})
}

// TestLiveBackendDownAnswersSCIMError: in live mode, when reverse_proxy cannot reach the
// backend (nothing listens), the IdP gets a 502 with a SCIM error body, not Caddy's empty
// 502, for reads and writes alike, and the failure is logged.
func TestLiveBackendDownAnswersSCIMError(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // reserved, then closed: nothing listens
	c := startCaddy(t, strings.ReplaceAll(liveCaddyfile, "{{BACKEND}}", dead), nil)
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq "ada@example.com"`), nil},
		{http.MethodPost, "/scim/v2/Users", map[string]any{"userName": "ada@example.com", "favorite_color": "teal"}},
		{http.MethodPatch, "/scim/v2/Users/u1", map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "path": "favorite_color", "value": "red"}}}},
	} {
		status, body, h := doH(t, req.method, c.URL+req.path, req.body, nil)
		if status != http.StatusBadGateway {
			t.Errorf("%s %s: status %d, want 502: %s", req.method, req.path, status, body)
			continue
		}
		if ct := h.Get("Content-Type"); ct != "application/scim+json" {
			t.Errorf("%s %s: Content-Type %q", req.method, req.path, ct)
		}
		got := decode(t, body)
		if got["status"] != "502" || !strings.Contains(fmt.Sprint(got["schemas"]), "urn:ietf:params:scim:api:messages:2.0:Error") || got["detail"] == "" {
			t.Errorf("%s %s: body %s, want a SCIM error with status 502", req.method, req.path, body)
		}
	}
	if !c.waitLog("backend request failed") {
		t.Error("the failure was not logged")
	}
}
