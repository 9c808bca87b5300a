package caddymodule

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("scim_shadow", parseHandler)
	httpcaddyfile.RegisterDirectiveOrder("scim_shadow", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterHandlerDirective("scim_shadow_review", parseReviewHandler)
	httpcaddyfile.RegisterDirectiveOrder("scim_shadow_review", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterGlobalOption("scim_shadow", parseApp)
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

func parseReviewHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(ReviewHandler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	scim_shadow {
//		connection <name or placeholder>      # default "default"
//		mode live|preview                     # default live
//		max_body <size>                       # default 1MiB
//		max_depth <n>|none                    # JSON nesting; default 64
//		max_operations <n>|none               # PATCH/Bulk operations; default 1000
//		limits { max_body …; max_depth …; max_operations … }  # the same, grouped
//		reject <status> [<retry_after>]       # default 429 600s
//		redact_header <name>...
//		normalize <op_case|booleans|member_removal|manager|dotted_keys|all>...
//		reverse_map on|off                    # default on
//		hold [<resource type>] <create|update|delete|deactivate|group_member_remove>...
//		guard deprovision [<max>] [<percent>%] [within <duration>]
//		guard member_removal [<max>] [<percent>%]
//		auth token                            # IdPs present their connection's token
//		backend_auth <header value>           # e.g. "Bearer {env.BACKEND_TOKEN}"
//		map <resource type> {
//			<target path> {
//				from <path>                   # repeatable, tried in order
//				warn_if_missing
//				default <value>               # JSON value, or a string
//				only_on create
//			}
//			drop <path>...
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "connection":
			if !d.AllArgs(&h.Connection) {
				return d.ArgErr()
			}
		case "mode":
			if !d.AllArgs(&h.Mode) {
				return d.ArgErr()
			}
			if h.Mode != "live" && h.Mode != "preview" {
				return d.Errf(`mode must be "live" or "preview", got %q`, h.Mode)
			}
		case "max_body", "max_depth", "max_operations", "limits":
			if err := h.unmarshalLimit(d); err != nil { // limits.go
				return err
			}
		case "reject":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			status, err := strconv.Atoi(args[0])
			if err != nil || status < 400 || status > 599 {
				return d.Errf("reject: status must be a 4xx or 5xx code, got %q", args[0])
			}
			h.Reject = &Reject{Status: status}
			if len(args) == 2 {
				dur, err := parseSeconds(args[1])
				if err != nil {
					return d.Errf("reject: retry_after %q: %v", args[1], err)
				}
				h.Reject.RetryAfter = dur
			}
		case "redact_header":
			names := d.RemainingArgs()
			if len(names) == 0 {
				return d.ArgErr()
			}
			h.RedactHeaders = append(h.RedactHeaders, names...)
		case "normalize", "reverse_map":
			if err := h.unmarshalIdP(d); err != nil {
				return err
			}
		case "map":
			if err := h.unmarshalMap(d); err != nil {
				return err
			}
		case "hold":
			if err := h.unmarshalHold(d); err != nil {
				return err
			}
		case "guard":
			if err := h.unmarshalGuard(d); err != nil {
				return err
			}
		case "auth", "backend_auth":
			if err := h.unmarshalAuth(d); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized scim_shadow subdirective %q", d.Val())
		}
	}
	return nil
}

// unmarshalMap parses one `map <resource type> { … }` block.
func (h *Handler) unmarshalMap(d *caddyfile.Dispenser) error {
	var resourceType string
	if !d.Args(&resourceType) {
		return d.ArgErr()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Map == nil {
		h.Map = map[string]*ResourceMap{}
	}
	m := h.Map[resourceType]
	if m == nil {
		m = new(ResourceMap)
		h.Map[resourceType] = m
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() == "drop" {
			paths := d.RemainingArgs()
			if len(paths) == 0 {
				return d.ArgErr()
			}
			for _, p := range paths {
				if err := checkPathToken(d, p); err != nil {
					return err
				}
			}
			m.Drop = append(m.Drop, paths...)
			continue
		}
		rule := MapRule{Target: d.Val()}
		if err := checkPathToken(d, rule.Target); err != nil {
			return err
		}
		if d.NextArg() {
			return d.Errf("unexpected argument %q after attribute %q (rules take a block)", d.Val(), rule.Target)
		}
		for ruleNesting := d.Nesting(); d.NextBlock(ruleNesting); {
			switch d.Val() {
			case "from":
				paths := d.RemainingArgs()
				if len(paths) == 0 {
					return d.ArgErr()
				}
				for _, p := range paths {
					if err := checkPathToken(d, p); err != nil {
						return err
					}
				}
				rule.From = append(rule.From, paths...)
			case "warn_if_missing":
				if d.NextArg() {
					return d.ArgErr()
				}
				rule.WarnIfMissing = true
			case "default":
				var v string
				if !d.AllArgs(&v) {
					return d.ArgErr()
				}
				rule.Default = defaultValue(v)
			case "only_on":
				var when string
				if !d.AllArgs(&when) {
					return d.ArgErr()
				}
				if when != "create" {
					return d.Errf(`only_on: only "create" is supported, got %q`, when)
				}
				rule.OnlyOn = when
			default:
				return d.Errf("unrecognized option %q in rule for %q", d.Val(), rule.Target)
			}
		}
		m.Rules = append(m.Rules, rule)
	}
	return nil
}

// checkPathToken explains the one Caddyfile trap of SCIM paths: a value filter has spaces,
// so the path must be quoted in backticks to stay one token with its double quotes.
func checkPathToken(d *caddyfile.Dispenser, path string) error {
	if strings.Count(path, "[") != strings.Count(path, "]") {
		return d.Errf("attribute path %q is cut at a space: quote paths with value filters in backticks, e.g. `emails[type eq \"work\"].value`", path)
	}
	return nil
}

// defaultValue reads a Caddyfile default: a JSON number, boolean, null, object or array as
// such; anything else as a JSON string (write `"42"` in backticks for the string "42").
func defaultValue(v string) json.RawMessage {
	trimmed := strings.TrimSpace(v)
	if json.Valid([]byte(trimmed)) {
		return json.RawMessage(trimmed)
	}
	b, _ := json.Marshal(v)
	return b
}

// parseSeconds reads a duration such as 600s, 10m, or a bare number of seconds.
func parseSeconds(s string) (caddy.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, strconv.ErrRange
		}
		return caddy.Duration(int64(n) * 1e9), nil
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 {
		return 0, err
	}
	return caddy.Duration(dur), nil
}

// UnmarshalCaddyfile sets up the review handler. Syntax:
//
//	scim_shadow_review
func (h *ReviewHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("unrecognized scim_shadow_review subdirective %q", d.Val())
	}
	return nil
}

