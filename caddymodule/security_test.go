package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestAdminStaysLocal: the module adds routes under /scim_shadow/ to Caddy's admin endpoint
// and never configures where it listens, so the endpoint stays on Caddy's default,
// localhost:2019 (invariant 8).
func TestAdminStaysLocal(t *testing.T) {
	for _, r := range (AdminAPI{}).Routes() {
		if !strings.HasPrefix(r.Pattern, "/scim_shadow/") {
			t.Errorf("admin route %q outside /scim_shadow/", r.Pattern)
		}
	}
	cfg, err := adapt(t, "{\n\tscim_shadow {\n\t\tstore sqlite /tmp/x.db\n\t}\n}\n:8080 {\n\tscim_shadow\n\treverse_proxy 127.0.0.1:9000\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg["admin"]; ok {
		t.Errorf("the adapted config sets admin: %v", cfg["admin"])
	}
	if caddy.DefaultAdminListen != "localhost:2019" {
		t.Errorf("Caddy's default admin address is %q", caddy.DefaultAdminListen)
	}
}
