package shadow

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tidwall/gjson"
)

// Guards hold live writes that look like a mass deprovisioning, even when no hold policy
// selects them. A guard with neither Max nor Percent set never trips.
type Guards struct {
	// Deprovision trips when, within Window, one connection's forwarded user deactivations
	// and deletes would exceed Max, or Percent of the users the backend has. The count is
	// read from the store (records of the deprovisions forwarded under the guard), so
	// instances sharing a PostgreSQL store share it; decisions are serialised per
	// connection on each instance, so concurrent instances may let a few more through.
	Deprovision *DeprovisionGuard
	// MemberRemoval trips when one request would remove more than Max members, or more
	// than Percent of a group's members.
	MemberRemoval *MemberRemovalGuard
}

// Guard names, as in the reason of a held record, metrics and events.
const (
	GuardDeprovision   = "deprovision"
	GuardMemberRemoval = "member_removal"
)

// DefaultGuardWindow is the window of a deprovision guard without one.
const DefaultGuardWindow = time.Hour

// DeprovisionGuard limits user deactivations and deletes per connection and window.
type DeprovisionGuard struct {
	Max     int           // more than Max in Window trips; 0: no absolute limit
	Percent float64       // more than Percent % of the backend's users trips; 0: none
	Window  time.Duration // 0: DefaultGuardWindow
}

// MemberRemovalGuard limits the members one request removes from a group.
type MemberRemovalGuard struct {
	Max     int     // more than Max members removed trips; 0: no absolute limit
	Percent float64 // more than Percent % of the group's members trips; 0: none
}

// exceeds reports whether n of total exceeds max or percent (each only when set).
func exceeds(n, total int64, max int, percent float64) bool {
	if max > 0 && n > int64(max) {
		return true
	}
	return percent > 0 && total > 0 && float64(n)*100 > percent*float64(total)
}

// memberGuard returns why the member-removal guard holds a group write, and the guard's
// name; "" when it does not.
func (e *Engine) memberGuard(r *http.Request, d *Decision, pr *prediction) (string, string) {
	g := e.Holds.Guards.MemberRemoval
	removed := int64(pr.removedMembers())
	if g == nil || removed == 0 {
		return "", ""
	}
	total := gjson.GetBytes(pr.live, "members.#").Int()
	if !exceeds(removed, total, g.Max, g.Percent) {
		return "", ""
	}
	return fmt.Sprintf("guard %s: the request removes %d of %d members (limit: %s)",
		GuardMemberRemoval, removed, total, limitText(g.Max, g.Percent)), GuardMemberRemoval
}

// limitText describes a guard's limits.
func limitText(max int, percent float64) string {
	switch {
	case max > 0 && percent > 0:
		return fmt.Sprintf("%d or %g%%", max, percent)
	case max > 0:
		return fmt.Sprint(max)
	default:
		return fmt.Sprintf("%g%%", percent)
	}
}

// deprovisionGuard decides a user deactivation or delete no hold policy selected: within
// the guard's limits it is recorded (status forwarding, so it counts) and forwarded, and
// the backend's answer kept; beyond them it is held. It reports whether it answered.
func (e *Engine) deprovisionGuard(ctx context.Context, w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision, rec *Record, effective []byte) bool {
	g := e.Holds.Guards.Deprovision
	if g == nil || (g.Max <= 0 && g.Percent <= 0) {
		return false // no limit: the caller forwards it as usual
	}
	window := g.Window
	if window <= 0 {
		window = DefaultGuardWindow
	}
	unlock := e.holds.lock(d.Connection)
	n, err := e.Store.CountDeprovisions(ctx, d.Connection, e.now().Add(-window))
	if err != nil {
		unlock()
		d.Err = fmt.Errorf("counting deprovisions: %w", err)
		e.hold(ctx, w, d, rec, "guard "+GuardDeprovision+": recent deprovisions could not be counted (store unavailable)")
		return true
	}
	total := int64(0)
	if g.Percent > 0 {
		total = e.userCount(r, next, d)
	}
	if total == 0 && g.Max <= 0 {
		// A percentage of an unknown user count: hold rather than guess (fail closed).
		unlock()
		d.Guard = GuardDeprovision
		e.hold(ctx, w, d, rec, "guard "+GuardDeprovision+": the backend's user count could not be read, so the percentage limit cannot be checked")
		return true
	}
	if exceeds(n+1, total, g.Max, g.Percent) {
		unlock()
		d.Guard = GuardDeprovision
		of := ""
		if total > 0 {
			of = fmt.Sprintf(" of %d users", total)
		}
		e.hold(ctx, w, d, rec, fmt.Sprintf("guard %s: this would be deprovision %d%s within %s on connection %q (limit: %s)",
			GuardDeprovision, n+1, of, window, d.Connection, limitText(g.Max, g.Percent)))
		return true
	}
	rec.Status = StatusForwarding
	saved, err := e.saveOpen(ctx, rec)
	unlock()
	switch {
	case err != nil:
		d.Outcome, d.Err = OutcomeError, fmt.Errorf("recording a guarded deprovision: %w", err)
		e.reject(w, 0, "the request was not applied: the deprovision guard could not record it; retry later")
	case saved.Status == StatusForwarding && saved.Attempts == 1:
		e.forwardHeld(w, r, next, d, saved.ID, effective)
	default:
		e.answerRetry(w, r, next, d, saved, effective)
	}
	return true
}

// userCountTTL is how long the backend's user count is reused.
const userCountTTL = time.Minute

type userCount struct {
	n  int64
	at time.Time
}

// userCount is the number of users the backend has (totalResults of a one-item list),
// cached per connection; 0 when unknown.
func (e *Engine) userCount(r *http.Request, next http.Handler, d *Decision) int64 {
	if v, ok := e.holds.users.Load(d.Connection); ok && time.Since(v.(userCount).at) < userCountTTL {
		return v.(userCount).n
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), DefaultPredictTimeout)
	defer cancel()
	began := time.Now()
	status, body, err := fetch(ctx, r, next, d.Target.Base+"/Users", "count=1")
	d.LiveStateDuration += time.Since(began)
	if err != nil || status != http.StatusOK {
		return 0
	}
	n := gjson.GetBytes(body, "totalResults").Int()
	e.holds.users.Store(d.Connection, userCount{n: n, at: time.Now()})
	return n
}
