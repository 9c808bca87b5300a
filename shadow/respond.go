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
	sources sync.Map // connection \x00 lower(resource type) \x00 target → source
	conns   sync.Map // connection → *connSources
	nconns  atomic.Int64
}

// connSources says whether a connection has any source path, seeded from the store once.
type connSources struct {
	seed sync.Once
	mu   sync.Mutex
	any  bool
}

func sourceKey(connection, resourceType, target string) string {
	return connection + "\x00" + strings.ToLower(resourceType) + "\x00" + target
}

// connSources returns a connection's entry, or nil when maxSourceConnections are kept.
func (e *Engine) connSources(connection string) *connSources {
	if v, ok := e.conns.Load(connection); ok {
		return v.(*connSources)
	}
	if e.nconns.Load() >= maxSourceConnections {
		return nil
	}
	v, loaded := e.conns.LoadOrStore(connection, &connSources{})
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
	cs := e.connSources(connection)
	if cs == nil {
		return
	}
	e.sources.Store(sourceKey(connection, resourceType, target), source)
	cs.mu.Lock()
	cs.any = true
	cs.mu.Unlock()
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
				if _, loaded := e.sources.LoadOrStore(sourceKey(connection, a.ResourceType, a.Attribute), a.Fallbacks[best].Source); !loaded {
					cs.mu.Lock()
					cs.any = true
					cs.mu.Unlock()
				}
			}
		}
	})
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.any
}

// usedSources is the rules.SourceFunc of a connection.
func (e *Engine) usedSources(connection string) rules.SourceFunc {
	return func(resourceType, target string) string {
		v, _ := e.sources.Load(sourceKey(connection, resourceType, target))
		s, _ := v.(string)
		return s
	}
}

// normalize applies the connection's dialect normalisations to a write body and adds their
// findings to d. A body they cannot parse is left to the rules (which report it).
func (e *Engine) normalize(r *http.Request, next http.Handler, d *Decision, body []byte) []byte {
	n := e.Normalize
	if !n.Any() || len(body) == 0 {
		return body
	}
	var types rules.AttrTypes
	if n.Booleans {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), DefaultStoreTimeout)
		p := &predictor{e: e, r: r, next: next, ctx: ctx, d: d}
		types = rules.AttrTypes(e.schemaFor(p, d.Connection, d.Target))
		cancel()
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
	// The body is rewritten here: ask the backend for it uncompressed.
	r.Header.Del("Accept-Encoding")
	return &reverseWriter{w: w, e: e, d: d}
}

// reverseWriter buffers a SCIM JSON response to map it back to the IdP's paths; any
// other response (not 2xx, not JSON, encoded, too large) streams through untouched.
type reverseWriter struct {
	w         http.ResponseWriter
	e         *Engine
	d         *Decision
	status    int
	decided   bool
	buffering bool
	buf       bytes.Buffer
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
		if _, err := rw.w.Write(rw.buf.Bytes()); err != nil {
			return 0, err
		}
		rw.buf = bytes.Buffer{}
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
	out, moved, err := rw.e.Rules.ReverseResponse(rw.d.Target.ResourceType, body, rw.e.usedSources(rw.d.Connection))
	if err == nil && moved > 0 {
		body = out
		rw.d.ReverseMapped += moved
	}
	rw.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.w.WriteHeader(rw.status)
	_, _ = rw.w.Write(body)
}

// isSCIMJSON reports whether a response Content-Type is application/scim+json or
// application/json.
func isSCIMJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == ContentType || mt == "application/json")
}
