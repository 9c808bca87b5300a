package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ReviewAPI serves the review endpoints over a Store. Paths are relative: mount it with
// the prefix stripped.
//
//	GET    /connections                    {"connections":[{"name","mode","pending"}]}
//	PUT    /connections/{c}/mode           {"mode":"live"|"preview"} → {"name","mode"}
//	GET    /connections/{c}/records        ?user=&resource=&method=&status=&cursor=&limit=
//	                                       → {"records":[…],"next_cursor":"…"}
//	GET    /connections/{c}/records/{id}   the record
//	DELETE /connections/{c}/records        {"deleted":N}
//
// Connection names in paths are URL-escaped. Errors are {"error":"…"} with a fitting status.
type ReviewAPI struct {
	Store Store
	// DefaultModes returns the configured mode of every connection name; may be nil.
	DefaultModes func() map[string]Mode
	// OnModeChange, if set, is called after a mode was stored by PUT …/mode.
	OnModeChange func(connection string, mode Mode)
}

// reviewMaxBody bounds the body of PUT …/mode.
const reviewMaxBody = 1 << 16

type reviewAPIKey struct{}

var (
	reviewMuxOnce sync.Once
	reviewMux     *http.ServeMux
)

// reviewRoutes is built once; its handlers find the ReviewAPI in the request context,
// so a ReviewAPI value costs nothing to create per request.
func reviewRoutes() *http.ServeMux {
	reviewMuxOnce.Do(func() {
		mux := http.NewServeMux()
		handle := func(pattern string, h func(*ReviewAPI, http.ResponseWriter, *http.Request)) {
			mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
				h(r.Context().Value(reviewAPIKey{}).(*ReviewAPI), w, r)
			})
		}
		handle("GET /connections", (*ReviewAPI).listConnections)
		handle("PUT /connections/{c}/mode", (*ReviewAPI).putMode)
		handle("GET /connections/{c}/records", (*ReviewAPI).listRecords)
		handle("DELETE /connections/{c}/records", (*ReviewAPI).deleteRecords)
		handle("GET /connections/{c}/records/{id}", (*ReviewAPI).getRecord)
		reviewMux = mux
	})
	return reviewMux
}

// ServeHTTP routes a review request.
func (a *ReviewAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := reviewRoutes()
	// The mux would redirect a path that is not clean ("//", "..") to its clean form,
	// losing the prefix the caller stripped: such paths are not found.
	if p := r.URL.EscapedPath(); p == "" || path.Clean(p) != p {
		writeReviewError(w, http.StatusNotFound, "not found")
		return
	}
	if _, pattern := mux.Handler(r); pattern == "" {
		// Not found, or the wrong method: let the mux decide the status (and Allow), and
		// answer in JSON.
		c := &reviewStatusCapture{header: http.Header{}}
		h, _ := mux.Handler(r)
		h.ServeHTTP(c, r)
		status := c.status
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", c.header.Get("Allow"))
		} else {
			status = http.StatusNotFound
		}
		writeReviewError(w, status, strings.ToLower(http.StatusText(status)))
		return
	}
	if a.Store == nil {
		writeReviewError(w, http.StatusServiceUnavailable, "no store configured")
		return
	}
	mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reviewAPIKey{}, a)))
}

// connectionView is one entry of GET /connections.
type connectionView struct {
	Name    string `json:"name"`
	Mode    Mode   `json:"mode"`
	Pending int64  `json:"pending"`
}

func (a *ReviewAPI) listConnections(w http.ResponseWriter, r *http.Request) {
	infos, err := a.Store.Connections(r.Context())
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("listing connections: %v", err))
		return
	}
	var defaults map[string]Mode
	if a.DefaultModes != nil {
		defaults = a.DefaultModes()
	}
	views := make(map[string]*connectionView, len(infos)+len(defaults))
	for _, info := range infos {
		views[info.Name] = &connectionView{Name: info.Name, Mode: info.Mode, Pending: info.Pending}
	}
	for name := range defaults {
		if name != "" && views[name] == nil {
			views[name] = &connectionView{Name: name}
		}
	}
	out := make([]connectionView, 0, len(views))
	for _, v := range views {
		if v.Mode == "" {
			v.Mode = defaults[v.Name] // the configured default…
		}
		if v.Mode == "" {
			v.Mode = ModeLive // …else live
		}
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeReviewJSON(w, http.StatusOK, map[string]any{"connections": out})
}

