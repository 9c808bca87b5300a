package shadow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/tidwall/gjson"
)

// DefaultMaxBody is the largest write body read when none is configured.
const DefaultMaxBody = 1 << 20

// DefaultStoreTimeout bounds one commit of a record.
const DefaultStoreTimeout = 5 * time.Second

// Rejection is the retryable answer to a write recorded in preview mode.
type Rejection struct {
	Status     int           // HTTP status; default 429
	RetryAfter time.Duration // Retry-After; default 600s, 0 with Status set omits the header
}

// DefaultRejection makes Okta and Entra retry: 429 with Retry-After.
var DefaultRejection = Rejection{Status: http.StatusTooManyRequests, RetryAfter: 600 * time.Second}

// Outcome is what the engine did with a request.
type Outcome string

// Outcomes reported to an Observer.
const (
	OutcomeForwarded Outcome = "forwarded" // handed to the next handler
	OutcomeRecorded  Outcome = "recorded"  // committed to the store and answered with the rejection
	OutcomeRejected  Outcome = "rejected"  // refused by the engine (too large, unreadable)
	OutcomeError     Outcome = "error"     // could not be recorded; answered with the rejection (fail closed)
	OutcomeHeld      Outcome = "held"      // live write held for approval (hold.go); answered with the rejection
)

// Decision describes one request's handling, for logs, metrics and events.
type Decision struct {
	Connection string
	Mode       Mode
	Target     Target
	Outcome    Outcome
	RecordID   int64 // set when recorded
	Attempts   int   // set when recorded
	Findings   []rules.Finding
	Err        error // why a write was rejected or could not be recorded

	HoldReason string // why a live write was held (hold.go)
	Guard      string // the guard that held it, on the write that opened the hold
	Staged     bool   // a preview write let through live by the connection's stage (stage.go)

	StoreDuration     time.Duration // time spent committing the record (preview writes)
	LiveStateDuration time.Duration // time spent reading live state through next
	ReverseMapped     int           // attributes of the response moved back to the IdP's paths (respond.go)
}

// Observer is told of every decision. Implementations must be safe for concurrent use.
type Observer interface {
	Observe(r *http.Request, d *Decision)
}

// Engine is the request path of the scim_shadow handler: classify, rewrite, then forward
// or record. It holds no Caddy types; the Caddy handler adapts its next handler to
// http.Handler. An Engine must not be changed after its first request.
type Engine struct {
	Rules         *rules.Set                 // nil: no rewriting
	Endpoints     map[string]string          // endpoint → resource type; nil: DefaultEndpoints
	Connection    func(*http.Request) string // nil or "": "default"
	DefaultMode   Mode                       // "": live
	Modes         *ModeTable                 // run-time overrides; nil: DefaultMode only
	Store         Store                      // where preview records go; nil fails closed
	Reject        Rejection                  // zero: DefaultRejection
	MaxBody       int64                      // 0: DefaultMaxBody
	MaxDepth      int                        // JSON nesting; 0: DefaultMaxDepth, <0: none (limits.go)
	MaxOperations int                        // PATCH/Bulk operations; 0: DefaultMaxOperations, <0: none
	RedactHeaders []string                   // extra headers never stored
	StoreTimeout  time.Duration              // 0: DefaultStoreTimeout
	Observer      Observer                   // nil: nobody is told
	Now           func() time.Time           // nil: time.Now
	// Warnings takes the warning bookkeeping of writes (see warnings.go); nil: the
	// Observer's, when it is a WarningSource, else none.
	Warnings *WarningRecorder
	// Normalize are the dialect normalisations applied to writes before the rules (respond.go).
	Normalize rules.Normalization
	// NoReverseMap leaves responses in the backend's shape; by default they are mapped back
	// to the From paths the connection sends (respond.go).
	NoReverseMap bool
	// Holds are the hold policies and guards of live mode (hold.go); nil: none.
	Holds *Holds
	// Stages let chosen preview writes go live (stage.go); nil: none.
	Stages *StageTable

	predictionCaches
	respondState
	holds       holdState
	stageGroups sync.Map // connection, group → stageGroup
}

