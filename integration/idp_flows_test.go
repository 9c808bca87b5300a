package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// End-to-end IdP flows: each IdP's whole provisioning life cycle (connection test, lookup,
// create, updates, group push, membership changes, deactivation and reactivation, delete),
// in the shapes of IDP-DIALECTS.md and in our own words, replayed through a real Caddy
// running that IdP's example Caddyfile (examples/<idp>/Caddyfile, as shipped) in front of
// the example backend, which validates types strictly.
//
// Every write is sent twice: first in preview — it must be answered with the retryable
// rejection, reach nothing in the backend, and be recorded with a predicted diff — then
// live, where the backend's real change must equal that prediction. Every response the
// IdP sees must carry the IdP's own attribute shape (reverse mapping), and at the end the
// backend must hold what the IdP intended.

const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// flowStep is one request of an IdP flow. {{user:x}} and {{group:x}} in Path and Body stand
// for backend ids (seeded, or made by an earlier step's Creates).
type flowStep struct {
	Name   string
	Method string
	Path   string
	Body   string
	Status int    // the live status; 0: any 2xx
	Create string // a successful create's id is kept under this name
	// Normalized are the normalisation kinds the recorded write must report.
	Normalized []string
	// Has and Lacks are top-level keys the IdP-visible response resource (a list's first
	// resource) must and must not have.
	Has, Lacks []string
	// Recorded runs on the preview record of a write.
	Recorded func(t *testing.T, rec recordView)
	// Check runs after the live write (or the read), with the response body.
	Check func(t *testing.T, be *testBackend, ids map[string]string, resp []byte)
}