func (a *ReviewAPI) putMode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("c")
	var body struct {
		Mode string `json:"mode"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, reviewMaxBody))
	if err := dec.Decode(&body); err != nil {
		writeReviewError(w, http.StatusBadRequest, fmt.Sprintf(`body must be {"mode":"live"|"preview"}: %v`, err))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeReviewError(w, http.StatusBadRequest, `body must be one JSON object {"mode":"live"|"preview"}`)
		return
	}
	mode, err := ParseMode(body.Mode)
	if err != nil {
		writeReviewError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.Store.SetMode(r.Context(), name, mode); err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("setting mode: %v", err))
		return
	}
	if a.OnModeChange != nil {
		a.OnModeChange(name, mode)
	}
	writeReviewJSON(w, http.StatusOK, struct {
		Name string `json:"name"`
		Mode Mode   `json:"mode"`
	}{name, mode})
}

// validStatuses are the values ?status= accepts.
var validStatuses = map[RecordStatus]bool{
	StatusPending: true, StatusApproved: true, StatusIgnored: true, StatusForwarded: true, StatusFailed: true,
}

func (a *ReviewAPI) listRecords(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := RecordQuery{
		User:         v.Get("user"),
		ResourceType: v.Get("resource"),
		Method:       strings.ToUpper(v.Get("method")),
		Status:       RecordStatus(v.Get("status")),
		Cursor:       v.Get("cursor"),
	}
	if q.Status != "" && !validStatuses[q.Status] {
		writeReviewError(w, http.StatusBadRequest, fmt.Sprintf("unknown status %q", q.Status))
		return
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeReviewError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a positive number, got %q", s))
			return
		}
		q.Limit = min(n, MaxRecordLimit)
	}
	recs, next, err := a.Store.Records(r.Context(), r.PathValue("c"), q)
	if errors.Is(err, ErrBadCursor) {
		writeReviewError(w, http.StatusBadRequest, "invalid cursor")
		return
	}
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("listing records: %v", err))
		return
	}
	// Lists leave the request bodies out; GET …/records/{id} has them.
	for i := range recs {
		recs[i].Original.Body, recs[i].Original.Text = nil, ""
		recs[i].Effective.Body, recs[i].Effective.Text = nil, ""
	}
	if recs == nil {
		recs = []Record{}
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"records": recs, "next_cursor": next})
}

func (a *ReviewAPI) getRecord(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeReviewError(w, http.StatusBadRequest, fmt.Sprintf("record id must be a positive number, got %q", r.PathValue("id")))
		return
	}
	rec, err := a.Store.Record(r.Context(), r.PathValue("c"), id)
	if errors.Is(err, ErrNotFound) {
		writeReviewError(w, http.StatusNotFound, "record not found")
		return
	}
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("reading record: %v", err))
		return
	}
	writeReviewJSON(w, http.StatusOK, rec)
}

func (a *ReviewAPI) deleteRecords(w http.ResponseWriter, r *http.Request) {
	n, err := a.Store.DeleteRecords(r.Context(), r.PathValue("c"))
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("deleting records: %v", err))
		return
	}
	writeReviewJSON(w, http.StatusOK, map[string]int64{"deleted": n})
}

// writeReviewJSON answers with v as JSON. Review data is never cached.
func writeReviewJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"encoding the response failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeReviewError answers {"error": msg}.
func writeReviewError(w http.ResponseWriter, status int, msg string) {
	writeReviewJSON(w, status, map[string]string{"error": msg})
}

// reviewStatusCapture records the status and headers a handler writes, discarding the body.
type reviewStatusCapture struct {
	header http.Header
	status int
}

func (c *reviewStatusCapture) Header() http.Header { return c.header }

func (c *reviewStatusCapture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}

func (c *reviewStatusCapture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
