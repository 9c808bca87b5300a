package shadow

import (
	"bytes"
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
)

// The IdP side of the request path: dialect normalisation of writes before the rules
// run, and reverse mapping of the backend's responses to the shape the IdP sent.

// maxReverseBody bounds a response buffered for reverse mapping; a larger one streams
// through unchanged.
const maxReverseBody = 8 << 20

// maxSourceConnections bounds the connections whose source paths are kept: names can come
// from request headers, so an unbounded map would let clients grow memory (and make one
// store read each). Connections beyond it get responses in the backend's shape.
const maxSourceConnections = 10000

// sourceSeedTimeout bounds the one store read that seeds a connection's source paths.
const sourceSeedTimeout = 2 * time.Second

// respondState is the engine's knowledge of which From path each connection sends each
// mapped attribute at, learnt from fallback_used findings (and, once per connection, from
// the fallback counts the store keeps).
type respondState struct {
	conns  sync.Map // connection → *connSources
	nconns atomic.Int64
}

// connSources holds a connection's source paths, seeded from the store once. Its maps
// are plain maps under a lock: looking a struct or string key up in a sync.Map boxes it,
// an allocation per rule and response.
type connSources struct {
	seed  sync.Once
	mu    sync.RWMutex
	src   map[sourceID]string // source path of each mapped attribute seen
	lower map[string]string   // resource type → its lower-case form (the rules' few names)
	any   atomic.Bool
	used  rules.SourceFunc // source, made once
}

// sourceID names one mapped attribute of a connection: the lower-case resource type and
// the rule's target.
type sourceID struct{ resourceType, target string }

// lowerName is strings.ToLower(name), kept for the names seen.
func (cs *connSources) lowerName(name string) string {
	cs.mu.RLock()
	l, ok := cs.lower[name]
	cs.mu.RUnlock()
	if ok {
		return l
	}
	l = strings.ToLower(name)
	cs.mu.Lock()
	if cs.lower == nil {
		cs.lower = map[string]string{}
	}
	if len(cs.lower) < maxSourceNames {
		cs.lower[name] = l
	}
	cs.mu.Unlock()
	return l
}

// maxSourceNames bounds the resource type spellings a connection keeps the lower-case
// form of (the rules and endpoints name a few).
const maxSourceNames = 64

// source is the connection's rules.SourceFunc: the source path a target was last seen
// at, or "".
func (cs *connSources) source(resourceType, target string) string {
	// One read lock for both lookups in the usual case (the type's spelling seen before):
	// it is taken per rule and response, from every core.
	cs.mu.RLock()
	if l, ok := cs.lower[resourceType]; ok {
		src := cs.src[sourceID{l, target}]
		cs.mu.RUnlock()
		return src
	}
	cs.mu.RUnlock()
	id := sourceID{cs.lowerName(resourceType), target}
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	return cs.src[id]
}

// store records a source; learnt says whether it replaces what the store's history said.
func (cs *connSources) store(resourceType, target, source string, learnt bool) {
	id := sourceID{cs.lowerName(resourceType), target}
	cs.mu.RLock()
	old, ok := cs.src[id]
	cs.mu.RUnlock()
	if ok && (old == source || !learnt) {
		return // the usual case: the write used the source it used before
	}
	cs.mu.Lock()
	if cs.src == nil {
		cs.src = map[sourceID]string{}
	}
	if _, ok := cs.src[id]; learnt || !ok {
		cs.src[id] = source
	}
	cs.mu.Unlock()
	cs.any.Store(true)
}

// connSources returns a connection's entry, or nil when maxSourceConnections are kept.
func (e *Engine) connSources(connection string) *connSources {
	if v, ok := e.conns.Load(connection); ok {
		return v.(*connSources)
	}
	if e.nconns.Load() >= maxSourceConnections {
		return nil
	}
	cs := &connSources{}
	cs.used = cs.source
	v, loaded := e.conns.LoadOrStore(connection, cs)
	if !loaded {
		e.nconns.Add(1)
	}
	return v.(*connSources)
}

// noteSources remembers the From paths the rules used for this request's attributes.
func (e *Engine) noteSources(d *Decision) {
	if d.Target.ResourceType == "" {
		return
	}
	for _, f := range d.Findings {
		if f.Code == rules.CodeFallback && f.Source != "" {
			e.setSource(d.Connection, d.Target.ResourceType, f.Attribute, f.Source)
		}
	}
}