// ServeHTTP handles one request, handing it (rewritten) to next or answering it.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	target := Classify(r.Method, r.URL.EscapedPath(), e.Endpoints)
	if target.Op == OpOther && !isWriteMethod(r.Method) {
		next.ServeHTTP(w, r)
		return
	}
	d := &Decision{Connection: e.connection(r), Target: target}
	d.Mode = e.mode(r.Context(), d.Connection)
	if target.Op == OpOther {
		if d.Mode == ModeLive {
			next.ServeHTTP(w, r) // not a SCIM request this module understands: untouched
			return
		}
		// In preview no write leaves, whatever its path (invariant 1): record it as is.
		d.Target.Op = OpUnknownWrite
	}
	defer e.observe(r, d)

	switch {
	case target.Op == OpRead:
		e.rewriteQuery(r, target.ResourceType)
	case target.Op == OpSearch:
		if !isJSON(r.Header.Get("Content-Type")) {
			break
		}
		body, ok := e.readBody(w, r, d)
		if !ok {
			return
		}
		if out, err := e.Rules.RewriteSearch(target.ResourceType, body); err == nil {
			body = out
		}
		setBody(r, body)
	case d.Mode == ModeLive && !isJSON(r.Header.Get("Content-Type")):
		// Not ours to parse: stream it through untouched.
	default:
		e.handleWrite(w, r, next, d)
		return
	}
	d.Outcome = OutcomeForwarded
	e.forward(w, r, next, d)
}

// handleWrite rewrites a write, then forwards it (live) or records it (preview).
func (e *Engine) handleWrite(w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision) {
	body, ok := e.readBody(w, r, d)
	if !ok {
		return
	}
	effective, findings := e.rewrite(d.Target, e.normalize(r, next, d, body))
	d.Findings = append(d.Findings, findings...)
	e.noteSources(d)
	if d.Target.Op == OpReplace && e.Rules.HasOnlyOnCreate(d.Target.ResourceType) {
		effective = e.keepOnReplace(r, next, d, effective)
	}
	d.Staged = e.stagedLive(r, next, d, effective)
	live := d.Mode == ModeLive || d.Staged
	if live && e.holdWrite(w, r, next, d, body, effective) {
		return
	}
	if live {
		setBody(r, effective)
		d.Outcome = OutcomeForwarded
		e.noteWarnings(r, d, body, effective, 0, "")
		if d.Staged {
			e.forwardStaged(w, r, next, d, body, effective)
			return
		}
		e.forward(w, r, next, d)
		return
	}
	e.record(w, r, next, d, body, effective)
}

// rewrite applies the rules to a write body. A body the rules cannot parse is returned
// unchanged with a warning (invariant 7).
func (e *Engine) rewrite(t Target, body []byte) ([]byte, []rules.Finding) {
	if len(body) == 0 || t.Op == OpDelete {
		return body, nil
	}
	var (
		out      []byte
		findings []rules.Finding
		err      error
	)
	switch t.Op {
	case OpCreate:
		out, findings, err = e.Rules.RewriteResource(t.ResourceType, rules.OpCreate, body)
	case OpReplace:
		out, findings, err = e.Rules.RewriteResource(t.ResourceType, rules.OpReplace, body)
	case OpPatch:
		out, findings, err = e.Rules.RewritePatch(t.ResourceType, body)
	case OpBulk:
		out, findings, err = e.rewriteBulk(body)
	default:
		return body, nil
	}
	if err != nil {
		return body, append(findings, rules.Finding{
			Severity: "warning",
			Code:     "unparseable",
			Message:  "body left unchanged: " + err.Error(),
		})
	}
	return out, findings
}