// parseApp sets up the scim_shadow app from the global option. Syntax:
//
//	scim_shadow {
//		store sqlite [<path>]
//		store postgres <dsn>
//		retention <duration>
//		mode_refresh <duration>
//		review_secret <secret>
//	}
func parseApp(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "store":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			switch args[0] {
			case "sqlite":
				if len(args) > 2 {
					return nil, d.ArgErr()
				}
				app.Store = &StoreConfig{Type: "sqlite"}
				if len(args) == 2 {
					app.Store.Path = args[1]
				}
			case "postgres":
				if len(args) != 2 {
					return nil, d.Errf("store postgres needs exactly one DSN")
				}
				app.Store = &StoreConfig{Type: "postgres", DSN: args[1]}
			default:
				return nil, d.Errf(`store must be "sqlite" or "postgres", got %q`, args[0])
			}
		case "retention", "mode_refresh":
			opt := d.Val()
			var s string
			if !d.AllArgs(&s) {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil || dur <= 0 {
				return nil, d.Errf("%s: invalid duration %q", opt, s)
			}
			if opt == "retention" {
				app.Retention = caddy.Duration(dur)
			} else {
				app.ModeRefresh = caddy.Duration(dur)
			}
		case "review_secret":
			if !d.AllArgs(&app.ReviewSecret) {
				return nil, d.ArgErr()
			}
		default:
			return nil, d.Errf("unrecognized scim_shadow global option %q", d.Val())
		}
	}
	return httpcaddyfile.App{Name: "scim_shadow", Value: caddyconfig.JSON(app, nil)}, nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*ReviewHandler)(nil)
)
