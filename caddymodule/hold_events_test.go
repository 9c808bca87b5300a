package caddymodule

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"testing"
)

func TestEventsHeldApprovedIgnored(t *testing.T) {
	collected.Lock()
	collected.events = nil
	collected.Unlock()
	base := startInProcessCaddy(t)
	users := base + "/scim/v2/Users"
	if status, _, out := send(t, http.MethodPut, base+"/review/connections/acme/mode", `{"mode":"live"}`); status != http.StatusOK {
		t.Fatalf("PUT mode: %d %s", status, out)
	}
	var held []int64
	for _, name := range []string{"dora", "eve"} {
		status, _, out := send(t, http.MethodPost, users, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+name+`","favoriteColor":"red"}`)
		if status != http.StatusCreated {
			t.Fatalf("live POST: %d %s", status, out)
		}
		var u struct{ ID string }
		_ = json.Unmarshal([]byte(out), &u)
		status, h, out := send(t, http.MethodDelete, users+"/"+u.ID, "")
		if status != http.StatusTooManyRequests {
			t.Fatalf("held DELETE: %d %s", status, out)
		}
		id, _ := strconv.ParseInt(h.Get("X-Scim-Shadow-Record"), 10, 64)
		held = append(held, id)
	}
	if status, _, out := send(t, http.MethodPost, base+"/review/connections/acme/records/"+strconv.FormatInt(held[0], 10)+"/approve", ""); status != http.StatusOK {
		t.Fatalf("approve: %d %s", status, out)
	}
	if status, _, out := send(t, http.MethodPost, base+"/review/connections/acme/records/ignore", `{"all":true}`); status != http.StatusOK {
		t.Fatalf("ignore: %d %s", status, out)
	}
	var got []collectedEvent
	for _, e := range waitEvents(t, 5) {
		if e.Name != EventModeChanged {
			got = append(got, e)
		}
	}
	heldData := func(id int64) map[string]any {
		return map[string]any{"connection": "acme", "resource": "User", "record_id": id, "operation": "delete", "attempts": 1,
			"reason": "hold delete: deletes of User wait for approval"}
	}
	want := []collectedEvent{
		{Name: EventHeld, Origin: "scim_shadow", Data: heldData(held[0])},
		{Name: EventHeld, Origin: "scim_shadow", Data: heldData(held[1])},
		{Name: EventApproved, Origin: "scim_shadow", Data: map[string]any{"connection": "acme", "record_ids": []int64{held[0]}}},
		{Name: EventIgnored, Origin: "scim_shadow", Data: map[string]any{"connection": "acme", "record_ids": []int64{held[0], held[1]}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %s\nwant %s", fmtEvents(got), fmtEvents(want))
	}
}