// keepOnReplace carries the backend's current value of only_on create attributes into a
// PUT, read through next like any live state. When the current resource cannot be read the
// PUT goes on without them, with a warning.
func (e *Engine) keepOnReplace(r *http.Request, next http.Handler, d *Decision, effective []byte) []byte {
	ctx, cancel := context.WithTimeout(r.Context(), DefaultStoreTimeout)
	defer cancel()
	began := time.Now()
	status, current, err := fetch(ctx, r, next, r.URL.Path, "")
	d.LiveStateDuration += time.Since(began)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("backend answered %d", status)
	}
	if err == nil {
		var out []byte
		if out, err = e.Rules.KeepOnReplace(d.Target.ResourceType, effective, current); err == nil {
			return out
		}
	}
	d.Findings = append(d.Findings, rules.Finding{
		Severity: rules.SeverityWarning,
		Code:     "live_state_unavailable",
		Message:  "only_on create attributes could not be carried over from the current resource: " + err.Error(),
	})
	return effective
}

// rewriteBulk rewrites the data of every operation of a /Bulk request (RFC 7644 §3.7).
func (e *Engine) rewriteBulk(body []byte) ([]byte, []rules.Finding, error) {
	ops := gjson.GetBytes(body, "Operations")
	if !gjson.ValidBytes(body) || !ops.IsArray() {
		return body, nil, errors.New("not a BulkRequest: no Operations array")
	}
	var all []rules.Finding
	out := body
	for i, op := range ops.Array() {
		data := op.Get("data")
		if !data.IsObject() {
			continue
		}
		t := Classify(strings.ToUpper(op.Get("method").String()), op.Get("path").String(), e.Endpoints)
		if t.Op == OpOther || t.Op == OpBulk {
			continue
		}
		rewritten, findings := e.rewrite(t, []byte(data.Raw))
		all = append(all, findings...)
		if !bytes.Equal(rewritten, []byte(data.Raw)) {
			var err error
			out, err = setRaw(out, "Operations."+strconv.Itoa(i)+".data", rewritten)
			if err != nil {
				return body, nil, fmt.Errorf("rewriting bulk operation %d: %w", i, err)
			}
		}
	}
	return out, all, nil
}

// record commits a preview write and answers with the retryable rejection. Whatever
// happens, the write is not forwarded (invariant 1) and the answer is the retryable
// rejection (invariant 3); "recorded" is said only after the commit (invariant 2).
func (e *Engine) record(w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision, original, effective []byte) {
	if e.Store == nil {
		d.Outcome, d.Err = OutcomeError, errors.New("no store configured")
		e.reject(w, 0, "the request was not applied and could not be recorded (no store); retry later")
		return
	}
	// Neither the prediction nor the commit depends on the client staying: an aborted
	// request that reached this point is still recorded, so the retry finds it.
	rec := e.newRecord(r, d, original, effective)
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(r.Context()), DefaultPredictTimeout)
	pr := e.predict(pctx, r, next, d, effective, rec.Key)
	pcancel()
	fillRecord(rec, d, &pr)
	timeout := e.StoreTimeout
	if timeout <= 0 {
		timeout = DefaultStoreTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	defer cancel()
	began := time.Now()
	saved, err := e.Store.SaveRecord(ctx, rec)
	d.StoreDuration = time.Since(began)
	if err != nil {
		d.Outcome, d.Err = OutcomeError, fmt.Errorf("recording %s %s: %w", r.Method, r.URL.Path, err)
		e.reject(w, 0, "the request was not applied and could not be recorded; retry later")
		return
	}
	d.Outcome, d.RecordID, d.Attempts = OutcomeRecorded, saved.ID, saved.Attempts
	if saved.Attempts == 1 {
		e.noteWarnings(r, d, original, effective, saved.ID, rec.Key)
	}
	e.reject(w, saved.ID, fmt.Sprintf(
		"preview mode: the request was recorded as %d (attempt %d) and not applied; it will be applied when connection %q goes live and the request is retried",
		saved.ID, saved.Attempts, d.Connection))
}

