package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

func TestCaddyfileHoldAndGuard(t *testing.T) {
	cfg, err := adapt(t, `:8080 {
	scim_shadow {
		hold delete
		hold User deactivate update
		guard deprovision 10 20% within 30m
		guard member_removal 5
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	h := findHandler(cfg, "scim_shadow")
	b, _ := json.Marshal(map[string]any{"hold": h["hold"], "guards": h["guards"]})
	want := `{"guards":{"deprovision":{"max":10,"percent":20,"window":1800000000000},"member_removal":{"max":5}},` +
		`"hold":[{"operations":["delete"]},{"operations":["deactivate","update"],"resource":"User"}]}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}

	// The JSON turns into the engine's policy.
	var hd Handler
	raw, _ := json.Marshal(h)
	if err := json.Unmarshal(raw, &hd); err != nil {
		t.Fatal(err)
	}
	holds, err := hd.holds()
	if err != nil {
		t.Fatal(err)
	}
	if len(holds.Rules) != 2 || holds.Rules[1].ResourceType != "User" || holds.Rules[1].Ops[0] != shadow.HoldDeactivate ||
		holds.Guards.Deprovision.Window != 30*time.Minute || holds.Guards.MemberRemoval.Max != 5 {
		t.Fatalf("holds %+v", holds)
	}
}

func TestCaddyfileHoldErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"hold", "wrong argument count"},
		{"hold User", "name the operations"},
		{"hold User erase", `unknown hold operation "erase"`},
		{"guard deprovision", "wrong argument count"},
		{"guard deprovision lots", "is not a count"},
		{"guard deprovision 5 150%", "invalid percentage"},
		{"guard deprovision 5 within", "needs a duration"},
		{"guard member_removal 5 within 1h", "takes no window"},
		{"guard everything 5", `guard must be "deprovision" or "member_removal"`},
	} {
		_, err := adapt(t, ":8080 {\n\tscim_shadow {\n\t\t"+tc.body+"\n\t}\n}")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestHoldJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		h    Handler
		want string
	}{
		{Handler{Hold: []HoldConfig{{Resource: "User"}}}, "no operations"},
		{Handler{Hold: []HoldConfig{{Operations: []string{"nuke"}}}}, "unknown hold operation"},
		{Handler{Guards: &GuardsConfig{Deprovision: &GuardLimit{}}}, "set max or percent"},
		{Handler{Guards: &GuardsConfig{Deprovision: &GuardLimit{Percent: 101}}}, "0-100"},
	} {
		if _, err := tc.h.holds(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.h, err, tc.want)
		}
	}
}

func TestCaddyfileAuth(t *testing.T) {
	cfg, err := adapt(t, `:8080 {
	scim_shadow {
		auth token
		backend_auth "Bearer {env.BACKEND_TOKEN}"
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	h := findHandler(cfg, "scim_shadow")
	if h["auth"] != "token" || h["backend_auth"] != "Bearer {env.BACKEND_TOKEN}" {
		t.Fatalf("handler %v", h)
	}
	for _, tc := range []struct{ body, want string }{
		{"auth basic", `auth must be "token"`},
		{"auth", "wrong argument count"},
		{"backend_auth", "wrong argument count"},
	} {
		_, err := adapt(t, ":8080 {\n\tscim_shadow {\n\t\t"+tc.body+"\n\t}\n}")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
	if err := (&Handler{BackendAuth: "Bearer x"}).provisionAuth(nil); err == nil || !strings.Contains(err.Error(), "needs auth token") {
		t.Errorf("backend_auth without auth: %v", err)
	}
	if err := (&Handler{Auth: "basic"}).provisionAuth(nil); err == nil {
		t.Error("auth basic accepted in JSON")
	}
}
