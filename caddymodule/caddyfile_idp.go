package caddymodule

import (
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
)

// unmarshalIdP parses the IdP dialect subdirectives of scim_shadow:
//
//	normalize <op_case|booleans|member_removal|manager|dotted_keys|all>...
//	reverse_map on|off
func (h *Handler) unmarshalIdP(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "normalize":
		names := d.RemainingArgs()
		if len(names) == 0 {
			return d.ArgErr()
		}
		for _, n := range names {
			if n != "all" && !slices.Contains(rules.NormalizationKinds, n) {
				return d.Errf("normalize: unknown switch %q (want %s or all)", n, strings.Join(rules.NormalizationKinds, ", "))
			}
		}
		h.Normalize = append(h.Normalize, names...)
	case "reverse_map":
		var v string
		if !d.AllArgs(&v) {
			return d.ArgErr()
		}
		if v != "on" && v != "off" {
			return d.Errf(`reverse_map must be "on" or "off", got %q`, v)
		}
		h.ReverseMap = v
	}
	return nil
}
