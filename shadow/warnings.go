package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/tidwall/gjson"
)

// Warnings are kept in the store in both modes: every warn_if_missing miss of a write is
// a warning keyed by (connection, resource type, resource key, attribute) — the key is the
// userName, displayName or externalId, as for records — with a count, first and last seen,
// and an example record holding the request (redacted). A later write of the same
// resource that carries the attribute resolves it. Uses of fallback paths are counted per
// (connection, resource type, attribute, source).
//
// The engine never does this bookkeeping on the request path: it hands each write to a
// WarningRecorder (a bounded queue and one worker) — in live mode before forwarding, in
// preview mode after the record was committed — and the worker works out the misses,
// presences and fallbacks and applies them with one Store.NoteWarnings call per resource
// that lacks or carries a warn_if_missing target (with its fallback uses). The fallback
// uses of a write that has nothing else to note are only counted: the worker sums them in
// memory and adds them in one transaction (FallbackNoter) at most every
// FallbackFlushInterval, on Flush and on Close, so such a write costs no store
// transaction of its own. A full queue drops the write's
// bookkeeping and counts it (Dropped).
//
// Presence (what resolves a warning) is read from the effective request
// (rules.Set.WarnPresent): for a create or replace, the target holds a value; for a PATCH,
// an add or replace sets the target (by path, by a path-less value, or by the value of an
// operation on a parent such as the extension URN). A PATCH carries no userName: it
// resolves by key in preview (the key of the live resource) and by resource id in live
// mode (the id a PUT or a preview made the warning remember). In live mode a warning's
// example is a record with status observed, saved only when the warning is new (or has
// lost its example), so live traffic does not fill the store. A /Bulk request is noted
// per operation (its whole request is the example). Preview retries (attempts > 1) are
// not noted again.

// DefaultWarningQueue is the number of writes a WarningRecorder holds before it drops.
const DefaultWarningQueue = 1024

// maxWarningQueueBytes bounds the request bodies a WarningRecorder holds.
const maxWarningQueueBytes = 64 << 20

// FallbackFlushInterval is how long a WarningRecorder sums fallback uses in memory before
// it adds them to the store (Flush and Close add them at once).
const FallbackFlushInterval = 200 * time.Millisecond

// fallbackKey identifies one fallback count.
type fallbackKey struct{ connection, resourceType, attribute, source string }

// NewWarning describes a warning that was opened: a resource's write lacked the attribute
// and no open warning existed for it.
type NewWarning struct {
	Connection   string
	ResourceType string
	Key          string
	Attribute    string
	RecordID     int64 // its example record; 0 when none was kept
}

// WarningSource is an Observer that also provides the WarningRecorder of an Engine whose
// Warnings field is nil (the Caddy module's observer does: the recorder belongs to the app).
type WarningSource interface {
	WarningRecorder() *WarningRecorder
}

// WarningRecorder applies the warning bookkeeping of writes to a Store off the request
// path: a bounded queue and one worker goroutine. Set the callbacks before Start; they run
// on the worker (OnDrop on the dropping request's goroutine) and must not block long.
type WarningRecorder struct {
	OnNew   func(NewWarning) // a warning was opened
	OnError func(error)      // a store call failed (the write's bookkeeping is lost)
	OnDrop  func(total int64)

	queue       chan *warningJob
	mu          sync.RWMutex // guards closed and started against sends on a closed queue
	closed      bool
	started     bool
	store       Store
	done        chan struct{}
	abandon     atomic.Bool
	dropped     atomic.Int64
	queuedBytes atomic.Int64

	// fallbacks are the fallback uses summed since the last flush (worker only).
	fallbacks     map[fallbackKey]*FallbackDelta
	fallbackOrder []fallbackKey
}

// NewWarningRecorder returns a recorder holding up to queueSize writes (0:
// DefaultWarningQueue). Writes queued before Start wait for it.
func NewWarningRecorder(queueSize int) *WarningRecorder {
	if queueSize <= 0 {
		queueSize = DefaultWarningQueue
	}
	return &WarningRecorder{queue: make(chan *warningJob, queueSize), done: make(chan struct{})}
}

// Start runs the worker over st. Later calls, and calls after Close, do nothing.
func (w *WarningRecorder) Start(st Store) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closed {
		return
	}
	w.started, w.store = true, st
	go w.run()
}

// Close stops taking writes and waits up to timeout for the worker to finish the queued
// ones; it reports whether it did. Past the timeout the worker drops what is left (counted
// in Dropped). Later calls only wait again.
func (w *WarningRecorder) Close(timeout time.Duration) bool {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	started := w.started
	w.mu.Unlock()
	if !started {
		for j := range w.queue {
			if j.barrier == nil {
				w.drop()
			} else {
				close(j.barrier)
			}
		}
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.done:
		return true
	case <-t.C:
		w.abandon.Store(true)
		return false
	}
}

