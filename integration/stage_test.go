package integration

import (
	"fmt"
	"net/http"
	"testing"
)

func TestStagedGoLive(t *testing.T) {
	be := startBackend(t)
	c := startPreview(t, "store sqlite {{DB}}", be)
	ids := map[string]string{}
	for _, name := range []string{"ada", "bob", "cy"} {
		ids[name] = seedUser(t, be, name+"@example.com")
	}
	status, out, _ := doH(t, http.MethodPost, be.URL+"/scim/v2/Groups",
		fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Pilots","members":[{"value":%q}]}`, ids["cy"]),
		map[string]string{"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json"})
	if status != http.StatusCreated {
		t.Fatalf("seeding group: %d %s", status, out)
	}
	rename := func(name string) (int, http.Header) {
		t.Helper()
		status, _, h := c.scim(t, http.MethodPatch, "/Users/"+ids[name], `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"displayName","value":"Renamed"}]}`)
		return status, h
	}
	applied := func(name string) bool {
		return be.Get(t, "/Users/"+ids[name])["displayName"] == "Renamed"
	}
	records := map[string]string{}
	for _, name := range []string{"ada", "bob", "cy"} {
		status, h := rename(name)
		if status != http.StatusTooManyRequests {
			t.Fatalf("preview write of %s: %d", name, status)
		}
		records[name] = h.Get("X-Scim-Shadow-Record")
	}

	// Step 1: one user goes live.
	if status, body := c.review(t, http.MethodPut, "/connections/acme/stage", map[string]any{"keys": []string{"ADA@example.com"}}); status != http.StatusOK {
		t.Fatalf("stage: %d %v", status, body)
	}
	for name, want := range map[string]int{"ada": http.StatusOK, "bob": http.StatusTooManyRequests, "cy": http.StatusTooManyRequests} {
		if status, _ := rename(name); status != want {
			t.Errorf("retry of %s: %d, want %d", name, status, want)
		}
	}
	if !applied("ada") || applied("bob") || applied("cy") {
		t.Fatalf("after step 1: ada %v bob %v cy %v", applied("ada"), applied("bob"), applied("cy"))
	}
	// The review shows which records went live.
	_, rec := c.review(t, http.MethodGet, "/connections/acme/records/"+records["ada"], nil)
	if rec["status"] != "forwarded" || rec["backend_status"] != float64(200) {
		t.Errorf("ada's record after going live: %v %v", rec["status"], rec["backend_status"])
	}
	_, rec = c.review(t, http.MethodGet, "/connections/acme/records/"+records["bob"], nil)
	if rec["status"] != "pending" {
		t.Errorf("bob's record: %v", rec["status"])
	}

	// Step 2: widen to a group.
	if status, _ := c.review(t, http.MethodPut, "/connections/acme/stage", map[string]any{"keys": []string{"ada@example.com"}, "groups": []string{"Pilots"}}); status != http.StatusOK {
		t.Fatal("widening the stage")
	}
	if status, _ := rename("cy"); status != http.StatusOK || !applied("cy") {
		t.Fatalf("group member's retry: %d, applied %v", status, applied("cy"))
	}
	if status, _ := rename("bob"); status != http.StatusTooManyRequests || applied("bob") {
		t.Fatalf("bob went live with the group step: %d", status)
	}
	_, stage := c.review(t, http.MethodGet, "/connections/acme/stage", nil)
	if fmt.Sprint(stage["stage"]) != "map[groups:[Pilots] keys:[ada@example.com]]" {
		t.Errorf("GET stage: %v", stage)
	}
	// Bad input is a clear error.
	if status, _ := c.review(t, http.MethodPut, "/connections/acme/stage", map[string]any{"percent": 150}); status != http.StatusBadRequest {
		t.Errorf("percent 150: %d", status)
	}
	// Step 3: everyone (100% of keys), then full live.
	c.review(t, http.MethodPut, "/connections/acme/stage", map[string]any{"percent": 100})
	if status, _ := rename("bob"); status != http.StatusOK || !applied("bob") {
		t.Fatalf("100%%: bob's retry %d", status)
	}
	if status, _ := c.review(t, http.MethodPut, "/connections/acme/mode", map[string]any{"mode": "live"}); status != http.StatusOK {
		t.Fatal("switching to live")
	}
}
