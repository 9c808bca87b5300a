// Package scimshadow registers the scim-shadow Caddy modules. Build Caddy with it:
//
//	xcaddy build --with github.com/scim-shadow/caddy-scim-shadow
package scimshadow

import (
	// The Caddy modules: the scim_shadow app, handlers, admin API and Caddyfile syntax.
	_ "github.com/scim-shadow/caddy-scim-shadow/caddymodule"
)