// Dropped returns how many writes' bookkeeping was dropped: queue full, recorder closed,
// or left over when Close timed out.
func (w *WarningRecorder) Dropped() int64 { return w.dropped.Load() }

// Flush waits until the writes queued before it are done (for tests and shutdown).
func (w *WarningRecorder) Flush(ctx context.Context) error {
	j := &warningJob{barrier: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errors.New("warning recorder closed")
	}
	select {
	case w.queue <- j:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return context.Cause(ctx)
	}
	select {
	case <-j.barrier:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// enqueue queues a write's bookkeeping; it never blocks.
func (w *WarningRecorder) enqueue(j *warningJob) {
	size := int64(len(j.original) + len(j.effective))
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed || w.queuedBytes.Add(size) > maxWarningQueueBytes {
		if !w.closed {
			w.queuedBytes.Add(-size)
		}
		w.drop()
		return
	}
	select {
	case w.queue <- j:
	default:
		w.queuedBytes.Add(-size)
		w.drop()
	}
}

func (w *WarningRecorder) drop() {
	n := w.dropped.Add(1)
	if w.OnDrop != nil {
		w.OnDrop(n)
	}
}

func (w *WarningRecorder) run() {
	defer close(w.done)
	var (
		timer   *time.Timer
		flushAt <-chan time.Time // armed while fallback uses wait
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case j, ok := <-w.queue:
			if !ok {
				if !w.abandon.Load() {
					w.flushFallbacks()
				}
				return
			}
			if j.barrier != nil {
				w.flushFallbacks()
				flushAt = nil
				close(j.barrier)
				continue
			}
			w.queuedBytes.Add(-int64(len(j.original) + len(j.effective)))
			if w.abandon.Load() {
				w.drop()
				continue
			}
			w.process(j)
			if flushAt == nil && len(w.fallbacks) > 0 {
				if timer == nil {
					timer = time.NewTimer(FallbackFlushInterval)
				} else {
					timer.Reset(FallbackFlushInterval)
				}
				flushAt = timer.C
			}
		case <-flushAt:
			flushAt = nil
			w.flushFallbacks()
		}
	}
}

// addFallbacks sums the fallback uses of one note (each (attribute, source) once, as
// NoteWarnings counts them) and takes them out of it.
func (w *WarningRecorder) addFallbacks(note *WarningNote) {
	at := note.At
	if at.IsZero() {
		at = time.Now()
	}
	for i, f := range note.Fallbacks {
		attr, src := sqlText(f.Attribute), sqlText(f.Source)
		if attr == "" || slices.ContainsFunc(note.Fallbacks[:i], func(g FallbackUse) bool {
			return sqlText(g.Attribute) == attr && sqlText(g.Source) == src
		}) {
			continue
		}
		k := fallbackKey{note.Connection, note.ResourceType, attr, src}
		d := w.fallbacks[k]
		if d == nil {
			if w.fallbacks == nil {
				w.fallbacks = map[fallbackKey]*FallbackDelta{}
			}
			d = &FallbackDelta{Connection: k.connection, ResourceType: k.resourceType, Attribute: attr, Source: src,
				FirstSeen: at, LastSeen: at}
			w.fallbacks[k] = d
			w.fallbackOrder = append(w.fallbackOrder, k)
		}
		d.Count++
		if at.Before(d.FirstSeen) {
			d.FirstSeen = at
		}
		if at.After(d.LastSeen) {
			d.LastSeen = at
		}
	}
	note.Fallbacks = nil
}

// flushFallbacks adds the summed fallback uses to the store in one transaction. On failure they are
// lost (reported through OnError), as a failed NoteWarnings loses a write's bookkeeping.
func (w *WarningRecorder) flushFallbacks() {
	if len(w.fallbacks) == 0 {
		return
	}
	deltas := make([]FallbackDelta, 0, len(w.fallbackOrder))
	for _, k := range w.fallbackOrder {
		deltas = append(deltas, *w.fallbacks[k])
	}
	clear(w.fallbacks)
	w.fallbackOrder = w.fallbackOrder[:0]
	defer func() {
		if v := recover(); v != nil {
			w.fail(fmt.Errorf("fallback counts panicked: %v", v))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStoreTimeout)
	defer cancel()
	if err := w.store.NoteFallbacks(ctx, deltas); err != nil {
		w.fail(err)
	}
}

// process applies one write's bookkeeping; a panic is reported, never fatal.
func (w *WarningRecorder) process(j *warningJob) {
	defer func() {
		if v := recover(); v != nil {
			w.fail(fmt.Errorf("warning bookkeeping of %s %s panicked: %v", j.method, j.path, v))
		}
	}()
	var savedExample int64 // a bulk request's notes share one example
	for _, note := range j.notes() {
		if len(note.Missing) == 0 && len(note.Present) == 0 && note.Connection != "" {
			w.addFallbacks(&note) // only fallback uses: summed in memory
			continue
		}
		if note.Example != nil && savedExample != 0 {
			note.ExampleRecordID, note.Example = savedExample, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultStoreTimeout)
		res, err := w.store.NoteWarnings(ctx, note)
		cancel()
		if err != nil {
			w.fail(err)
			continue
		}
		if note.Example != nil && res.ExampleRecordID != 0 {
			savedExample = res.ExampleRecordID
		}
		if w.OnNew != nil {
			for _, attr := range res.Opened {
				w.OnNew(NewWarning{Connection: note.Connection, ResourceType: note.ResourceType, Key: note.Key,
					Attribute: attr, RecordID: res.ExampleRecordID})
			}
		}
	}
}

func (w *WarningRecorder) fail(err error) {
	if w.OnError != nil {
		w.OnError(err)
	}
}

// warningJob is the bookkeeping of one write, as the engine hands it over.
type warningJob struct {
	rules      *rules.Set
	endpoints  map[string]string
	connection string
	target     Target
	findings   []rules.Finding
	effective  []byte
	key        string // preview: the record's key
	recordID   int64  // preview: the recorded write, the example
	at         time.Time

	// Live mode: the request, for an example record.
	original []byte
	method   string
	uri      string
	path     string
	header   map[string][]string // redacted

	barrier chan struct{} // a Flush marker, nothing else
}

// notes are the job's WarningNotes: one per resource (a /Bulk request has several).
func (j *warningJob) notes() []WarningNote {
	var out []WarningNote
	if j.target.Op == OpBulk {
		// Rewriting each operation's data again gives its own findings (the engine merged
		// them) and its effective data.
		ops := gjson.GetBytes(j.original, "Operations")
		for _, op := range ops.Array() {
			data := op.Get("data")
			if !data.IsObject() {
				continue
			}
			t := Classify(strings.ToUpper(op.Get("method").String()), op.Get("path").String(), j.endpoints)
			eff, findings, ok := rewriteForWarnings(j.rules, t, []byte(data.Raw))
			if !ok {
				continue
			}
			if n, ok := j.note(t, eff, findings, ""); ok {
				out = append(out, n)
			}
		}
	} else if n, ok := j.note(j.target, j.effective, j.findings, j.key); ok {
		out = append(out, n)
	}
	if j.recordID == 0 && slices.ContainsFunc(out, func(n WarningNote) bool { return len(n.Missing) > 0 }) {
		example := j.example() // built only when a note can use it (a miss)
		for i := range out {
			if len(out[i].Missing) > 0 {
				out[i].Example = example
			}
		}
	}
	return out
}

// rewriteForWarnings rewrites the data of one bulk operation; ok is false for operations
// that carry no attributes.
func rewriteForWarnings(set *rules.Set, t Target, data []byte) ([]byte, []rules.Finding, bool) {
	var (
		out      []byte
		findings []rules.Finding
		err      error
	)
	switch t.Op {
	case OpCreate:
		out, findings, err = set.RewriteResource(t.ResourceType, rules.OpCreate, data)
	case OpReplace:
		out, findings, err = set.RewriteResource(t.ResourceType, rules.OpReplace, data)
	case OpPatch:
		out, findings, err = set.RewritePatch(t.ResourceType, data)
	default:
		return nil, nil, false
	}
	return out, findings, err == nil
}

// note is the WarningNote of one write of resource t; ok is false when it notes nothing.
func (j *warningJob) note(t Target, effective []byte, findings []rules.Finding, key string) (WarningNote, bool) {
	n := WarningNote{Connection: j.connection, ResourceType: t.ResourceType, ResourceID: t.ID,
		ExampleRecordID: j.recordID, At: j.at}
	for _, f := range findings {
		switch f.Code {
		case rules.CodeMissing:
			n.Missing = append(n.Missing, f.Attribute)
		case rules.CodeFallback:
			n.Fallbacks = append(n.Fallbacks, FallbackUse{Attribute: f.Attribute, Source: f.Source})
		}
	}
	var op rules.Operation
	switch t.Op {
	case OpCreate:
		op = rules.OpCreate
	case OpReplace:
		op = rules.OpReplace
	case OpPatch:
		op = rules.OpPatch
	default:
		return n, false
	}
	if t.ResourceType == "" {
		return n, false
	}
	for _, p := range j.rules.WarnPresent(t.ResourceType, op, effective) {
		if !containsString(n.Missing, p) {
			n.Present = append(n.Present, p)
		}
	}
	if key == "" && (len(n.Missing) > 0 || len(n.Present) > 0 || n.Connection == "") {
		key = resourceKey(t, effective) // a note of fallback uses alone is summed without it
	}
	n.Key = key
	return n, len(n.Missing) > 0 || len(n.Present) > 0 || len(n.Fallbacks) > 0
}

// example is the live request as a record (the store gives it status observed).
func (j *warningJob) example() *Record {
	rec := &Record{
		Connection:   j.connection,
		CreatedAt:    j.at,
		LastSeenAt:   j.at,
		Attempts:     1,
		Method:       j.method,
		Path:         j.path,
		ResourceType: j.target.ResourceType,
		ResourceID:   j.target.ID,
		Key:          resourceKey(j.target, j.effective),
		Operation:    string(j.target.Op),
		Status:       StatusObserved,
		Original:     storedRequestOf(j.method, j.uri, j.header, j.original),
		Effective:    storedRequestOf(j.method, j.uri, j.header, j.effective),
	}
	if len(j.findings) > 0 {
		rec.Findings = mustJSON(j.findings)
	}
	return rec
}

// storedRequestOf is the stored form of a request with an already redacted header
// (RedactHeader) and the given body, which it redacts. It drops Content-Length, which
// describes the body as received. header is shared, not copied.
func storedRequestOf(method, uri string, header map[string][]string, body []byte) StoredRequest {
	sr := StoredRequest{Method: method, URL: uri, Header: header}
	if _, ok := header["Content-Length"]; ok {
		delete(header, "Content-Length")
	}
	switch {
	case len(body) == 0:
	case gjson.ValidBytes(body):
		var walked bool
		if sr.Body, walked = redactValidBody(body); !walked {
			sr.Body = bytes.Clone(body) // nothing to redact: a copy the caller's buffer cannot change
		}
		sr.bodyValid = utf8.Valid(sr.Body) // gjson does not check UTF-8; the store needs it
	default:
		sr.Text = RedactText(strings.ToValidUTF8(string(body), "\uFFFD"))
	}
	return sr
}

// warningRecorder is the recorder of the engine's writes, or nil.
func (e *Engine) warningRecorder() *WarningRecorder {
	if e.Warnings != nil {
		return e.Warnings
	}
	if src, ok := e.Observer.(WarningSource); ok {
		return src.WarningRecorder()
	}
	return nil
}

// noteWarnings hands a write to the warning recorder: in live mode (recordID 0) with the
// request, for an example; in preview with the committed record's id and key. It only
// copies the header (redacted) and never blocks.
func (e *Engine) noteWarnings(r *http.Request, d *Decision, original, effective []byte, recordID int64, key string) {
	wr := e.warningRecorder()
	if wr == nil || e.Rules.Empty() {
		return
	}
	t := d.Target
	switch t.Op {
	case OpCreate, OpReplace, OpPatch:
		if !e.Rules.HasWarnTargets(t.ResourceType) && !hasWarningFindings(d.Findings) {
			return
		}
	case OpBulk:
	default:
		return
	}
	j := &warningJob{
		rules:      e.Rules,
		endpoints:  e.Endpoints,
		connection: d.Connection,
		target:     t,
		findings:   d.Findings[:len(d.Findings):len(d.Findings)],
		effective:  effective,
		key:        key,
		recordID:   recordID,
		at:         e.now(),
		method:     r.Method,
		path:       r.URL.Path,
	}
	// The request itself serves a live example, which only a miss opens (a bulk request's
	// misses are found on the worker), and a bulk request's notes; otherwise the header
	// copy and the body are not needed.
	example := recordID == 0 && (t.Op == OpBulk || hasFinding(d.Findings, rules.CodeMissing))
	if example || t.Op == OpBulk {
		j.original = original
	}
	if example {
		j.uri = r.URL.RequestURI()
		j.header = RedactHeader(r.Header, e.RedactHeaders)
	}
	wr.enqueue(j)
}

// hasWarningFindings reports whether findings hold a miss or a fallback.
func hasWarningFindings(findings []rules.Finding) bool {
	return hasFinding(findings, rules.CodeMissing) || hasFinding(findings, rules.CodeFallback)
}

// hasFinding reports whether findings hold one with the given code.
func hasFinding(findings []rules.Finding, code string) bool {
	for _, f := range findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