// exampleCaddy starts Caddy with examples/<idp>/Caddyfile as shipped, except for the
// listen port and the admin address (tests run in parallel with other Caddys), a fast
// mode refresh, and the store path and backend taken from the environment variables the
// example reads. It returns the process and the example's connection name.
func exampleCaddy(t *testing.T, idp string, be *testBackend) (*caddyProc, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", idp, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, r := range [][2]string{
		{":8080 {", ":{{PORT}} {"},
		{"\tscim_shadow {\n\t\tstore", "\tadmin {{ADMIN}}\n\tscim_shadow {\n\t\tmode_refresh 100ms\n\t\tstore"},
	} {
		if strings.Count(cfg, r[0]) != 1 {
			t.Fatalf("examples/%s/Caddyfile: %q not found once", idp, r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	m := regexp.MustCompile(`(?m)^\s*connection (\S+)$`).FindStringSubmatch(cfg)
	if m == nil {
		t.Fatalf("examples/%s/Caddyfile has no static connection", idp)
	}
	dir := t.TempDir()
	t.Setenv("SCIM_SHADOW_DB", filepath.Join(dir, "shadow.db"))
	t.Setenv("SCIM_BACKEND", strings.TrimPrefix(be.URL, "http://"))
	return startCaddyIn(t, dir, cfg, be), m[1]
}

// admin calls the review API on Caddy's admin endpoint.
func (p *caddyProc) admin(t *testing.T, method, path string, body any) []byte {
	t.Helper()
	status, out := do(t, method, p.AdminURL+"/scim_shadow"+path, body, map[string]string{})
	if status >= 300 {
		t.Fatalf("admin %s %s: %d %s", method, path, status, out)
	}
	return out
}

// resourceOf returns the resource of a response: the body, or a list's first resource.
func resourceOf(t *testing.T, body []byte) map[string]any {
	t.Helper()
	m := decode(t, body)
	if list, ok := m["Resources"].([]any); ok {
		if len(list) == 0 {
			return map[string]any{}
		}
		r, _ := list[0].(map[string]any)
		return r
	}
	return m
}

// recordView is what the flows read of a record.
type recordView struct {
	Changes  []shadow.Change `json:"changes"`
	Findings []struct {
		Severity, Code, Kind, Message string
	} `json:"findings"`
	Original, Effective struct {
		Body json.RawMessage `json:"body"`
	}
}

// runFlow replays steps through the IdP's example Caddyfile, preview then live per write.
func runFlow(t *testing.T, idp string, steps []flowStep) (*testBackend, map[string]string) {
	be := startBackend(t)
	ids := seed(t, be)
	c, conn := exampleCaddy(t, idp, be)
	for _, st := range steps {
		if !t.Run(st.Name, func(t *testing.T) { runStep(t, c, be, conn, ids, st) }) {
			t.Fatalf("%s: the flow stops at a failed step", idp)
		}
	}
	return be, ids
}

func runStep(t *testing.T, c *caddyProc, be *testBackend, conn string, ids map[string]string, st flowStep) {
	path, body := expand(st.Path, ids), expand(st.Body, ids)
	var reqBody any
	if body != "" {
		reqBody = body
	}
	isRead := st.Method == http.MethodGet || strings.HasSuffix(path, "/.search")
	if isRead {
		// Reads pass in both modes; the example's configured mode (preview) is what the IdP
		// meets at first.
		status, out, _ := c.scim(t, st.Method, path, reqBody)
		if status != http.StatusOK && status != st.Status {
			t.Fatalf("read: %d %s", status, out)
		}
		checkShape(t, st, out)
		if st.Check != nil {
			st.Check(t, be, ids, out)
		}
		return
	}

	// Preview: recorded, rejected, nothing reaches the backend.
	c.admin(t, http.MethodPut, "/connections/"+conn+"/mode", `{"mode":"preview"}`)
	writes := be.Writes()
	status, out, h := c.scim(t, st.Method, path, reqBody)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "600" || h.Get("X-Scim-Shadow-Record") == "" {
		t.Fatalf("preview: %d %v %s", status, h, out)
	}
	if n := be.Writes(); n != writes {
		t.Fatalf("preview: %d write(s) reached the backend", n-writes)
	}
	var rec recordView
	if err := json.Unmarshal(c.admin(t, http.MethodGet, "/connections/"+conn+"/records/"+h.Get("X-Scim-Shadow-Record"), nil), &rec); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, f := range rec.Findings {
		if f.Severity == "error" {
			t.Errorf("predicted error %s: %s", f.Code, f.Message)
		}
		if f.Code == "normalized" {
			if f.Severity != "info" {
				t.Errorf("normalized finding of severity %s", f.Severity)
			}
			kinds = append(kinds, f.Kind)
		}
	}
	slices.Sort(kinds)
	kinds = slices.Compact(kinds)
	want := slices.Clone(st.Normalized)
	slices.Sort(want)
	if !slices.Equal(kinds, want) {
		t.Errorf("normalized kinds %v, want %v", kinds, want)
	}

	if st.Recorded != nil {
		st.Recorded(t, rec)
	}

	// Live: the same request, then the backend's real change against the prediction.
	before := backendState(t, be, path)
	c.admin(t, http.MethodPut, "/connections/"+conn+"/mode", `{"mode":"live"}`)
	status, out, _ = c.scim(t, st.Method, path, reqBody)
	c.admin(t, http.MethodDelete, "/connections/"+conn+"/records", nil)
	if st.Status != 0 && status != st.Status || status < 200 || status > 299 {
		t.Fatalf("live: %d %s", status, out)
	}
	afterPath := path
	if st.Method == http.MethodPost {
		id, _ := decode(t, out)["id"].(string)
		afterPath = path + "/" + id
		if st.Create != "" {
			ids[st.Create] = id
		}
	}
	after := backendState(t, be, afterPath)
	// $ref URLs name the host a resource was read through (Caddy or the backend directly).
	actual, predicted := hostless(changeKeys(shadow.Diff(before, after))), hostless(changeKeys(rec.Changes))
	if strings.Join(actual, "\n") != strings.Join(predicted, "\n") {
		t.Errorf("predicted changes:\n  %s\nbackend changes:\n  %s", strings.Join(predicted, "\n  "), strings.Join(actual, "\n  "))
	}
	if len(out) > 0 {
		checkShape(t, st, out)
	}
	if st.Check != nil {
		st.Check(t, be, ids, out)
	}
}

var hostRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)

func hostless(keys []string) []string {
	for i, k := range keys {
		keys[i] = hostRE.ReplaceAllString(k, "http://host/")
	}
	return keys
}

func checkShape(t *testing.T, st flowStep, body []byte) {
	t.Helper()
	if len(st.Has) == 0 && len(st.Lacks) == 0 {
		return
	}
	r := resourceOf(t, body)
	for _, k := range st.Has {
		if _, ok := r[k]; !ok {
			t.Errorf("the IdP's response lacks %q: %s", k, body)
		}
	}
	for _, k := range st.Lacks {
		if _, ok := r[k]; ok {
			t.Errorf("the IdP's response has %q: %s", k, body)
		}
	}
}

// backendUser reads a user straight from the backend.
func backendUser(t *testing.T, be *testBackend, ids map[string]string, name string) map[string]any {
	t.Helper()
	return be.Get(t, "/Users/"+ids[name])
}

// memberIDs are the member ids of a group in the backend, sorted.
func memberIDs(t *testing.T, be *testBackend, id string) []string {
	t.Helper()
	var out []string
	for _, m := range asSlice(be.Get(t, "/Groups/"+id)["members"]) {
		out = append(out, fmt.Sprint(m.(map[string]any)["value"]))
	}
	slices.Sort(out)
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// idsOf maps names to sorted ids.
func idsOf(ids map[string]string, names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, ids[n])
	}
	slices.Sort(out)
	return out
}

