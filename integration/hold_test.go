package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// holdCaddyfile runs connection acme live with a hold on user deletes and both guards,
// the review API on a route and Caddy's metrics.
const holdCaddyfile = `{
	admin {{ADMIN}}
	scim_shadow {
		{{STORE}}
	}
}
:{{PORT}} {
	route /scim/v2/* {
		scim_shadow {
			connection acme
			hold User delete
			guard deprovision 5 within 1h
			guard member_removal 5 50%
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
	metrics /metrics
}
`

// seedUser creates a user directly in the backend and returns its id.
func seedUser(t *testing.T, be *testBackend, name string) string {
	t.Helper()
	status, out, _ := doH(t, http.MethodPost, be.URL+"/scim/v2/Users",
		fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"active":true}`, name),
		map[string]string{"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json"})
	if status != http.StatusCreated {
		t.Fatalf("seeding user %s: %d %s", name, status, out)
	}
	return decode(t, out)["id"].(string)
}

// backendHas reports whether the backend has the resource at path.
func backendHas(t *testing.T, be *testBackend, path string) bool {
	t.Helper()
	status, _ := do(t, http.MethodGet, be.URL+"/scim/v2"+path, nil, nil)
	return status == http.StatusOK
}

func deactivate(t *testing.T, c *caddyProc, id string) (int, []byte, http.Header) {
	t.Helper()
	return c.scim(t, http.MethodPatch, "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"active":false}}]}`)
}

// startHold runs holdCaddyfile on SQLite.
func startHold(t *testing.T, be *testBackend) *caddyProc {
	t.Helper()
	return startCaddy(t, strings.ReplaceAll(holdCaddyfile, "{{STORE}}", "store sqlite {{DB}}"), be)
}

func TestHoldDeleteApproveAndIgnore(t *testing.T) {
	for name, store := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			be := startBackend(t)
			testHoldDeleteApproveAndIgnore(t, be, startCaddy(t, strings.ReplaceAll(holdCaddyfile, "{{STORE}}", store(t)), be))
		})
	}
}

