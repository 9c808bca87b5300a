package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the scim_shadow HTTP handler. It sits before reverse_proxy in front of a SCIM
// 2.0 server, rewrites attribute paths by the connection's mapping rules, and forwards the
// effective request (live mode) or records it and answers with a retryable rejection
// (preview mode).
type Handler struct {
	// Connection names the IdP tenant this traffic belongs to. Placeholders are replaced
	// per request (e.g. {http.request.header.X-Tenant}). Default "default".
	Connection string `json:"connection,omitempty"`
	// Mode is the connection's configured mode: "live" (default) or "preview". An admin
	// can override it at run time through the review API.
	Mode string `json:"mode,omitempty"`
	// MaxBody is the largest write body in bytes; larger writes get 413. Default 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// MaxDepth is the deepest JSON nesting of a body; deeper gets 400. Default 64, -1 none.
	MaxDepth int `json:"max_depth,omitempty"`
	// MaxOperations is the most PATCH or Bulk operations of one request; more gets 400
	// (Bulk: 413). Default 1000, -1 none.
	MaxOperations int `json:"max_operations,omitempty"`
	// Reject is the answer to a write recorded in preview mode. Default 429, Retry-After 600s.
	Reject *Reject `json:"reject,omitempty"`
	// Map holds the mapping rules by resource type ("User", "Group").
	Map map[string]*ResourceMap `json:"map,omitempty"`
	// RedactHeaders are request headers never stored or shown, besides Authorization,
	// Cookie and Proxy-Authorization.
	RedactHeaders []string `json:"redact_headers,omitempty"`
	// Normalize lists the IdP dialect normalisations applied to writes before the rules:
	// op_case, booleans, member_removal, manager, dotted_keys, or all. Default none.
	Normalize []string `json:"normalize,omitempty"`
	// ReverseMap "off" leaves responses in the backend's shape; default "on" maps mapped
	// attributes back to the From paths this connection sends.
	ReverseMap string `json:"reverse_map,omitempty"`
	// Hold lists the hold policies of live mode (see hold.go).
	Hold []HoldConfig `json:"hold,omitempty"`
	// Guards hold live writes that look like a mass deprovisioning.
	Guards *GuardsConfig `json:"guards,omitempty"`
	// Auth "token" makes the IdP authenticate with its connection's bearer token (issued
	// by the review/admin API, stored as a hash); the token names the connection. Without
	// it the IdP's own Authorization header goes to the backend.
	Auth string `json:"auth,omitempty"`
	// BackendAuth is the Authorization header sent to the backend when Auth is "token",
	// e.g. "Bearer {env.BACKEND_TOKEN}" (placeholders are replaced per request).
	BackendAuth string `json:"backend_auth,omitempty"`

	engine *shadow.Engine
	logger *zap.Logger
	static string              // the sanitized connection name when it has no placeholder
	creds  *shadow.Credentials // set with Auth "token"
}

// Reject is the retryable rejection of a recorded write.
type Reject struct {
	// Status is the HTTP status, e.g. 429 or 503.
	Status int `json:"status,omitempty"`
	// RetryAfter is sent as the Retry-After header, in seconds. 0 omits it.
	RetryAfter caddy.Duration `json:"retry_after,omitempty"`
}

// ResourceMap holds the rules of one resource type.
type ResourceMap struct {
	// Rules say where attributes must land.
	Rules []MapRule `json:"rules,omitempty"`
	// Drop lists attribute paths the backend must never receive.
	Drop []string `json:"drop,omitempty"`
}

