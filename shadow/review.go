package shadow

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReviewAPI serves the review endpoints over a Store. Paths are relative: mount it with
// the prefix stripped.
//
//	GET    /connections                    {"connections":[{"name","mode","pending","errors","deprovisions","warnings"}]}
//	PUT    /connections/{c}/mode           {"mode":"live"|"preview"} → {"name","mode"}
//	GET    /connections/{c}/records        ?user=&group=&errors=1&deprovisions=1&resource=&method=&status=&cursor=&limit=
//	                                       → {"records":[…],"next_cursor":"…"}
//	GET    /connections/{c}/records/{id}   the record
//	GET    /connections/{c}/resources      ?user=&group=&errors=1&type=&cursor=&limit=
//	                                       → {"resources":[…],"next_cursor":"…"} (see PendingResources)
//	DELETE /connections/{c}/records        {"deleted":N}
//	GET    /connections/{c}/warnings       {"attributes":[{"resource_type","attribute","users_missing",
//	                                        "fallbacks":[{"source","count","last_seen_at"}]}]}
//	GET    /connections/{c}/warnings/users ?attribute=&cursor=&limit=
//	                                       → {"users":[{"resource_type","key","attributes","count","last_seen_at"}],"next_cursor":"…"}
//	GET    /connections/{c}/warnings/users/{key}
//	                                       → {"key","warnings":[{"resource_type","attribute","count","first_seen_at",
//	                                          "last_seen_at","example":{"record_id","original","effective"}|null}]}
//
// "warnings" of a connection counts its open warnings: (resource, attribute) pairs whose
// last write lacked a warn_if_missing attribute. users_missing counts the resources with
// an open warning for the attribute; fallbacks count the writes that filled it from a
// from path. A warning's example is the request that opened it (the preview record, or a
// record with status observed in live mode); null once records were deleted or purged.
//
// user= and group= match a user or group the record touches (its target, or a member it
// adds or removes) by key (case-insensitive) or id. List items leave out the request
// bodies and the live and projected resources; GET …/records/{id} has them.
//
// Connection names in paths are URL-escaped. Errors are {"error":"…"} with a fitting status.
//
// Under /ui/ it serves the review page (ui.go); a GET of an endpoint above whose Accept
// names text/html (a browser) is redirected to the matching page.
type ReviewAPI struct {
	Store Store
	// CSRFSecret, if set, keys the review page's form tokens, so every instance sharing
	// one store (behind a load balancer) accepts the others' tokens and a restart keeps
	// open pages working. Empty: a random key per process.
	CSRFSecret string
	// DefaultModes returns the configured mode of every connection name; may be nil.
	DefaultModes func() map[string]Mode
	// OnModeChange, if set, is called after a mode was stored by PUT …/mode.
	OnModeChange func(connection string, mode Mode)
	// OnDecide, if set, is called after records were approved or ignored (hold_review.go).
	OnDecide func(connection string, ids []int64, to RecordStatus)
	// Credentials issues and deletes connection tokens (credentials_review.go); nil: a
	// Credentials over Store.
	Credentials *Credentials
	// Stages sets staged go-live (stage.go); nil: a StageTable over Store.
	Stages *StageTable
}

// reviewMaxBody bounds the body of PUT …/mode.
const reviewMaxBody = 1 << 16

type reviewAPIKey struct{}

// apiRoute is one route of a ReviewAPI mux. Its handler finds the ReviewAPI in the
// request context, so a mux is built once and a ReviewAPI value costs nothing to create
// per request.
type apiRoute struct {
	pattern string
	handle  func(*ReviewAPI, http.ResponseWriter, *http.Request)
}

// newAPIMux builds the mux of a route table.
func newAPIMux(routes []apiRoute, more ...[]apiRoute) *http.ServeMux {
	mux := http.NewServeMux()
	for _, m := range more {
		routes = append(routes, m...)
	}
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			rt.handle(r.Context().Value(reviewAPIKey{}).(*ReviewAPI), w, r)
		})
	}
	return mux
}

// reviewRoutes is the mux of the JSON API.
var reviewRoutes = sync.OnceValue(func() *http.ServeMux {
	return newAPIMux([]apiRoute{
		{"GET /connections", (*ReviewAPI).listConnections},
		{"PUT /connections/{c}/mode", (*ReviewAPI).putMode},
		{"GET /connections/{c}/records", (*ReviewAPI).listRecords},
		{"DELETE /connections/{c}/records", (*ReviewAPI).deleteRecords},
		{"GET /connections/{c}/records/{id}", (*ReviewAPI).getRecord},
		{"GET /connections/{c}/resources", (*ReviewAPI).listResources},
		{"GET /connections/{c}/warnings", (*ReviewAPI).warningSummary},
		{"GET /connections/{c}/warnings/users", (*ReviewAPI).warningUsers},
		{"GET /connections/{c}/warnings/users/{key}", (*ReviewAPI).userWarnings},
	}, holdRoutes(), credentialRoutes(), stageRoutes())
})

