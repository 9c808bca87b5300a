package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// unmarshalLimit parses one limit subdirective at the dispenser's position —
// `max_body <size>`, `max_depth <n>|none`, `max_operations <n>|none` — or a
// `limits { … }` block holding them.
func (h *Handler) unmarshalLimit(d *caddyfile.Dispenser) error {
	if d.Val() == "limits" {
		if d.NextArg() {
			return d.ArgErr()
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if d.Val() == "limits" {
				return d.Errf("limits blocks do not nest")
			}
			if err := h.unmarshalLimit(d); err != nil {
				return err
			}
		}
		return nil
	}
	name := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	switch name {
	case "max_body":
		n, err := humanize.ParseBytes(s)
		if err != nil || n == 0 || n > 1<<40 {
			return d.Errf("max_body: invalid size %q", s)
		}
		h.MaxBody = int64(n)
	case "max_depth", "max_operations":
		n := -1 // none
		if s != "none" {
			var err error
			if n, err = strconv.Atoi(s); err != nil || n < 1 || n > 1<<20 {
				return d.Errf("%s: want a positive number or none, got %q", name, s)
			}
		}
		if name == "max_depth" {
			h.MaxDepth = n
		} else {
			h.MaxOperations = n
		}
	default:
		return d.Errf("unrecognized limit %q (max_body, max_depth, max_operations)", name)
	}
	return nil
}