func wantActive(name string, active bool) func(*testing.T, *testBackend, map[string]string, []byte) {
	return func(t *testing.T, be *testBackend, ids map[string]string, _ []byte) {
		if got := backendUser(t, be, ids, name)["active"]; got != active {
			t.Errorf("backend active = %v, want %v", got, active)
		}
	}
}

func wantMembers(group string, users ...string) func(*testing.T, *testBackend, map[string]string, []byte) {
	return func(t *testing.T, be *testBackend, ids map[string]string, _ []byte) {
		if got, want := memberIDs(t, be, ids[group]), idsOf(ids, users...); !slices.Equal(got, want) {
			t.Errorf("members of %s = %v, want %v (%v)", group, got, want, users)
		}
	}
}

// wantEmpty checks a lookup found nothing (an IdP's connection test, a lookup before create).
func wantEmpty(t *testing.T, _ *testBackend, _ map[string]string, out []byte) {
	if decode(t, out)["totalResults"] != float64(0) {
		t.Errorf("lookup found something: %s", out)
	}
}

const (
	userS  = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]`
	groupS = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]`
	patchS = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`
)

func TestIdPFlowOkta(t *testing.T) {
	// This tenant's Okta profile mapping sends department and employeeNumber top-level.
	oktaUser := func(dept string, active bool, extra string) string {
		return `{` + userS + extra + `,"userName":"olivia@example.com","name":{"givenName":"Olivia","familyName":"Okta"},` +
			`"emails":[{"primary":true,"value":"olivia@example.com","type":"work"}],"displayName":"Olivia Okta","locale":"en-US",` +
			`"externalId":"00u-olivia","groups":[],"department":"` + dept + `","employeeNumber":"E-100","active":` + fmt.Sprint(active) + `}`
	}
	idpShape := []string{"department", "employeeNumber"}
	be, ids := runFlow(t, "okta", []flowStep{
		{Name: "test connection", Method: "GET", Path: "/Users?startIndex=1&count=2"},
		{Name: "test connection groups", Method: "GET", Path: "/Groups?startIndex=1&count=100"},
		{Name: "lookup before create", Method: "GET", Path: "/Users?filter=userName%20eq%20%22olivia%40example.com%22&startIndex=1&count=100", Check: wantEmpty},
		{Name: "create with password", Method: "POST", Path: "/Users", Status: 201, Create: "user:olivia",
			Body: strings.Replace(oktaUser("Sales", true, ""), `"active"`, `"password":"pw-0-olivia","active"`, 1),
			Has:  idpShape, Lacks: []string{ent, "password"},
			Check: func(t *testing.T, be *testBackend, ids map[string]string, _ []byte) {
				u := backendUser(t, be, ids, "user:olivia")
				if e, _ := u[ent].(map[string]any); e["department"] != "Sales" || e["employeeNumber"] != "E-100" || u["department"] != nil {
					t.Errorf("backend user %v", u)
				}
			}},
		{Name: "read back", Method: "GET", Path: "/Users/{{user:olivia}}", Has: idpShape, Lacks: []string{ent}},
		{Name: "lookup after create", Method: "GET", Path: "/Users?filter=userName%20eq%20%22olivia%40example.com%22", Has: idpShape},
		{Name: "wizard full PUT with id, meta, groups", Method: "PUT", Path: "/Users/{{user:olivia}}", Status: 200,
			Body: oktaUser("Marketing", true, `,"id":"{{user:olivia}}","meta":{"resourceType":"User"}`), Has: idpShape, Lacks: []string{ent}},
		{Name: "push group", Method: "POST", Path: "/Groups", Status: 201, Create: "group:sales", Body: `{` + groupS + `,"displayName":"Okta Sales","members":[]}`},
		{Name: "push membership with re-sent rename", Method: "PATCH", Path: "/Groups/{{group:sales}}",
			Body: `{` + patchS + `,"Operations":[{"op":"replace","value":{"id":"{{group:sales}}","displayName":"Okta Sales"}},` +
				`{"op":"add","path":"members","value":[{"value":"{{user:olivia}}","display":"olivia@example.com"},{"value":"{{user:alice}}","display":"alice@example.com"}]}]}`,
			Check: wantMembers("group:sales", "user:olivia", "user:alice")},
		{Name: "membership: one out, one in", Method: "PATCH", Path: "/Groups/{{group:sales}}",
			Body: `{` + patchS + `,"Operations":[{"op":"replace","value":{"id":"{{group:sales}}","displayName":"Okta Sales"}},` +
				`{"op":"remove","path":"members[value eq \"{{user:alice}}\"]"},{"op":"add","path":"members","value":[{"value":"{{user:bob}}","display":"bob@example.com"}]}]}`,
			Check: wantMembers("group:sales", "user:olivia", "user:bob")},
		{Name: "path-less deactivate", Method: "PATCH", Path: "/Users/{{user:olivia}}",
			Body: `{` + patchS + `,"Operations":[{"op":"replace","value":{"active":false}}]}`, Check: wantActive("user:olivia", false)},
		{Name: "path-less reactivate", Method: "PATCH", Path: "/Users/{{user:olivia}}",
			Body: `{` + patchS + `,"Operations":[{"op":"replace","value":{"active":true}}]}`, Check: wantActive("user:olivia", true)},
		{Name: "unlink deletes the group", Method: "DELETE", Path: "/Groups/{{group:sales}}", Status: 204},
	})
	// What Okta intended: Olivia active in Marketing with her employee number, the group gone.
	u := backendUser(t, be, ids, "user:olivia")
	if e, _ := u[ent].(map[string]any); u["active"] != true || e["department"] != "Marketing" || e["employeeNumber"] != "E-100" {
		t.Errorf("final user %v", u)
	}
	if status, _ := do(t, http.MethodGet, be.URL+"/scim/v2/Groups/"+ids["group:sales"], nil, nil); status != http.StatusNotFound {
		t.Errorf("group still there: %d", status)
	}
}

// entraView is what Entra's sync compares after a write: its attributes at its paths.
func entraView(u map[string]any) map[string]any {
	get := func(m any, k string) any {
		mm, _ := m.(map[string]any)
		return mm[k]
	}
	work := any(nil)
	for _, e := range asSlice(u["emails"]) {
		if get(e, "type") == "work" {
			work = get(e, "value")
		}
	}
	return map[string]any{
		"userName": u["userName"], "displayName": u["displayName"], "active": u["active"], "externalId": u["externalId"],
		"department": u["department"], "name.familyName": get(u["name"], "familyName"), "title": u["title"],
		`emails[type eq "work"].value`: work,
		ent + ":employeeNumber":        get(u[ent], "employeeNumber"), ent + ":manager": get(get(u[ent], "manager"), "value"),
	}
}

func TestIdPFlowEntra(t *testing.T) {
	// What Entra believes Evelyn looks like after each write; the read-after-write step
	// compares the IdP-visible read with it.
	intended := map[string]any{
		"userName": "evelyn@example.com", "displayName": "Evelyn Entra", "active": true, "externalId": "ev-0001",
		"department": "Finance", "name.familyName": "Entra-Smith", "title": "Controller",
		`emails[type eq "work"].value`: "evelyn.smith@example.com", ent + ":employeeNumber": "E-78", ent + ":manager": "{{user:bob}}",
	}
	readAfterWrite := func(t *testing.T, be *testBackend, ids map[string]string, out []byte) {
		seen := entraView(resourceOf(t, out))
		for k, want := range intended {
			if w, ok := want.(string); ok {
				want = expand(w, ids)
			}
			if fmt.Sprint(seen[k]) != fmt.Sprint(want) {
				t.Errorf("Entra would see a difference in %s: %v, it sent %v", k, seen[k], want)
			}
		}
		// Without reverse mapping it would: the backend keeps department in the extension.
		if direct := entraView(backendUser(t, be, ids, "user:evelyn")); direct["department"] != nil {
			t.Errorf("the backend's own shape has a top-level department: %v", direct)
		}
	}
	members := func(names ...string) string {
		var v []string
		for _, n := range names {
			v = append(v, `{"value":"{{user:`+n+`}}"}`)
		}
		return strings.Join(v, ",")
	}
	be, ids := runFlow(t, "entra", []flowStep{
		{Name: "test connection with a random userName", Method: "GET", Path: "/Users?filter=userName%20eq%20%2200000000-0000-4000-8000-00000000c0de%22", Check: wantEmpty},
		{Name: "schema discovery", Method: "GET", Path: "/Schemas"},
		{Name: "lookup by externalId", Method: "GET", Path: "/Users?filter=externalId%20eq%20%22ev-0001%22"},
		{Name: "create with extension and explicit nulls", Method: "POST", Path: "/Users", Status: 201, Create: "user:evelyn",
			Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + ent + `"],"externalId":"ev-0001","userName":"evelyn@example.com",` +
				`"active":true,"displayName":"Evelyn Entra","title":null,"emails":[{"primary":true,"type":"work","value":"evelyn@example.com"}],` +
				`"name":{"formatted":"Evelyn Entra","familyName":"Entra","givenName":"Evelyn"},"department":"Finance",` +
				`"` + ent + `":{"employeeNumber":"E-77"}}`,
			Has: []string{"department"}},
		{Name: "manager as a bare string", Method: "PATCH", Path: "/Users/{{user:evelyn}}", Normalized: []string{"op_case", "manager"},
			Body: `{` + patchS + `,"Operations":[{"op":"Add","path":"` + ent + `:manager","value":"{{user:bob}}"}]}`,
			Check: func(t *testing.T, be *testBackend, ids map[string]string, _ []byte) {
				if m := backendUser(t, be, ids, "user:evelyn")[ent].(map[string]any)["manager"]; m.(map[string]any)["value"] != ids["user:bob"] {
					t.Errorf("manager %v", m)
				}
			}},
		{Name: "capitalised ops, filtered email path, a change sent as Add", Method: "PATCH", Path: "/Users/{{user:evelyn}}", Normalized: []string{"op_case"},
			Body: `{` + patchS + `,"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"evelyn.smith@example.com"},` +
				`{"op":"Replace","path":"name.familyName","value":"Entra-Smith"},{"op":"Add","path":"title","value":"Controller"}]}`,
			Has: []string{"department"}},
		{Name: "folded path-less replace with dotted and URN keys", Method: "PATCH", Path: "/Users/{{user:evelyn}}", Normalized: []string{"dotted_keys"},
			Body: `{` + patchS + `,"Operations":[{"op":"replace","value":{"name.givenName":"Evelyn","` + ent + `:employeeNumber":"E-78"}}]}`},
		{Name: "read after write sees no difference", Method: "GET", Path: "/Users/{{user:evelyn}}", Check: readAfterWrite},
		{Name: "lookup by work email", Method: "GET", Path: "/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22evelyn.smith%40example.com%22", Check: readAfterWrite},
		{Name: "create group", Method: "POST", Path: "/Groups", Status: 201, Create: "group:fin",
			Body: `{` + groupS + `,"externalId":"grp-fin","displayName":"Entra Finance","members":[]}`},
		{Name: "group lookup without members", Method: "GET", Path: "/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Entra%20Finance%22",
			Check: func(t *testing.T, _ *testBackend, _ map[string]string, out []byte) {
				if r := resourceOf(t, out); r["displayName"] != "Entra Finance" || r["members"] != nil {
					t.Errorf("group lookup %s", out)
				}
			}},
		{Name: "add five members", Method: "PATCH", Path: "/Groups/{{group:fin}}", Normalized: []string{"op_case"},
			Body:  `{` + patchS + `,"Operations":[{"op":"Add","path":"members","value":[` + members("evelyn", "alice", "bob", "carol", "dave") + `]}]}`,
			Check: wantMembers("group:fin", "user:evelyn", "user:alice", "user:bob", "user:carol", "user:dave")},
		{Name: "value-array removal removes one member of five", Method: "PATCH", Path: "/Groups/{{group:fin}}", Normalized: []string{"op_case", "member_removal"},
			Body:  `{` + patchS + `,"Operations":[{"op":"Remove","path":"members","value":[` + members("carol") + `]}]}`,
			Check: wantMembers("group:fin", "user:evelyn", "user:alice", "user:bob", "user:dave")},
		{Name: "disable with a string boolean", Method: "PATCH", Path: "/Users/{{user:evelyn}}", Normalized: []string{"op_case", "booleans"},
			Body: `{` + patchS + `,"Operations":[{"op":"Replace","path":"active","value":"False"}]}`, Check: wantActive("user:evelyn", false)},
		{Name: "enable with a string boolean", Method: "PATCH", Path: "/Users/{{user:evelyn}}", Normalized: []string{"op_case", "booleans"},
			Body: `{` + patchS + `,"Operations":[{"op":"Replace","path":"active","value":"True"}]}`, Check: wantActive("user:evelyn", true)},
		{Name: "read after the sync cycle", Method: "GET", Path: "/Users/{{user:evelyn}}", Check: readAfterWrite},
		{Name: "hard delete after soft delete expired", Method: "DELETE", Path: "/Users/{{user:evelyn}}", Status: 204},
	})
	if status, _ := do(t, http.MethodGet, be.URL+"/scim/v2/Users/"+ids["user:evelyn"], nil, nil); status != http.StatusNotFound {
		t.Errorf("user still there: %d", status)
	}
	if got := len(memberIDs(t, be, ids["group:fin"])); got > 4 {
		t.Errorf("group has %d members", got)
	}
}

