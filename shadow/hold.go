package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
)

// HoldOp is an operation a hold policy holds in live mode.
type HoldOp string

// Operations a hold policy can hold.
const (
	HoldCreate       HoldOp = "create"              // POST of a resource
	HoldUpdate       HoldOp = "update"              // PUT or PATCH of a resource
	HoldDelete       HoldOp = "delete"              // DELETE of a resource
	HoldDeactivate   HoldOp = "deactivate"          // a write that sets active to false
	HoldMemberRemove HoldOp = "group_member_remove" // a write that removes group members
)

// ParseHoldOp checks the name of a hold operation.
func ParseHoldOp(s string) (HoldOp, error) {
	switch op := HoldOp(s); op {
	case HoldCreate, HoldUpdate, HoldDelete, HoldDeactivate, HoldMemberRemove:
		return op, nil
	}
	return "", fmt.Errorf("unknown hold operation %q (want create, update, delete, deactivate or group_member_remove)", s)
}

// HoldRule holds the given operations on one resource type ("" for every type).
type HoldRule struct {
	ResourceType string
	Ops          []HoldOp
}

// Holds are the hold policies and guards of a connection in live mode. A write they
// select is recorded with its diff (status held) and answered with the retryable
// rejection; it waits for an operator. Approve lets the IdP's next identical retry
// through (the record becomes forwarded, or failed with the backend's error); ignore
// answers later retries with a final 403.
type Holds struct {
	Rules  []HoldRule
	Guards Guards
}

// holds reports whether the policy holds op on resourceType.
func (h *Holds) holds(resourceType string, op HoldOp) bool {
	for _, r := range h.Rules {
		if r.ResourceType != "" && !strings.EqualFold(r.ResourceType, resourceType) {
			continue
		}
		for _, o := range r.Ops {
			if o == op {
				return true
			}
		}
	}
	return false
}

// candidate reports, without I/O, whether a write could be held: only candidates cost a
// store lookup and a live-state read.
func (h *Holds) candidate(t Target, effective []byte) bool {
	if h == nil || t.ResourceType == "" {
		return false
	}
	kind := subjectKind(t.ResourceType)
	switch t.Op {
	case OpCreate:
		return h.holds(t.ResourceType, HoldCreate)
	case OpDelete:
		return h.holds(t.ResourceType, HoldDelete) || (kind == "user" && h.Guards.Deprovision != nil)
	case OpReplace, OpPatch:
		if h.holds(t.ResourceType, HoldUpdate) {
			return true
		}
		if kind == "user" && (h.holds(t.ResourceType, HoldDeactivate) || h.Guards.Deprovision != nil) {
			return bytes.Contains(bytes.ToLower(effective), []byte("active"))
		}
		if kind == "group" {
			return h.holds(t.ResourceType, HoldMemberRemove) || h.Guards.MemberRemoval != nil
		}
	}
	return false
}

// policyReason is why the hold policy holds a write with prediction pr, or "".
func (h *Holds) policyReason(t Target, pr *prediction) string {
	switch {
	case t.Op == OpCreate && h.holds(t.ResourceType, HoldCreate):
		return "hold create: creates of " + t.ResourceType + " wait for approval"
	case t.Op == OpDelete && h.holds(t.ResourceType, HoldDelete):
		return "hold delete: deletes of " + t.ResourceType + " wait for approval"
	case (t.Op == OpReplace || t.Op == OpPatch) && h.holds(t.ResourceType, HoldUpdate):
		return "hold update: updates of " + t.ResourceType + " wait for approval"
	case t.Op != OpDelete && pr.deactivates() && h.holds(t.ResourceType, HoldDeactivate):
		return "hold deactivate: writes that set active to false wait for approval"
	case pr.removedMembers() > 0 && h.holds(t.ResourceType, HoldMemberRemove):
		return fmt.Sprintf("hold group_member_remove: the write removes %d member(s) and waits for approval", pr.removedMembers())
	}
	return ""
}

// deactivates reports whether the prediction sets active to false.
func (pr *prediction) deactivates() bool {
	for _, c := range pr.changes {
		if strings.EqualFold(c.Path, "active") && string(c.New) == "false" {
			return true
		}
	}
	return false
}

// removedMembers counts the members the prediction removes.
func (pr *prediction) removedMembers() int {
	n := 0
	for _, s := range pr.subjects {
		if s.Change == "removed" {
			n++
		}
	}
	return n
}

// holdState is the engine's in-memory share of holds and guards.
type holdState struct {
	guardMu sync.Map // connection → *sync.Mutex: serialises deprovision guard decisions
	users   sync.Map // connection → userCount: the backend's user count, cached
}