// newRecord builds the redacted record of a write, without its findings and prediction
// (fillRecord adds them).
func (e *Engine) newRecord(r *http.Request, d *Decision, original, effective []byte) *Record {
	now := e.now()
	rec := &Record{
		Connection:   d.Connection,
		CreatedAt:    now,
		LastSeenAt:   now,
		Attempts:     1,
		Method:       r.Method,
		Path:         r.URL.Path,
		ResourceType: d.Target.ResourceType,
		ResourceID:   d.Target.ID,
		Key:          resourceKey(d.Target, effective),
		Operation:    string(d.Target.Op),
		Status:       StatusPending,
		Original:     e.storedRequest(r, original),
		Effective:    e.storedRequest(r, effective),
	}
	rec.DedupeHash = dedupeHash(rec.Connection, rec.Method, rec.Effective.URL, rec.Effective.Body, rec.Effective.Text)
	return rec
}

// dedupeHash is the hex SHA-256 of a write's connection, method, URL, body and text, each
// followed by a NUL byte: retries of one write have the same. The body is hashed as it
// is, not copied into a string first (it is most of the bytes).
func dedupeHash(connection, method, url string, body []byte, text string) string {
	h := sha256.New()
	nul := []byte{0}
	for _, part := range [...]string{connection, method, url} {
		_, _ = io.WriteString(h, part)
		h.Write(nul)
	}
	h.Write(body)
	h.Write(nul)
	_, _ = io.WriteString(h, text)
	h.Write(nul)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// storedRequest is the redacted form of r with the given body.
func (e *Engine) storedRequest(r *http.Request, body []byte) StoredRequest {
	return storedRequestOf(r.Method, r.URL.RequestURI(), RedactHeader(r.Header, e.RedactHeaders), body)
}

// reject answers with the configured retryable rejection.
func (e *Engine) reject(w http.ResponseWriter, recordID int64, detail string) {
	rej := e.Reject
	if rej.Status == 0 {
		rej = DefaultRejection
	}
	if rej.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((rej.RetryAfter+time.Second-1)/time.Second)))
	}
	if recordID != 0 {
		w.Header().Set("X-Scim-Shadow-Record", strconv.FormatInt(recordID, 10))
	}
	WriteError(w, rej.Status, "", detail)
}

// readBody reads a request body up to MaxBody. On failure it answers the request and
// returns false.
func (e *Engine) readBody(w http.ResponseWriter, r *http.Request, d *Decision) ([]byte, bool) {
	limit := e.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		d.Outcome, d.Err = OutcomeRejected, fmt.Errorf("body of %d bytes exceeds max_body %d", r.ContentLength, limit)
		WriteError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
		return nil, false
	}
	body, err := readAll(io.LimitReader(r.Body, limit+1), r.ContentLength)
	if err != nil {
		d.Outcome, d.Err = OutcomeRejected, fmt.Errorf("reading body: %w", err)
		WriteError(w, http.StatusBadRequest, "", "the request body could not be read completely")
		return nil, false
	}
	if int64(len(body)) > limit {
		d.Outcome, d.Err = OutcomeRejected, fmt.Errorf("body exceeds max_body %d", limit)
		WriteError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
		return nil, false
	}
	return body, e.checkLimits(w, body, d)
}

// readAll is io.ReadAll with the buffer sized for a body of the announced length (-1 or 0:
// unknown), so a body of that length is read into one allocation.
func readAll(r io.Reader, length int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 && length < DefaultMaxBody*64 {
		buf.Grow(int(length) + bytes.MinRead) // ReadFrom keeps MinRead free before each read
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// rewriteQuery rewrites filter=, attributes= and excludedAttributes= of a read.
func (e *Engine) rewriteQuery(r *http.Request, resourceType string) {
	if e.Rules.Empty() || r.URL.RawQuery == "" {
		return
	}
	if seen, ok := e.queryMayChange(r.URL.RawQuery, resourceType); ok {
		e.rewriteWholeQuery(r, resourceType, seen)
	}
}

// filterRewrite is a filter value and what the rules made of it.
type filterRewrite struct{ in, out string }

// rewriteWholeQuery decodes the query, rewrites it and encodes it again when a value
// changed. seen is a filter the quick look rewrote already (its in is "" when none).
func (e *Engine) rewriteWholeQuery(r *http.Request, resourceType string, seen filterRewrite) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return // a query the backend must judge; leave it as sent
	}
	changed := false
	for name, vals := range q {
		for i, v := range vals {
			var out string
			switch {
			case strings.EqualFold(name, "filter") && seen.in != "" && v == seen.in:
				out = seen.out
			case strings.EqualFold(name, "filter"):
				out, err = e.Rules.RewriteFilter(resourceType, v)
				if err != nil {
					continue
				}
			case strings.EqualFold(name, "attributes"), strings.EqualFold(name, "excludedAttributes"):
				out = e.Rules.RewriteAttributeList(resourceType, v)
			default:
				continue
			}
			if out != v {
				vals[i], changed = out, true
			}
		}
	}
	if changed {
		r.URL.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
		r.RequestURI = r.URL.RequestURI()
	}
}