func TestIdPFlowOneLogin(t *testing.T) {
	// This tenant's JSON template puts the favourite colour in favorite_color and the
	// department top-level; department is set on create only (the backend owns it after).
	put := func(color, dept string, active bool) string {
		return `{` + userS + `,"userName":"oscar@example.com","externalId":"ol-9","name":{"givenName":"Oscar","familyName":"Onelogin"},` +
			`"emails":[{"value":"oscar@example.com","type":"work","primary":true}],"title":"Support Lead","favorite_color":"` + color + `",` +
			`"department":"` + dept + `","active":` + fmt.Sprint(active) + `}`
	}
	shape := []string{"favorite_color", "department"}
	lacks := []string{"favoriteColor", ent}
	be, ids := runFlow(t, "onelogin", []flowStep{
		{Name: "enable connection", Method: "GET", Path: "/Users?filter=userName%20eq%20%22no-such-user-0000%22", Check: wantEmpty},
		{Name: "lookup", Method: "GET", Path: "/Users?filter=userName%20eq%20%22oscar%40example.com%22"},
		{Name: "create from the template", Method: "POST", Path: "/Users", Status: 201, Create: "user:oscar",
			Body: put("green", "Support", true), Has: shape, Lacks: lacks},
		{Name: "full PUT renames nothing it should not", Method: "PUT", Path: "/Users/{{user:oscar}}", Status: 200,
			Body: put("blue", "Sales", true), Has: shape, Lacks: lacks,
			Recorded: func(t *testing.T, rec recordView) {
				// The effective PUT is the original with exactly the mapped attributes moved:
				// every other attribute keeps its name and value.
				var orig, eff map[string]any
				if json.Unmarshal(rec.Original.Body, &orig) != nil || json.Unmarshal(rec.Effective.Body, &eff) != nil {
					t.Fatalf("record bodies %s / %s", rec.Original.Body, rec.Effective.Body)
				}
				for k, v := range orig {
					switch k {
					case "favorite_color", "department":
						if _, ok := eff[k]; ok {
							t.Errorf("effective PUT still has %s", k)
						}
					case "schemas": // the extension the department moved into is declared
						if want := fmt.Sprint(append(v.([]any), ent)); fmt.Sprint(eff[k]) != want {
							t.Errorf("effective schemas %v, want %v", eff[k], want)
						}
					default:
						if fmt.Sprint(eff[k]) != fmt.Sprint(v) {
							t.Errorf("effective PUT changed %s: %v → %v", k, v, eff[k])
						}
					}
				}
				for k := range eff {
					if _, ok := orig[k]; !ok && k != "favoriteColor" && k != ent {
						t.Errorf("effective PUT added %s", k)
					}
				}
				if eff["favoriteColor"] != "blue" || fmt.Sprint(eff[ent]) != "map[department:Support]" {
					t.Errorf("mapped attributes in the effective PUT: %v %v", eff["favoriteColor"], eff[ent])
				}
			},
			Check: func(t *testing.T, be *testBackend, ids map[string]string, out []byte) {
				u := backendUser(t, be, ids, "user:oscar")
				name, _ := u["name"].(map[string]any)
				emails := asSlice(u["emails"])
				if u["userName"] != "oscar@example.com" || u["externalId"] != "ol-9" || u["title"] != "Support Lead" ||
					name["givenName"] != "Oscar" || name["familyName"] != "Onelogin" || len(emails) != 1 ||
					emails[0].(map[string]any)["value"] != "oscar@example.com" {
					t.Errorf("an unmapped attribute changed: %v", u)
				}
				if u["favoriteColor"] != "blue" || u["favorite_color"] != nil || u["department"] != nil {
					t.Errorf("mapped attributes: %v", u)
				}
				if e, _ := u[ent].(map[string]any); e["department"] != "Support" {
					t.Errorf("department (only_on create) changed by a PUT: %v", u[ent])
				}
				if r := resourceOf(t, out); r["department"] != "Support" || r["favorite_color"] != "blue" {
					t.Errorf("the IdP sees %v", r)
				}
			}},
		{Name: "group push: add to eng", Method: "PATCH", Path: "/Groups/{{group:eng}}",
			Body:  `{` + patchS + `,"Operations":[{"op":"add","path":"members","value":[{"value":"{{user:oscar}}"}]}]}`,
			Check: wantMembers("group:eng", "user:alice", "user:bob", "user:carol", "user:oscar")},
		{Name: "group push: add to ops", Method: "PATCH", Path: "/Groups/{{group:ops}}",
			Body:  `{` + patchS + `,"Operations":[{"op":"add","path":"members","value":[{"value":"{{user:oscar}}"}]}]}`,
			Check: wantMembers("group:ops", "user:alice", "user:bob", "user:carol", "user:dave", "user:erin", "user:oscar")},
		{Name: "deprovision: out of eng", Method: "PATCH", Path: "/Groups/{{group:eng}}", Normalized: []string{"member_removal"},
			Body:  `{` + patchS + `,"Operations":[{"op":"remove","path":"members","value":[{"value":"{{user:oscar}}"}]}]}`,
			Check: wantMembers("group:eng", "user:alice", "user:bob", "user:carol")},
		{Name: "deprovision: out of ops", Method: "PATCH", Path: "/Groups/{{group:ops}}", Normalized: []string{"member_removal"},
			Body:  `{` + patchS + `,"Operations":[{"op":"remove","path":"members","value":[{"value":"{{user:oscar}}"}]}]}`,
			Check: wantMembers("group:ops", "user:alice", "user:bob", "user:carol", "user:dave", "user:erin")},
		{Name: "suspend by PUT", Method: "PUT", Path: "/Users/{{user:oscar}}", Status: 200, Body: put("blue", "Sales", false),
			Has: shape, Check: wantActive("user:oscar", false)},
		{Name: "reactivate by PUT with a string boolean", Method: "PUT", Path: "/Users/{{user:oscar}}", Status: 200,
			Body: strings.Replace(put("blue", "Sales", false), `"active":false`, `"active":"true"`, 1), Normalized: []string{"booleans"},
			Has: shape, Check: wantActive("user:oscar", true)},
		{Name: "read back", Method: "GET", Path: "/Users/{{user:oscar}}", Has: shape, Lacks: lacks},
		{Name: "delete", Method: "DELETE", Path: "/Users/{{user:oscar}}", Status: 204},
	})
	if status, _ := do(t, http.MethodGet, be.URL+"/scim/v2/Users/"+ids["user:oscar"], nil, nil); status != http.StatusNotFound {
		t.Errorf("user still there: %d", status)
	}
}