// ServeHTTP routes a review request: the review page under /ui/ (ui.go), a browser's GET
// of a JSON endpoint (Accept: text/html) redirected to its page, else the JSON API.
func (a *ReviewAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "/ui" || strings.HasPrefix(p, "/ui/") {
		a.serveUI(w, r)
		return
	}
	if page, ok := uiPageFor(r); ok {
		uiRedirect(w, page)
		return
	}
	a.serveMux(reviewRoutes(), w, r, func(w http.ResponseWriter, _ *http.Request, status int, msg string) {
		writeReviewError(w, status, msg)
	})
}

// serveMux serves r through mux with a in its context. A path that is not clean ("//",
// ".."; the mux would redirect it to its clean form, losing the prefix the caller
// stripped) or not found, a wrong method (with Allow set) and a missing store are
// answered by fail.
func (a *ReviewAPI) serveMux(mux *http.ServeMux, w http.ResponseWriter, r *http.Request,
	fail func(w http.ResponseWriter, r *http.Request, status int, msg string)) {
	if p := r.URL.EscapedPath(); p == "" || path.Clean(p) != p {
		fail(w, r, http.StatusNotFound, "not found")
		return
	}
	h, pattern := mux.Handler(r)
	if pattern == "" {
		// Not found, or the wrong method: let the mux decide the status (and Allow).
		c := &reviewStatusCapture{header: http.Header{}}
		h.ServeHTTP(c, r)
		status := c.status
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", c.header.Get("Allow"))
		} else {
			status = http.StatusNotFound
		}
		fail(w, r, status, strings.ToLower(http.StatusText(status)))
		return
	}
	if a.Store == nil && !strings.HasPrefix(pattern, uiStaticPattern) {
		fail(w, r, http.StatusServiceUnavailable, "no store configured")
		return
	}
	mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reviewAPIKey{}, a)))
}

// connectionView is one entry of GET /connections.
type connectionView struct {
	Name         string `json:"name"`
	Mode         Mode   `json:"mode"`
	Pending      int64  `json:"pending"`
	Errors       int64  `json:"errors"`       // pending records with predicted errors
	Deprovisions int64  `json:"deprovisions"` // pending records that deprovision
	Warnings     int64  `json:"warnings"`     // open warnings
	Held         int64  `json:"held"`         // live writes held for approval
}

func (a *ReviewAPI) listConnections(w http.ResponseWriter, r *http.Request) {
	views, err := a.connectionViews(r.Context())
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"connections": views})
}

