// Command caddy is Caddy with the standard modules and scim-shadow — the same program
// `xcaddy build --with github.com/scim-shadow/caddy-scim-shadow` produces. The integration
// tests build it; `make build` builds ./caddy with xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, as in the official build.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The scim-shadow modules.
	_ "github.com/scim-shadow/caddy-scim-shadow"
)

func main() {
	caddycmd.Main()
}
