package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(ReviewHandler{})
	caddy.RegisterModule(AdminAPI{})
}

// ReviewHandler serves the review API (connections, modes, records) and, under /ui/, the
// review page on a route. Mount it
// behind the authentication you choose, with handle_path so that the prefix is stripped:
//
//	handle_path /scim-shadow/* {
//		basic_auth { admin <hash> }
//		scim_shadow_review
//	}
type ReviewHandler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (ReviewHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.scim_shadow_review",
		New: func() caddy.Module { return new(ReviewHandler) },
	}
}

// Provision connects the handler to the scim_shadow app.
func (h *ReviewHandler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("scim_shadow")
	if err != nil {
		return fmt.Errorf("loading scim_shadow app: %w", err)
	}
	h.app = app.(*App)
	return nil
}

// ServeHTTP answers review requests; it never calls next.
func (h *ReviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.app.reviewAPI().ServeHTTP(w, r)
	return nil
}

// AdminAPI serves the review API on Caddy's admin endpoint under /scim_shadow/, which
// listens on localhost by default. The review page is there too, but Caddy's admin
// endpoint refuses browser navigations (no allowed Origin): people use the route handler.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.scim_shadow",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/scim_shadow/",
		Handler: caddy.AdminHandlerFunc(serveAdmin),
	}}
}

// serveAdmin strips the prefix and serves the running app's review API.
func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	app := currentApp.Load()
	if app == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Message: "the scim_shadow app is not running"}
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/scim_shadow")
	r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/scim_shadow")
	app.reviewAPI().ServeHTTP(w, r2)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*ReviewHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*ReviewHandler)(nil)
	_ caddy.AdminRouter           = AdminAPI{}
)