// connectionViews lists the connections: those the store knows and the configured ones,
// each with its effective mode (the stored one, else the configured one, else live), by
// name.
func (a *ReviewAPI) connectionViews(ctx context.Context) ([]connectionView, error) {
	infos, err := a.Store.Connections(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing connections: %w", err)
	}
	var defaults map[string]Mode
	if a.DefaultModes != nil {
		defaults = a.DefaultModes()
	}
	views := make(map[string]*connectionView, len(infos)+len(defaults))
	for _, info := range infos {
		views[info.Name] = &connectionView{Name: info.Name, Mode: info.Mode, Pending: info.Pending,
			Errors: info.Errors, Deprovisions: info.Deprovisions, Warnings: info.Warnings, Held: info.Held}
	}
	for name := range defaults {
		if name != "" && views[name] == nil {
			views[name] = &connectionView{Name: name}
		}
	}
	out := make([]connectionView, 0, len(views))
	for _, v := range views {
		if v.Mode == "" {
			v.Mode = defaults[v.Name]
		}
		if v.Mode == "" {
			v.Mode = ModeLive
		}
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
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
	StatusObserved: true, StatusHeld: true, StatusForwarding: true,
}

func (a *ReviewAPI) listRecords(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := RecordQuery{
		User:         v.Get("user"),
		Group:        v.Get("group"),
		ResourceType: v.Get("resource"),
		Method:       strings.ToUpper(v.Get("method")),
		Status:       RecordStatus(v.Get("status")),
		Cursor:       v.Get("cursor"),
	}
	if q.Status != "" && !validStatuses[q.Status] {
		writeReviewError(w, http.StatusBadRequest, fmt.Sprintf("unknown status %q", q.Status))
		return
	}
	var err error
	if q.ErrorsOnly, err = queryFlag(v, "errors"); err != nil {
		writeReviewError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Deprovisions, err = queryFlag(v, "deprovisions"); err != nil {
		writeReviewError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Limit, err = queryLimit(v, MaxRecordLimit); err != nil {
		writeReviewError(w, http.StatusBadRequest, err.Error())
		return
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
	// Lists leave the request bodies and the resources out; GET …/records/{id} has them.
	for i := range recs {
		recs[i].Original.Body, recs[i].Original.Text = nil, ""
		recs[i].Effective.Body, recs[i].Effective.Text = nil, ""
		recs[i].Live, recs[i].Projected = nil, nil
	}
	if recs == nil {
		recs = []Record{}
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"records": recs, "next_cursor": next})
}

// queryFlag reads a boolean query parameter: absent, "", "0" or "false" is false; "1" or
// "true" is true.
func queryFlag(v url.Values, name string) (bool, error) {
	switch s := v.Get(name); strings.ToLower(s) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s must be 1 or 0, got %q", name, s)
	}
}

// queryLimit reads ?limit=: 0 when absent, else a positive number lowered to maxLimit.
func queryLimit(v url.Values, maxLimit int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("limit must be a positive number, got %q", s)
	}
	return min(n, maxLimit), nil
}

func (a *ReviewAPI) listResources(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := ResourceQuery{
		User:         v.Get("user"),
		Group:        v.Get("group"),
		ResourceType: v.Get("type"),
		Cursor:       v.Get("cursor"),
	}
	var err error
	if q.ErrorsOnly, err = queryFlag(v, "errors"); err != nil {
		writeReviewError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Limit, err = queryLimit(v, MaxResourceLimit); err != nil {
		writeReviewError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, next, err := PendingResources(r.Context(), a.Store, r.PathValue("c"), q)
	if errors.Is(err, ErrBadCursor) {
		writeReviewError(w, http.StatusBadRequest, "invalid cursor")
		return
	}
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("listing resources: %v", err))
		return
	}
	if res == nil {
		res = []PendingResource{}
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"resources": res, "next_cursor": next})
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

func (a *ReviewAPI) warningSummary(w http.ResponseWriter, r *http.Request) {
	attrs, err := a.Store.WarningSummary(r.Context(), r.PathValue("c"))
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("listing warnings: %v", err))
		return
	}
	if attrs == nil {
		attrs = []WarningAttribute{}
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"attributes": attrs})
}

func (a *ReviewAPI) warningUsers(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	limit, err := queryLimit(v, MaxWarningUserLimit)
	if err != nil {
		writeReviewError(w, http.StatusBadRequest, err.Error())
		return
	}
	users, next, err := a.Store.WarningUsers(r.Context(), r.PathValue("c"), v.Get("attribute"), v.Get("cursor"), limit)
	if errors.Is(err, ErrBadCursor) {
		writeReviewError(w, http.StatusBadRequest, "invalid cursor")
		return
	}
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("listing users with warnings: %v", err))
		return
	}
	if users == nil {
		users = []WarningUser{}
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"users": users, "next_cursor": next})
}

// warningView is one warning of GET …/warnings/users/{key}.
type warningView struct {
	ResourceType string          `json:"resource_type"`
	Attribute    string          `json:"attribute"`
	Count        int64           `json:"count"`
	FirstSeenAt  time.Time       `json:"first_seen_at"`
	LastSeenAt   time.Time       `json:"last_seen_at"`
	Example      *warningExample `json:"example"`
}

// warningExample is the request that opened a warning.
type warningExample struct {
	RecordID  int64         `json:"record_id"`
	Original  StoredRequest `json:"original"`
	Effective StoredRequest `json:"effective"`
}

func (a *ReviewAPI) userWarnings(w http.ResponseWriter, r *http.Request) {
	key, views, err := a.userWarningViews(r.Context(), r.PathValue("c"), r.PathValue("key"))
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"key": key, "warnings": views})
}