// TestIdPOptionsJSON checks the JSON form of normalize and reverse_map through `caddy
// validate` (which provisions the handler): good values load, bad ones are clear errors.
func TestIdPOptionsJSON(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, opts, want string }{
		{"good", `"normalize":["op_case","booleans","member_removal","manager","dotted_keys"],"reverse_map":"off"`, ""},
		{"all", `"normalize":["all"],"reverse_map":"on"`, ""},
		{"unknown switch", `"normalize":["op_case","bools"]`, `unknown normalization \"bools\"`},
		{"bad reverse_map", `"reverse_map":"sometimes"`, `reverse_map must be \"on\" or \"off\"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"apps":{"scim_shadow":{"store":{"type":"sqlite","path":"` + filepath.ToSlash(filepath.Join(dir, tc.name+".db")) + `"}},` +
				`"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[{"handler":"scim_shadow","connection":"c",` + tc.opts + `},` +
				`{"handler":"static_response","body":"ok"}]}]}}}}}`
			path := filepath.Join(dir, tc.name+".json")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(caddyBin, "validate", "--config", path)
			cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
			out, err := cmd.CombinedOutput()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate: %v\n%s", err, out)
			case tc.want != "" && (err == nil || !strings.Contains(string(out), tc.want)):
				t.Fatalf("validate: %v, want an error with %q\n%s", err, tc.want, out)
			}
		})
	}
}