// queryMayChange is the look at a raw query that rewriteQuery takes before decoding it
// whole: it reports false only when the query parses and no filter=, attributes= or
// excludedAttributes= value would be rewritten, the case where rewriteQuery leaves the
// query as sent. Anything else (a change, a value that does not decode, a ';') is left to
// the full path, with the filter it rewrote when that was the change it found.
func (e *Engine) queryMayChange(raw, resourceType string) (filterRewrite, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.IndexByte(pair, ';') >= 0 {
			return filterRewrite{}, true // url.ParseQuery refuses it
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return filterRewrite{}, true
		}
		isFilter := strings.EqualFold(name, "filter")
		if !isFilter && !strings.EqualFold(name, "attributes") && !strings.EqualFold(name, "excludedAttributes") {
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return filterRewrite{}, true
		}
		if isFilter {
			if out, err := e.Rules.RewriteFilter(resourceType, val); err == nil && out != val {
				return filterRewrite{val, out}, true
			}
		} else if e.Rules.RewriteAttributeList(resourceType, val) != val {
			return filterRewrite{}, true
		}
	}
	return filterRewrite{}, false
}

func (e *Engine) connection(r *http.Request) string {
	if e.Connection != nil {
		if c := e.Connection(r); c != "" {
			return c
		}
	}
	return "default"
}

func (e *Engine) mode(ctx context.Context, connection string) Mode {
	def := e.DefaultMode
	if def == "" {
		def = ModeLive
	}
	if e.Modes == nil {
		return def
	}
	return e.Modes.Mode(ctx, connection, def)
}

func (e *Engine) observe(r *http.Request, d *Decision) {
	if e.Observer != nil && d.Outcome != "" {
		e.Observer.Observe(r, d)
	}
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// resourceKey is the human key of the resource a write addresses: userName for users,
// displayName for groups, else externalId (each the first top-level string member whose
// name matches case-insensitively). The body is read in one pass.
func resourceKey(t Target, body []byte) string {
	if len(body) == 0 || !gjson.ValidBytes(body) || (t.Op != OpCreate && t.Op != OpReplace) {
		return ""
	}
	names := [...]string{"userName", "displayName", "externalId"}
	var vals [len(names)]string
	var seen [len(names)]bool
	// The walk reads body in place; the key it returns is cloned.
	gjson.Parse(stringView(body)).ForEach(func(k, v gjson.Result) bool {
		if v.Type != gjson.String {
			return true
		}
		for i, name := range names {
			if !seen[i] && strings.EqualFold(k.String(), name) && (i != 1 || t.ResourceType != "User") {
				seen[i], vals[i] = true, v.String()
			}
		}
		return !seen[0] || vals[0] == "" // a userName ends the search
	})
	for _, v := range vals {
		if v != "" {
			return strings.Clone(v)
		}
	}
	return ""
}

// isWriteMethod reports whether an HTTP method may change the backend.
func isWriteMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// isJSON reports whether a Content-Type is JSON (application/scim+json, application/json,
// any +json) or absent.
func isJSON(contentType string) bool {
	if contentType == "" || contentType == ContentType || contentType == "application/json" {
		return true // the usual spellings, without parsing
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// setBody replaces a request's body with b.
func setBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