// userWarningViews returns the open warnings of the resources with key, each with its
// example request, and the key as last seen.
func (a *ReviewAPI) userWarningViews(ctx context.Context, conn, key string) (string, []warningView, error) {
	ws, err := a.Store.UserWarnings(ctx, conn, key)
	if err != nil {
		return "", nil, fmt.Errorf("reading warnings: %w", err)
	}
	examples := map[int64]*warningExample{}
	views := make([]warningView, 0, len(ws))
	var latest time.Time
	for _, wn := range ws {
		if wn.Key != "" && !wn.LastSeenAt.Before(latest) {
			key, latest = wn.Key, wn.LastSeenAt // the spelling seen last
		}
		v := warningView{ResourceType: wn.ResourceType, Attribute: wn.Attribute, Count: wn.Count,
			FirstSeenAt: wn.FirstSeenAt, LastSeenAt: wn.LastSeenAt}
		if id := wn.ExampleRecordID; id > 0 {
			ex, seen := examples[id]
			if !seen {
				rec, err := a.Store.Record(ctx, conn, id)
				switch {
				case err == nil:
					ex = &warningExample{RecordID: rec.ID, Original: rec.Original, Effective: rec.Effective}
				case !errors.Is(err, ErrNotFound):
					return "", nil, fmt.Errorf("reading example record %d: %w", id, err)
				}
				examples[id] = ex
			}
			v.Example = ex
		}
		views = append(views, v)
	}
	return key, views, nil
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

// Limits of one page of PendingResources.
const (
	DefaultResourceLimit = 50  // ResourceQuery.Limit 0
	MaxResourceLimit     = 500 // larger limits are lowered to this
)

// resourceScanPage is how many records scanRecords reads per Records call.
const resourceScanPage = MaxRecordLimit

// ResourceQuery selects the pending resources of a connection. Zero fields do not filter.
// User, Group and ErrorsOnly select resources with at least one pending record that
// matches (as in RecordQuery); a selected resource is always shown with all its pending
// records, so that its live state, projection and diff stay whole.
type ResourceQuery struct {
	User         string // a user the resource's records touch, by key (case-insensitive) or id
	Group        string // a group the resource's records touch, by key (case-insensitive) or id
	ErrorsOnly   bool   // resources with a record with predicted errors
	ResourceType string // "User", "Group", … (case-insensitive)
	Cursor       string // opaque, from a previous page
	Limit        int    // 0 means DefaultResourceLimit; at most MaxResourceLimit
}

// PendingResource is the net effect of the pending records of one resource: what the
// backend would change if they were applied in order.
type PendingResource struct {
	ResourceType string            `json:"resource_type"`
	ID           string            `json:"id,omitempty"`
	Key          string            `json:"key,omitempty"`
	Records      []int64           `json:"records"`     // ids, oldest first
	Live         json.RawMessage   `json:"live"`        // the first record's Live
	Projected    json.RawMessage   `json:"projected"`   // the last record's Projected
	Changes      []Change          `json:"changes"`     // Diff(live, projected)
	Errors       []json.RawMessage `json:"errors"`      // the error findings of all its records
	Deprovision  bool              `json:"deprovision"` // any record deprovisions
	Attempts     int               `json:"attempts"`    // all its records' attempts
	newest       int64             // the newest record's id: the order and the cursor
	recs         []Record          // newest first, while scanning
}

// PendingResources groups the pending records of connection by the resource they target
// (resource type and id, or type and key (case-insensitive) when the record has no id; a
// record with neither, such as a bulk request, is a resource of its own), most recently
// written resource first, and returns one page of them with the cursor of the next page
// ("" on the last). The store selects the page and reads only its resources' records
// (Store.PendingResourceGroups); pendingResourcesScan is the same view over Records
// alone, kept as the tests' oracle. A resource that gets a new record while a client
// pages moves to the front: the client can miss or repeat it.
func PendingResources(ctx context.Context, st Store, connection string, q ResourceQuery) ([]PendingResource, string, error) {
	groups, more, err := st.PendingResourceGroups(ctx, connection, q)
	if err != nil {
		return nil, "", err
	}
	page := make([]*PendingResource, len(groups))
	for i, recs := range groups {
		page[i] = &PendingResource{newest: recs[0].ID}
		for j := range recs {
			page[i].add(&recs[j])
		}
	}
	return finishResources(page, more)
}

// finishResources computes the views of a page of resources gathered newest first, and
// the cursor of the next page when more follow.
func finishResources(page []*PendingResource, more bool) ([]PendingResource, string, error) {
	out := make([]PendingResource, len(page))
	for i, res := range page {
		res.finish()
		out[i] = *res
	}
	next := ""
	if more && len(out) > 0 {
		next = encodeResourceCursor(out[len(out)-1].newest)
	}
	return out, next, nil
}

// resourceLimit applies the default and the maximum to ResourceQuery.Limit.
func resourceLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultResourceLimit
	case n > MaxResourceLimit:
		return MaxResourceLimit
	}
	return n
}