// lock serialises the deprovision guard of one connection on this instance.
func (s *holdState) lock(connection string) func() {
	v, _ := s.guardMu.LoadOrStore(connection, new(sync.Mutex))
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// holdWrite handles a live write under hold policies and guards. It reports whether it
// answered the request; false means: forward it as usual.
func (e *Engine) holdWrite(w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision, original, effective []byte) bool {
	if !e.Holds.candidate(d.Target, effective) {
		return false
	}
	if e.Store == nil {
		d.Outcome, d.Err = OutcomeError, errors.New("no store configured for holds")
		e.reject(w, 0, "the request was not applied: it must be held for approval, and no store is configured; retry later")
		return true
	}
	rec := e.newRecord(r, d, original, effective)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.storeTimeout())
	defer cancel()
	prev, err := e.Store.RetryHold(ctx, d.Connection, rec.DedupeHash, rec.LastSeenAt)
	switch {
	case err == nil:
		e.answerRetry(w, r, next, d, prev, effective)
		return true
	case !errors.Is(err, ErrNotFound):
		// Decide as for a new write: if it must be held, saving fails too and the
		// answer is the retryable rejection (fail closed).
		d.Err = fmt.Errorf("looking up holds: %w", err)
	}

	pctx, pcancel := context.WithTimeout(context.WithoutCancel(r.Context()), DefaultPredictTimeout)
	pr := e.predict(pctx, r, next, d, effective, rec.Key)
	pcancel()
	reason := e.Holds.policyReason(d.Target, &pr)
	if reason == "" {
		reason, d.Guard = e.memberGuard(r, d, &pr)
	}
	fillRecord(rec, d, &pr)
	if reason == "" && d.Target.ResourceType != "" && subjectKind(d.Target.ResourceType) == "user" && pr.deprovision {
		return e.deprovisionGuard(ctx, w, r, next, d, rec, effective)
	}
	if reason == "" {
		return false
	}
	e.hold(ctx, w, d, rec, reason)
	return true
}

// fillRecord puts the decision's findings with the prediction's, and the prediction's
// states, diff and subjects into rec (made by newRecord).
func fillRecord(rec *Record, d *Decision, pr *prediction) {
	d.Findings = append(d.Findings, pr.findings...)
	if len(d.Findings) > 0 {
		rec.Findings = mustJSON(d.Findings)
	}
	rec.Live = RedactBody(pr.live)
	// The projection (render), the changes and the findings are encoded by this package
	// from values: valid JSON (FuzzAppendJSONTree, FuzzEncodeChanges), which SaveRecord
	// need not check.
	rec.Projected, _ = redactValidBody(pr.projected)
	rec.Changes, rec.Subjects, rec.Deprovision = encodeChanges(pr.changes), pr.subjects, pr.deprovision
	rec.docsValid = true
	if rec.Key == "" && len(pr.subjects) > 0 {
		rec.Key = pr.subjects[0].Key // the target's key as the backend has it
	}
	rec.Errors = 0
	for _, f := range d.Findings {
		if f.Severity == rules.SeverityError {
			rec.Errors++
		}
	}
}

// hold commits rec as a held write and answers with the retryable rejection.
func (e *Engine) hold(ctx context.Context, w http.ResponseWriter, d *Decision, rec *Record, reason string) {
	rec.Status, rec.HoldReason = StatusHeld, reason
	d.HoldReason = reason
	began := time.Now()
	saved, err := e.saveOpen(ctx, rec)
	d.StoreDuration += time.Since(began)
	if err != nil {
		d.Outcome, d.Err = OutcomeError, fmt.Errorf("holding %s %s: %w", rec.Method, rec.Path, err)
		e.reject(w, 0, "the request was not applied: it must be held for approval and could not be recorded; retry later")
		return
	}
	if saved.Status != StatusHeld {
		// A concurrent identical request got there first: answer as its retry.
		d.Guard = ""
	}
	d.Outcome, d.RecordID, d.Attempts = OutcomeHeld, saved.ID, saved.Attempts
	e.reject(w, saved.ID, fmt.Sprintf("held for approval on connection %q (record %d, attempt %d): %s; it is applied when an operator approves it and the request is retried",
		d.Connection, saved.ID, saved.Attempts, saved.HoldReason))
}