func (e *Engine) setSource(connection, resourceType, target, source string) {
	if cs := e.connSources(connection); cs != nil {
		cs.store(resourceType, target, source, true)
	}
}

// hasSources reports whether a connection sends any mapped attribute at a From path. The
// first call per connection reads the fallback counts the store keeps (the most recently
// used source of each attribute), so the knowledge survives restarts.
func (e *Engine) hasSources(ctx context.Context, connection string) bool {
	cs := e.connSources(connection)
	if cs == nil {
		return false
	}
	cs.seed.Do(func() {
		if e.Store == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sourceSeedTimeout)
		defer cancel()
		attrs, err := e.Store.WarningSummary(ctx, connection)
		if err != nil {
			return
		}
		for _, a := range attrs {
			best := -1
			for i, f := range a.Fallbacks {
				if best < 0 || f.LastSeenAt.After(a.Fallbacks[best].LastSeenAt) {
					best = i
				}
			}
			if best >= 0 {
				// What this process learnt already is newer than the store's history.
				cs.store(a.ResourceType, a.Attribute, a.Fallbacks[best].Source, false)
			}
		}
	})
	return cs.any.Load()
}

// usedSources is the rules.SourceFunc of a connection (nil when none is kept).
func (e *Engine) usedSources(connection string) rules.SourceFunc {
	cs := e.connSources(connection)
	if cs == nil {
		return nil
	}
	return cs.used
}

// normalize applies the connection's dialect normalisations to a write body and adds their
// findings to d. A body they cannot parse is left to the rules (which report it).
func (e *Engine) normalize(r *http.Request, next http.Handler, d *Decision, body []byte) []byte {
	n := e.Normalize
	if !n.Any() || len(body) == 0 {
		return body
	}
	if (d.Target.Op == OpCreate || d.Target.Op == OpReplace) && !rules.MayNormalizeResource(n, body) {
		return body // nothing to normalise: no schema types needed either
	}
	var types rules.AttrTypes
	if n.Booleans {
		types = e.recentSchema(d.Connection)
		if types == nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), DefaultStoreTimeout)
			p := &predictor{e: e, r: r, next: next, ctx: ctx, d: d}
			types = rules.AttrTypes(e.schemaFor(p, d.Connection, d.Target))
			cancel()
		}
	}
	var (
		out []byte
		fs  []rules.Finding
		err error
	)
	switch d.Target.Op {
	case OpCreate, OpReplace:
		out, fs, err = rules.NormalizeResource(n, types, body)
	case OpPatch:
		out, fs, err = rules.NormalizePatch(n, types, body)
	default:
		return body
	}
	if err != nil {
		return body
	}
	d.Findings = append(d.Findings, fs...)
	return out
}

// recentSchema is the connection's cached attribute types when they were read less than
// schemaShortcut ago (well within schemaFor's own refresh interval), so a write needs no
// context for a fetch that will not happen; nil otherwise (ask schemaFor).
func (e *Engine) recentSchema(connection string) rules.AttrTypes {
	if v, ok := e.schemas.Load(connection); ok {
		if st := v.(schemaTypes); time.Since(st.at) < schemaShortcut {
			return st.types
		}
	}
	return nil
}

// schemaShortcut is how old cached attribute types recentSchema hands out.
const schemaShortcut = time.Minute

// forward hands r to next; the response is reverse-mapped when it may carry attributes
// this connection sends elsewhere.
func (e *Engine) forward(w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision) {
	rw := e.reverseWriter(w, r, d)
	if rw == nil {
		next.ServeHTTP(w, r)
		return
	}
	next.ServeHTTP(rw, r)
	rw.finish()
}

// reverseWriter returns the writer that reverse-maps this request's response, or nil
// when nothing could be mapped back.
func (e *Engine) reverseWriter(w http.ResponseWriter, r *http.Request, d *Decision) *reverseWriter {
	if e.NoReverseMap || e.Rules.Empty() || r.Method == http.MethodHead {
		return nil
	}
	switch d.Target.Op {
	case OpRead, OpSearch, OpCreate, OpReplace, OpPatch:
	default:
		return nil
	}
	if !e.hasSources(r.Context(), d.Connection) {
		return nil
	}
	// The body is rewritten here: ask the backend for it uncompressed. Dropping the header
	// would not do: Go's Transport (reverse_proxy's, unless its compression is off) then
	// asks for gzip itself and inflates the answer, ~16 µs and 40 KB per 1.3 KB response
	// on top of the backend's deflating.
	r.Header.Set("Accept-Encoding", identity)
	return &reverseWriter{w: w, e: e, d: d}
}