// scanRecords hands every record of connection matching q to fn, newest first, reading
// pages of resourceScanPage. q.Cursor and q.Limit are ignored.
func scanRecords(ctx context.Context, st Store, connection string, q RecordQuery, fn func(*Record)) error {
	q.Cursor, q.Limit = "", resourceScanPage
	for {
		recs, next, err := st.Records(ctx, connection, q)
		if err != nil {
			return err
		}
		for i := range recs {
			fn(&recs[i])
		}
		if next == "" {
			return nil
		}
		q.Cursor = next
	}
}

// resourceIdentity is the grouping key of the resource a record targets.
func resourceIdentity(rec *Record) string {
	typ := strings.ToLower(rec.ResourceType)
	switch {
	case rec.ResourceID != "":
		return typ + "\x00id\x00" + rec.ResourceID
	case rec.Key != "":
		return typ + "\x00key\x00" + strings.ToLower(rec.Key)
	default:
		return "\x00record\x00" + strconv.FormatInt(rec.ID, 10)
	}
}

// add takes one more (older) record of the resource, without its request bodies.
func (res *PendingResource) add(rec *Record) {
	r := *rec
	r.Original, r.Effective = StoredRequest{}, StoredRequest{}
	res.recs = append(res.recs, r)
}

// finish computes the view from the records gathered newest first.
func (res *PendingResource) finish() {
	recs := res.recs
	res.recs = nil
	slices.Reverse(recs) // oldest first
	first, last := &recs[0], &recs[len(recs)-1]
	res.ResourceType, res.ID = last.ResourceType, last.ResourceID
	res.Records = make([]int64, len(recs))
	res.Errors = []json.RawMessage{}
	for i := range recs {
		r := &recs[i]
		res.Records[i] = r.ID
		if r.Key != "" {
			res.Key = r.Key // the newest known key
		}
		res.Deprovision = res.Deprovision || r.Deprovision
		res.Attempts += r.Attempts
		res.Errors = append(res.Errors, errorFindings(r.Findings)...)
	}
	res.Live, res.Projected = first.Live, last.Projected
	res.Changes = Diff(first.Live, last.Projected)
	carryDisplays(res.Changes, recs)
	if res.Changes == nil {
		res.Changes = []Change{}
	}
}

// errorFindings returns the findings of severity "error" in a record's Findings (a JSON
// array of rules.Finding), as stored.
func errorFindings(raw json.RawMessage) []json.RawMessage {
	var all []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &all) != nil {
		return nil
	}
	var out []json.RawMessage
	for _, f := range all {
		var head struct {
			Severity string `json:"severity"`
		}
		if json.Unmarshal(f, &head) == nil && head.Severity == "error" {
			out = append(out, f)
		}
	}
	return out
}

// carryDisplays fills the Display of changes that lack one (Diff knows only what the
// resources hold, and a member often has no display there) from the records' own
// Changes, which the engine resolved when it recorded them: same op, path and member
// value (or same value). A later record's name wins.
func carryDisplays(changes []Change, recs []Record) {
	if len(changes) == 0 {
		return
	}
	names := map[string]string{}
	for i := range recs {
		var cs []Change
		if len(recs[i].Changes) == 0 || json.Unmarshal(recs[i].Changes, &cs) != nil {
			continue
		}
		for _, c := range cs {
			if c.Display != "" {
				names[changeIdentity(&c)] = c.Display
			}
		}
	}
	for i := range changes {
		if changes[i].Display == "" {
			changes[i].Display = names[changeIdentity(&changes[i])]
		}
	}
}

// changeIdentity is what makes two changes the same for carryDisplays: the op, the path
// (case-insensitive) and the member's value (the removed one for a remove), or the
// whole value, compacted, when it is not an object with a "value".
func changeIdentity(c *Change) string {
	raw := c.New
	if strings.EqualFold(c.Op, "remove") {
		raw = c.Old
	}
	var member struct {
		Value *string `json:"value"`
	}
	val := ""
	if json.Unmarshal(raw, &member) == nil && member.Value != nil {
		val = "value\x00" + *member.Value
	} else {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			val = "json\x00" + buf.String()
		}
	}
	return strings.ToLower(c.Op) + "\x00" + strings.ToLower(c.Path) + "\x00" + val
}

// encodeResourceCursor makes the opaque cursor that continues with the resources whose
// newest record is older than record id.
func encodeResourceCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(id, 10)))
}

// decodeResourceCursor reverses encodeResourceCursor.
func decodeResourceCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 's' {
		return 0, fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	id, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	return id, nil
}
