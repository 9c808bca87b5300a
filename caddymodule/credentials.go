package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// authToken is the value of Handler.Auth that makes IdPs authenticate with their
// connection's token.
const authToken = "token"

// tokenConnectionKey carries the connection a token identified, in the request context.
type tokenConnectionKey struct{}

// provisionAuth checks the credential options.
func (h *Handler) provisionAuth(app *App) error {
	switch h.Auth {
	case "":
		if h.BackendAuth != "" {
			return fmt.Errorf("backend_auth needs auth token (without it the IdP's Authorization header is forwarded)")
		}
		return nil
	case authToken:
		h.creds = app.handle.creds
		return nil
	}
	return fmt.Errorf(`auth must be "token", got %q`, h.Auth)
}

// authenticate checks the IdP's bearer token. On success it returns the request with the
// token's connection in its context and the backend's credential in place of the IdP's;
// otherwise it answers (401, or 503 when the store cannot be read) and returns nil.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) *http.Request {
	ctx, cancel := context.WithTimeout(r.Context(), shadow.DefaultStoreTimeout)
	conn, err := h.creds.Authenticate(ctx, r)
	cancel()
	if err == nil && h.Connection != "" {
		if want := h.connectionName(r); want != conn {
			err = shadow.ErrBadToken
		}
	}
	switch {
	case errors.Is(err, shadow.ErrBadToken):
		h.logger.Info("scim request refused: missing or invalid connection token",
			zap.String("remote_ip", r.RemoteAddr), zap.String("uri", r.URL.Path))
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim-shadow"`)
		shadow.WriteError(w, http.StatusUnauthorized, "", "missing or invalid bearer token for this SCIM endpoint")
		return nil
	case err != nil:
		h.logger.Error("checking a connection token", zap.Error(err))
		w.Header().Set("Retry-After", "5")
		shadow.WriteError(w, http.StatusServiceUnavailable, "", "credentials cannot be checked right now; retry later")
		return nil
	}
	r = r.WithContext(context.WithValue(r.Context(), tokenConnectionKey{}, conn))
	r.Header.Del("Authorization")
	if h.BackendAuth != "" {
		value := h.BackendAuth
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			value = repl.ReplaceKnown(value, "")
		}
		r.Header.Set("Authorization", value)
	}
	return r
}

// tokenConnection is the connection a token identified for r, if any.
func tokenConnection(r *http.Request) (string, bool) {
	c, ok := r.Context().Value(tokenConnectionKey{}).(string)
	return c, ok
}

// unmarshalAuth parses `auth token` and `backend_auth <value>`.
func (h *Handler) unmarshalAuth(d *caddyfile.Dispenser) error {
	opt := d.Val()
	var v string
	if !d.AllArgs(&v) {
		return d.ArgErr()
	}
	if opt == "auth" {
		if v != authToken {
			return d.Errf(`auth must be "token", got %q`, v)
		}
		h.Auth = v
		return nil
	}
	h.BackendAuth = v
	return nil
}