// saveOpen saves a held or forwarding record, or, when an identical open hold exists
// (a concurrent identical request), counts an attempt on it and returns it.
func (e *Engine) saveOpen(ctx context.Context, rec *Record) (Record, error) {
	var lastErr error
	for range 2 {
		prev, err := e.Store.RetryHold(ctx, rec.Connection, rec.DedupeHash, rec.LastSeenAt)
		if err == nil {
			return prev, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Record{}, err
		}
		saved, err := e.Store.SaveRecord(ctx, rec)
		if err == nil {
			return saved, nil
		}
		lastErr = err // e.g. the open-hold unique index: look again
	}
	return Record{}, lastErr
}

// answerRetry answers an identical retry of a held, approved, ignored or failed write.
func (e *Engine) answerRetry(w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision, prev Record, effective []byte) {
	d.RecordID, d.Attempts, d.HoldReason = prev.ID, prev.Attempts, prev.HoldReason
	switch prev.Status {
	case StatusIgnored:
		d.Outcome, d.Err = OutcomeRejected, fmt.Errorf("record %d was ignored by an operator", prev.ID)
		w.Header().Set("X-Scim-Shadow-Record", fmt.Sprint(prev.ID))
		WriteError(w, http.StatusForbidden, "", fmt.Sprintf(
			"an operator ignored this request (record %d of connection %q): it will not be applied; do not retry it", prev.ID, d.Connection))
		return
	case StatusApproved, StatusForwarding:
		// A forwarding record is claimed again only when its claim is stale.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.storeTimeout())
		claimed, err := e.Store.ClaimApproved(ctx, d.Connection, prev.ID, e.now())
		cancel()
		if err == nil && claimed {
			e.forwardHeld(w, r, next, d, prev.ID, effective)
			return
		}
		if err != nil {
			d.Err = fmt.Errorf("claiming approved record %d: %w", prev.ID, err)
		}
	}
	d.Outcome = OutcomeHeld
	detail := fmt.Sprintf("held for approval on connection %q (record %d, attempt %d): %s", d.Connection, prev.ID, prev.Attempts, prev.HoldReason)
	switch prev.Status {
	case StatusFailed:
		detail = fmt.Sprintf("record %d of connection %q was approved but the backend refused it (%d: %s); it waits for approval again",
			prev.ID, d.Connection, prev.BackendStatus, prev.BackendError)
	case StatusForwarding, StatusApproved:
		detail = fmt.Sprintf("record %d of connection %q is being forwarded by another request; retry later", prev.ID, d.Connection)
	}
	e.reject(w, prev.ID, detail)
}

// ForwardClaimTimeout is how long a claim to forward an approved record holds: an
// identical retry that finds the record still forwarding after that claims and forwards
// it again (its forwarder crashed or hung; forwarding is at least once).
const ForwardClaimTimeout = 5 * time.Minute

// forwardHeld forwards the effective request of a claimed (forwarding) record and keeps
// the backend's answer on it: forwarded, or failed with the backend's error.
func (e *Engine) forwardHeld(w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision, id int64, effective []byte) {
	setBody(r, effective)
	d.RecordID = id
	d.Outcome = OutcomeForwarded
	to, status, detail := forwardCapturing(w, r, next)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.storeTimeout())
	defer cancel()
	if err := e.Store.FinishHold(ctx, d.Connection, id, to, status, detail); err != nil {
		d.Err = fmt.Errorf("keeping the outcome of record %d: %w", id, err)
	}
}

// forwardCapturing hands r to next, passing the answer to w, and returns what became of
// it: StatusForwarded, or StatusFailed with the backend's error detail; and the status.
func forwardCapturing(w http.ResponseWriter, r *http.Request, next http.Handler) (RecordStatus, int, string) {
	cw := &captureWriter{ResponseWriter: w}
	next.ServeHTTP(cw, r)
	status := cw.status
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 300 {
		return StatusFailed, status, backendErrorDetail(cw.body.Bytes(), status)
	}
	return StatusForwarded, status, ""
}

// backendErrorDetail is a short account of a backend's error answer: the SCIM detail,
// else the start of the body.
func backendErrorDetail(body []byte, status int) string {
	if d := gjson.GetBytes(body, "detail").String(); d != "" {
		return truncate(d, 500)
	}
	if text := strings.TrimSpace(string(body)); text != "" {
		return truncate(RedactText(text), 500)
	}
	return http.StatusText(status)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// captureWriter passes a response through and keeps its status and the start of its body.
type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

// maxCapture bounds the body a captureWriter keeps.
const maxCapture = 64 << 10

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if room := maxCapture - c.body.Len(); room > 0 {
		c.body.Write(p[:min(room, len(p))])
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush).
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (e *Engine) storeTimeout() time.Duration {
	if e.StoreTimeout > 0 {
		return e.StoreTimeout
	}
	return DefaultStoreTimeout
}