func testHoldDeleteApproveAndIgnore(t *testing.T, be *testBackend, c *caddyProc) {
	ada, bob := seedUser(t, be, "ada@example.com"), seedUser(t, be, "bob@example.com")

	// A DELETE is held: retryable rejection, the backend keeps the user.
	status, out, h := c.scim(t, http.MethodDelete, "/Users/"+ada, nil)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || h.Get("X-Scim-Shadow-Record") == "" {
		t.Fatalf("held DELETE: %d %v %s", status, h, out)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "application/scim+json") || !strings.Contains(decode(t, out)["detail"].(string), "held for approval") {
		t.Errorf("held DELETE answer %s", out)
	}
	id := h.Get("X-Scim-Shadow-Record")
	if !backendHas(t, be, "/Users/"+ada) {
		t.Fatal("the held DELETE reached the backend")
	}
	// An identical retry is the same record, one more attempt.
	_, _, h2 := c.scim(t, http.MethodDelete, "/Users/"+ada, nil)
	if h2.Get("X-Scim-Shadow-Record") != id {
		t.Fatalf("retry got record %q, want %q", h2.Get("X-Scim-Shadow-Record"), id)
	}
	_, conns := c.review(t, http.MethodGet, "/connections", nil)
	if list, _ := conns["connections"].([]any); len(list) != 1 || list[0].(map[string]any)["held"] != float64(1) {
		t.Errorf("GET /connections: %v", conns)
	}
	_, rec := c.review(t, http.MethodGet, "/connections/acme/records/"+id, nil)
	if rec["status"] != "held" || rec["attempts"] != float64(2) || !strings.Contains(fmt.Sprint(rec["hold_reason"]), "hold delete") {
		t.Fatalf("held record %v", rec)
	}
	// Unrelated writes keep flowing.
	status, out, _ = c.scim(t, http.MethodPatch, "/Users/"+bob, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"displayName","value":"Bob"}]}`)
	if status != http.StatusOK {
		t.Fatalf("unrelated PATCH: %d %s", status, out)
	}

	// Approve (on the admin API), then the next identical retry is applied.
	status, raw := do(t, http.MethodPost, c.AdminURL+"/scim_shadow/connections/acme/records/"+id+"/approve", nil, map[string]string{})
	if status != http.StatusOK || string(raw) != `{"approved":[`+id+`]}`+"\n" {
		t.Fatalf("approve: %d %s", status, raw)
	}
	status, out, _ = c.scim(t, http.MethodDelete, "/Users/"+ada, nil)
	if status != http.StatusNoContent {
		t.Fatalf("approved retry: %d %s", status, out)
	}
	if backendHas(t, be, "/Users/"+ada) {
		t.Fatal("the approved DELETE was not applied")
	}
	_, rec = c.review(t, http.MethodGet, "/connections/acme/records/"+id, nil)
	if rec["status"] != "forwarded" || rec["backend_status"] != float64(204) {
		t.Fatalf("approved record after the retry: %v", rec)
	}
	// Approving it again is a conflict.
	if status, _ := c.review(t, http.MethodPost, "/connections/acme/records/"+id+"/approve", nil); status != http.StatusConflict {
		t.Errorf("second approve: %d, want 409", status)
	}

	// Ignore: later retries get a final error, the user stays.
	_, _, h = c.scim(t, http.MethodDelete, "/Users/"+bob, nil)
	bid := h.Get("X-Scim-Shadow-Record")
	if status, body := c.review(t, http.MethodPost, "/connections/acme/records/ignore", map[string]any{"user": "bob@example.com"}); status != http.StatusOK ||
		fmt.Sprint(body["ignored"]) != "["+bid+"]" {
		t.Fatalf("ignore by filter: %d %v (record %s)", status, body, bid)
	}
	status, out, _ = c.scim(t, http.MethodDelete, "/Users/"+bob, nil)
	if status != http.StatusForbidden || !strings.Contains(string(out), "ignored") || !strings.Contains(string(out), ErrorSchemaURN) {
		t.Fatalf("ignored retry: %d %s", status, out)
	}
	if !backendHas(t, be, "/Users/"+bob) {
		t.Fatal("the ignored DELETE was applied")
	}
	// Bad input to the API is a clear error.
	if status, _ := c.review(t, http.MethodPost, "/connections/acme/records/approve", map[string]any{}); status != http.StatusBadRequest {
		t.Errorf("empty filter: %d, want 400", status)
	}
	if status, _ := c.review(t, http.MethodPost, "/connections/acme/records/x/approve", nil); status != http.StatusBadRequest {
		t.Errorf("bad id: %d, want 400", status)
	}
}

// ErrorSchemaURN is the schema of SCIM error bodies.
const ErrorSchemaURN = "urn:ietf:params:scim:api:messages:2.0:Error"

func TestGuardMassDeactivation(t *testing.T) {
	be := startBackend(t)
	c := startHold(t, be)
	ids := make([]string, 25)
	for i := range ids {
		ids[i] = seedUser(t, be, fmt.Sprintf("user%02d@example.com", i))
	}
	forwarded, held := 0, 0
	for _, id := range ids[:20] {
		status, out, _ := deactivate(t, c, id)
		switch status {
		case http.StatusOK:
			forwarded++
		case http.StatusTooManyRequests:
			held++
			if !strings.Contains(string(out), "guard deprovision") {
				t.Errorf("held without the guard's reason: %s", out)
			}
		default:
			t.Fatalf("deactivate %s: %d %s", id, status, out)
		}
	}
	if forwarded != 5 || held != 15 {
		t.Fatalf("forwarded %d, held %d; want 5 and 15", forwarded, held)
	}
	for i, id := range ids[:20] {
		active := be.Get(t, "/Users/"+id)["active"]
		if want := i >= 5; active != want {
			t.Errorf("user %d active=%v, want %v", i, active, want)
		}
	}
	// Unrelated writes keep flowing.
	status, out, _ := c.scim(t, http.MethodPatch, "/Users/"+ids[24], `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"displayName","value":"Still here"}]}`)
	if status != http.StatusOK {
		t.Fatalf("unrelated PATCH: %d %s", status, out)
	}
	// The review shows why, and the metric counts the trips.
	_, list := c.review(t, http.MethodGet, "/connections/acme/records?status=held", nil)
	if recs, _ := list["records"].([]any); len(recs) != 15 {
		t.Fatalf("held records: %d, want 15", len(recs))
	}
	if got := scrape(t, c)[`scim_shadow_guard_trips_total{connection="acme",guard="deprovision"}`]; got != 15 {
		t.Errorf("guard trips metric %v, want 15", got)
	}
	heldGauge := 0.0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && heldGauge != 15; time.Sleep(100 * time.Millisecond) {
		heldGauge = scrape(t, c)[`scim_shadow_held_records{connection="acme"}`]
	}
	if heldGauge != 15 {
		t.Errorf("held records gauge %v, want 15", heldGauge)
	}
	// The operator approves the batch; the IdP's retries go through.
	status, body := c.review(t, http.MethodPost, "/connections/acme/records/approve", map[string]any{"guard": "deprovision"})
	if approved, _ := body["approved"].([]any); status != http.StatusOK || len(approved) != 15 {
		t.Fatalf("approve batch: %d %v", status, body)
	}
	for _, id := range ids[5:20] {
		if status, out, _ := deactivate(t, c, id); status != http.StatusOK {
			t.Fatalf("approved retry of %s: %d %s", id, status, out)
		}
	}
	if be.Get(t, "/Users/"+ids[19])["active"] != false {
		t.Error("approved deactivation not applied")
	}
}

func TestGuardMemberRemoval(t *testing.T) {
	be := startBackend(t)
	c := startHold(t, be)
	var members, memberIDs []string
	for i := range 10 {
		memberIDs = append(memberIDs, seedUser(t, be, fmt.Sprintf("m%d@example.com", i)))
		members = append(members, fmt.Sprintf(`{"value":%q}`, memberIDs[i]))
	}
	status, out, _ := doH(t, http.MethodPost, be.URL+"/scim/v2/Groups",
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[`+strings.Join(members, ",")+`]}`,
		map[string]string{"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json"})
	if status != http.StatusCreated {
		t.Fatalf("seeding group: %d %s", status, out)
	}
	gid := decode(t, out)["id"].(string)

	// One request removing 9 of 10 members is held.
	status, out, h := c.scim(t, http.MethodPatch, "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"members","value":[`+members[0]+`]}]}`)
	if status != http.StatusTooManyRequests || !strings.Contains(string(out), "removes 9 of 10 members") {
		t.Fatalf("mass removal: %d %s", status, out)
	}
	if n := len(be.Get(t, "/Groups/"+gid)["members"].([]any)); n != 10 {
		t.Fatalf("group has %d members after a held removal", n)
	}
	_, rec := c.review(t, http.MethodGet, "/connections/acme/records/"+h.Get("X-Scim-Shadow-Record"), nil)
	if !strings.HasPrefix(fmt.Sprint(rec["hold_reason"]), "guard member_removal") || rec["changes"] == nil {
		t.Errorf("held record has no reason or diff: %v", rec)
	}
	// Removing one member flows.
	status, out, _ = c.scim(t, http.MethodPatch, "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"remove","path":"members[value eq \"`+memberIDs[9]+`\"]"}]}`)
	if status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("single removal: %d %s", status, out)
	}
}