// identity is the Accept-Encoding that asks for a body without content coding.
const identity = "identity"

// reverseWriter buffers a SCIM JSON response to map it back to the IdP's paths; any
// other response (not 2xx, not JSON, encoded, too large) streams through untouched.
type reverseWriter struct {
	w         http.ResponseWriter
	e         *Engine
	d         *Decision
	status    int
	decided   bool
	buffering bool
	buf       *bytes.Buffer // from bufPool while buffering
}

// bufPool holds the buffers of reverse-mapped responses; maxPooledBuf bounds what goes back.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuf = 64 << 10

// releaseBuf returns the response buffer to the pool.
func (rw *reverseWriter) releaseBuf() {
	if rw.buf != nil && rw.buf.Cap() <= maxPooledBuf {
		rw.buf.Reset()
		bufPool.Put(rw.buf)
	}
	rw.buf = nil
}

// Header returns the response header.
func (rw *reverseWriter) Header() http.Header { return rw.w.Header() }

// WriteHeader decides whether the response is buffered.
func (rw *reverseWriter) WriteHeader(status int) {
	if rw.decided {
		return
	}
	if status >= 100 && status < 200 {
		rw.w.WriteHeader(status) // informational: not the final answer
		return
	}
	rw.decided, rw.status = true, status
	h := rw.w.Header()
	rw.buffering = status >= 200 && status < 300 && status != http.StatusNoContent &&
		isSCIMJSON(h.Get("Content-Type")) && h.Get("Content-Encoding") == ""
	if !rw.buffering {
		rw.w.WriteHeader(status)
		return
	}
	rw.buf = bufPool.Get().(*bytes.Buffer)
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.Atoi(cl); err == nil && n > 0 && n <= maxReverseBody {
			rw.buf.Grow(n)
		}
	}
}

// Write buffers or streams p.
func (rw *reverseWriter) Write(p []byte) (int, error) {
	if !rw.decided {
		rw.WriteHeader(http.StatusOK)
	}
	if !rw.buffering {
		return rw.w.Write(p)
	}
	if rw.buf.Len()+len(p) > maxReverseBody {
		// Too large to rewrite: send what we have and stream the rest.
		rw.buffering = false
		rw.w.WriteHeader(rw.status)
		_, err := rw.w.Write(rw.buf.Bytes())
		rw.releaseBuf()
		if err != nil {
			return 0, err
		}
		return rw.w.Write(p)
	}
	return rw.buf.Write(p)
}

// Flush flushes a streamed response; a buffered one is sent whole by finish.
func (rw *reverseWriter) Flush() {
	if rw.decided && !rw.buffering {
		_ = http.NewResponseController(rw.w).Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (rw *reverseWriter) Unwrap() http.ResponseWriter { return rw.w }

// finish sends a buffered response, reverse-mapped, with its Content-Length corrected.
func (rw *reverseWriter) finish() {
	if !rw.buffering {
		return
	}
	body := rw.buf.Bytes()
	dst := bufPool.Get().(*bytes.Buffer) // the moved body goes to a pooled buffer too
	out, moved, err := rw.e.Rules.AppendReverseResponse(dst.AvailableBuffer(), rw.d.Target.ResourceType, body, rw.e.usedSources(rw.d.Connection))
	if err == nil && moved > 0 {
		body = out
		rw.d.ReverseMapped += moved
	}
	rw.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.w.WriteHeader(rw.status)
	_, _ = rw.w.Write(body)
	// body was written: nothing refers to either buffer any more. A moved body that
	// outgrew dst is kept in its place for the next response.
	if moved > 0 && cap(out) > dst.Cap() && cap(out) <= maxPooledBuf {
		dst = bytes.NewBuffer(out[:0])
	}
	dst.Reset()
	if dst.Cap() <= maxPooledBuf {
		bufPool.Put(dst)
	}
	rw.releaseBuf()
}

// isSCIMJSON reports whether a response Content-Type is application/scim+json or
// application/json.
func isSCIMJSON(contentType string) bool {
	if contentType == ContentType || contentType == "application/json" {
		return true // the usual spellings, without parsing
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == ContentType || mt == "application/json")
}
