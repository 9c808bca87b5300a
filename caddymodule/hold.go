package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// HoldConfig is one hold policy of live mode: writes of these operations wait in the
// review queue until an operator approves or ignores them.
type HoldConfig struct {
	// Resource is the resource type ("User", "Group"); empty: every type.
	Resource string `json:"resource,omitempty"`
	// Operations are create, update, delete, deactivate and group_member_remove.
	Operations []string `json:"operations"`
}

// GuardsConfig holds live writes that look like a mass deprovisioning.
type GuardsConfig struct {
	// Deprovision limits user deactivations and deletes per connection and window.
	Deprovision *GuardLimit `json:"deprovision,omitempty"`
	// MemberRemoval limits the members one request removes from a group (no window).
	MemberRemoval *GuardLimit `json:"member_removal,omitempty"`
}

// GuardLimit trips when more than Max, or more than Percent % of the total, would go.
type GuardLimit struct {
	Max     int     `json:"max,omitempty"`
	Percent float64 `json:"percent,omitempty"`
	// Window is the deprovision guard's window; default 1h.
	Window caddy.Duration `json:"window,omitempty"`
}

// holds turns the hold and guard config into the engine's; nil when there is none.
func (h *Handler) holds() (*shadow.Holds, error) {
	if len(h.Hold) == 0 && h.Guards == nil {
		return nil, nil
	}
	out := &shadow.Holds{}
	for i, hc := range h.Hold {
		if len(hc.Operations) == 0 {
			return nil, fmt.Errorf("hold %d: no operations", i)
		}
		rule := shadow.HoldRule{ResourceType: hc.Resource}
		for _, s := range hc.Operations {
			op, err := shadow.ParseHoldOp(s)
			if err != nil {
				return nil, fmt.Errorf("hold %d: %w", i, err)
			}
			rule.Ops = append(rule.Ops, op)
		}
		out.Rules = append(out.Rules, rule)
	}
	if g := h.Guards; g != nil {
		if l := g.Deprovision; l != nil {
			if err := l.check("deprovision"); err != nil {
				return nil, err
			}
			out.Guards.Deprovision = &shadow.DeprovisionGuard{Max: l.Max, Percent: l.Percent, Window: time.Duration(l.Window)}
		}
		if l := g.MemberRemoval; l != nil {
			if err := l.check("member_removal"); err != nil {
				return nil, err
			}
			if l.Window != 0 {
				return nil, fmt.Errorf("guard member_removal: has no window (it limits one request)")
			}
			out.Guards.MemberRemoval = &shadow.MemberRemovalGuard{Max: l.Max, Percent: l.Percent}
		}
	}
	return out, nil
}

// check validates a guard's limits.
func (l *GuardLimit) check(name string) error {
	switch {
	case l.Max < 0 || l.Percent < 0 || l.Percent > 100 || l.Window < 0:
		return fmt.Errorf("guard %s: max, percent (0-100) and window must not be negative", name)
	case l.Max == 0 && l.Percent == 0:
		return fmt.Errorf("guard %s: set max or percent", name)
	}
	return nil
}

// unmarshalHold parses `hold [<resource type>] <operation>...`.
func (h *Handler) unmarshalHold(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	hc := HoldConfig{}
	if _, err := shadow.ParseHoldOp(args[0]); err != nil {
		hc.Resource, args = args[0], args[1:]
	}
	if len(args) == 0 {
		return d.Errf("hold %s: name the operations to hold (create, update, delete, deactivate, group_member_remove)", hc.Resource)
	}
	for _, a := range args {
		if _, err := shadow.ParseHoldOp(a); err != nil {
			return d.Errf("hold: %v", err)
		}
	}
	hc.Operations = args
	h.Hold = append(h.Hold, hc)
	return nil
}

// unmarshalGuard parses `guard deprovision|member_removal [<max>] [<percent>%] [within <duration>]`.
func (h *Handler) unmarshalGuard(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.ArgErr()
	}
	l := &GuardLimit{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "within" || a == "window":
			if i+1 == len(args) {
				return d.Errf("guard %s: %s needs a duration", args[0], a)
			}
			i++
			dur, err := caddy.ParseDuration(args[i])
			if err != nil || dur <= 0 {
				return d.Errf("guard %s: invalid window %q", args[0], args[i])
			}
			l.Window = caddy.Duration(dur)
		case strings.HasSuffix(a, "%"):
			p, err := strconv.ParseFloat(strings.TrimSuffix(a, "%"), 64)
			if err != nil || p <= 0 || p > 100 {
				return d.Errf("guard %s: invalid percentage %q", args[0], a)
			}
			l.Percent = p
		default:
			n, err := strconv.Atoi(a)
			if err != nil || n <= 0 {
				return d.Errf("guard %s: %q is not a count, a percentage (20%%) or `within <duration>`", args[0], a)
			}
			l.Max = n
		}
	}
	if h.Guards == nil {
		h.Guards = &GuardsConfig{}
	}
	switch args[0] {
	case shadow.GuardDeprovision:
		h.Guards.Deprovision = l
	case shadow.GuardMemberRemoval:
		if l.Window != 0 {
			return d.Errf("guard member_removal limits one request: it takes no window")
		}
		h.Guards.MemberRemoval = l
	default:
		return d.Errf(`guard must be "deprovision" or "member_removal", got %q`, args[0])
	}
	return nil
}

// Events of the hold queue. Data: connection, resource, record_id, operation, attempts,
// reason (held, guard_tripped, plus guard); connection, record_ids (approved, ignored).
const (
	// EventHeld: a live write was held for approval (also each retry of it).
	EventHeld = "scim_shadow.record_held"
	// EventGuardTripped: a guard held a write (once per held write, not per retry).
	EventGuardTripped = "scim_shadow.guard_tripped"
)

// observeHold counts and emits a held decision.
func (o *decisionObserver) observeHold(d *shadow.Decision) {
	if d.Outcome != shadow.OutcomeHeld {
		return
	}
	data := map[string]any{
		"connection": d.Connection,
		"resource":   resourceLabel(d.Target),
		"record_id":  d.RecordID,
		"operation":  string(d.Target.Op),
		"attempts":   d.Attempts,
		"reason":     d.HoldReason,
	}
	if d.Guard != "" && d.Attempts == 1 {
		guardTripsTotal.WithLabelValues(d.Connection, d.Guard).Inc()
		if o.app != nil {
			trip := map[string]any{"guard": d.Guard}
			for k, v := range data {
				trip[k] = v
			}
			o.app.emit(EventGuardTripped, trip)
		}
	}
	if o.app != nil {
		o.app.emit(EventHeld, data)
		o.app.kickPending()
	}
}

// onDecide emits approved and ignored events and refreshes the held gauge.
func (a *App) onDecide(connection string, ids []int64, to shadow.RecordStatus) {
	name := EventApproved
	if to == shadow.StatusIgnored {
		name = EventIgnored
	}
	a.logger.Info("records "+string(to), zap.String("connection", connection), zap.Int64s("record_ids", ids))
	a.emit(name, map[string]any{"connection": connection, "record_ids": ids})
	a.kickPending()
}