// MapRule says where one attribute must land, and where else to look for it.
type MapRule struct {
	// Target is the attribute path the backend expects (RFC 7644 attribute path syntax).
	Target string `json:"target"`
	// From are fallback paths, looked at in order when Target is absent.
	From []string `json:"from,omitempty"`
	// WarnIfMissing reports a warning when neither Target nor any From path is present.
	WarnIfMissing bool `json:"warn_if_missing,omitempty"`
	// Default is a JSON value set when the attribute is missing.
	Default json.RawMessage `json:"default,omitempty"`
	// OnlyOn "create" applies the rule on creates only: updates drop the attribute.
	OnlyOn string `json:"only_on,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.scim_shadow",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision compiles the rules and connects the handler to the scim_shadow app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if !strings.Contains(h.Connection, "{") {
		h.static = sanitizeConnection(h.Connection)
	}
	set, err := rules.Compile(h.ruleConfig())
	if err != nil {
		return fmt.Errorf("mapping rules: %w", err)
	}
	mode := shadow.ModeLive
	if h.Mode != "" {
		if mode, err = shadow.ParseMode(h.Mode); err != nil {
			return err
		}
	}
	appIface, err := ctx.App("scim_shadow")
	if err != nil {
		return fmt.Errorf("loading scim_shadow app: %w", err)
	}
	app := appIface.(*App)
	if h.Connection != "" && !strings.Contains(h.Connection, "{") {
		app.registerConnection(h.Connection, mode)
	} else if h.Connection == "" {
		app.registerConnection("default", mode)
	}
	rej := shadow.DefaultRejection
	if h.Reject != nil {
		if h.Reject.Status < 400 || h.Reject.Status > 599 {
			return fmt.Errorf("reject status must be a 4xx or 5xx status, got %d", h.Reject.Status)
		}
		rej = shadow.Rejection{Status: h.Reject.Status, RetryAfter: time.Duration(h.Reject.RetryAfter)}
	}
	norm, err := rules.ParseNormalization(h.Normalize)
	if err != nil {
		return fmt.Errorf("normalize: %w", err)
	}
	if h.ReverseMap != "" && h.ReverseMap != "on" && h.ReverseMap != "off" {
		return fmt.Errorf(`reverse_map must be "on" or "off", got %q`, h.ReverseMap)
	}
	if err := h.provisionAuth(app); err != nil {
		return err
	}
	holds, err := h.holds()
	if err != nil {
		return err
	}
	h.engine = &shadow.Engine{
		Holds:         holds,
		Stages:        app.handle.stages,
		Rules:         set,
		Connection:    h.connectionName,
		DefaultMode:   mode,
		Modes:         app.handle.modes,
		Store:         app.handle.store,
		Reject:        rej,
		MaxBody:       h.MaxBody,
		MaxDepth:      h.MaxDepth,
		MaxOperations: h.MaxOperations,
		RedactHeaders: h.RedactHeaders,
		Observer:      &decisionObserver{logger: h.logger, app: app},
		Normalize:     norm,
		NoReverseMap:  h.ReverseMap == "off",
	}
	return nil
}

// Validate checks what Provision did not.
func (h *Handler) Validate() error {
	if h.MaxBody < 0 {
		return fmt.Errorf("max_body must not be negative")
	}
	return nil
}

// ruleConfig turns the JSON config into rules.
func (h *Handler) ruleConfig() map[string]rules.ResourceRules {
	out := make(map[string]rules.ResourceRules, len(h.Map))
	for rt, m := range h.Map {
		if m == nil {
			continue
		}
		rr := rules.ResourceRules{Drop: m.Drop}
		for _, r := range m.Rules {
			rr.Rules = append(rr.Rules, rules.Rule{
				Target:        r.Target,
				From:          r.From,
				WarnIfMissing: r.WarnIfMissing,
				Default:       r.Default,
				OnlyOnCreate:  r.OnlyOn == "create",
			})
		}
		out[rt] = rr
	}
	return out
}

// connectionName resolves the connection of a request. Names from placeholders are
// attacker-influenced (headers): control characters are removed and the length bounded.
func (h *Handler) connectionName(r *http.Request) string {
	if c, ok := tokenConnection(r); ok {
		return c
	}
	if h.static != "" {
		return h.static
	}
	name := h.Connection
	if strings.Contains(name, "{") {
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			name = repl.ReplaceAll(name, "")
		}
	}
	return sanitizeConnection(name)
}

// sanitizeConnection keeps a connection name valid UTF-8, printable and at most 128 bytes.
func sanitizeConnection(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, strings.TrimSpace(strings.ToValidUTF8(name, "")))
	if len(name) > 128 {
		name = strings.ToValidUTF8(name[:128], "")
	}
	if name == "" {
		return "default"
	}
	return name
}

// ServeHTTP hands the request to the engine, with next as its way to the backend.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.creds != nil {
		if r = h.authenticate(w, r); r == nil {
			return nil
		}
	}
	var nextErr error
	tw := &startedWriter{ResponseWriter: w}
	h.engine.ServeHTTP(tw, r, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nextErr = next.ServeHTTP(w, r)
	}))
	var he caddyhttp.HandlerError
	if nextErr != nil && !tw.started && errors.As(nextErr, &he) && he.StatusCode >= 500 {
		// reverse_proxy failed before answering (backend down: 502, timeout: 504). Caddy
		// would answer with an empty body; an IdP expects a SCIM error, and retries 5xx.
		h.logger.Error("backend request failed", zap.String("method", r.Method),
			zap.String("uri", r.RequestURI), zap.Int("status", he.StatusCode), zap.Error(nextErr))
		shadow.WriteError(w, he.StatusCode, "", fmt.Sprintf(
			"the SCIM service behind this proxy could not be reached (%d %s); retry later",
			he.StatusCode, http.StatusText(he.StatusCode)))
		return nil
	}
	return nextErr
}

// startedWriter notes whether a response was started, so that a failed request through
// next is answered only when nothing was written yet.
type startedWriter struct {
	http.ResponseWriter
	started bool
}

func (w *startedWriter) WriteHeader(status int) {
	if status >= 200 { // 1xx informational responses are not the answer
		w.started = true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *startedWriter) Write(p []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (reverse_proxy's flushes) reach the real writer.
func (w *startedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
