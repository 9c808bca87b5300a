package shadow

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The review page: server-rendered HTML over the same Store as the JSON API, under /ui/ of
// the review API (see ReviewAPI.ServeHTTP).
//
//	GET  /ui/                                   → connections
//	GET  /ui/connections                        connections, modes, counts
//	GET  /ui/connections/{c}/requests           ?user=&group=&status=&errors=1&deprovisions=1&cursor=
//	GET  /ui/connections/{c}/requests/{id}      one request: original, effective, diff, findings
//	GET  /ui/connections/{c}/requests/{id}/approve  confirmation; POST approves (token)
//	GET  /ui/connections/{c}/requests/{id}/ignore   confirmation; POST ignores (token)
//	GET  /ui/connections/{c}/requests/approve?filter=  confirmation; POST approves every
//	     waiting request the requests page's filter (a query string) selects (token, filter)
//	GET  /ui/connections/{c}/requests/ignore?filter=   the same, ignoring
//	GET  /ui/connections/{c}/resources          ?user=&group=&errors=1&type=&cursor=
//	GET  /ui/connections/{c}/warnings           ?attribute=&cursor=: per attribute, users
//	GET  /ui/connections/{c}/warnings/users/{k} one user's warnings with example requests
//	GET  /ui/connections/{c}/mode?to=live       confirmation; POST switches (token, to)
//	GET  /ui/connections/{c}/clear              confirmation; POST deletes the records (token)
//	GET  /ui/static/style.css
//
// Links are relative, so the page works under any prefix the caller strips. GETs change
// nothing. Every state-changing action is a uiAction: its GET shows what it will do, its
// POST must carry the token of the confirmation (an HMAC of the path and the value under
// the CSRF key) and must not come from another origin (http.CrossOriginProtection).

//go:embed ui/templates/*.html ui/static/*.css
var uiFiles embed.FS

// uiCSP is the Content-Security-Policy of every page: no script, no foreign asset.
const uiCSP = "default-src 'self'; style-src 'self'; img-src 'self'; script-src 'none'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// uiPageSize is how many requests, resources or users a page shows.
const uiPageSize = 50

// uiStaticPattern is the route of the style sheet: it needs no store.
const uiStaticPattern = "GET /ui/static/"

// uiProcessKey keys the form tokens when ReviewAPI.CSRFSecret is empty.
var uiProcessKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read does not fail
	return k
}()

// uiTemplates are the pages, each parsed with the layout.
var uiTemplates = sync.OnceValue(func() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"connections", "requests", "request", "resources", "warnings", "userwarnings", "confirm", "error"} {
		pages[name] = template.Must(template.New(name).ParseFS(uiFiles,
			"ui/templates/layout.html", "ui/templates/"+name+".html"))
	}
	return pages
})

// uiActions are the state-changing actions. Approve and ignore decide through
// ReviewAPI.decide, as the JSON API does; their buttons are in the "record-actions" block
// of layout.html and the bulk form of requests.html.
var uiActions = []uiAction{
	{pattern: "/ui/connections/{c}/mode", field: "to", confirm: (*ReviewAPI).confirmMode, apply: (*ReviewAPI).applyMode},
	{pattern: "/ui/connections/{c}/clear", confirm: (*ReviewAPI).confirmClear, apply: (*ReviewAPI).applyClear},
	{pattern: "/ui/connections/{c}/requests/{id}/approve", confirm: confirmDecision(StatusApproved), apply: applyDecision(StatusApproved)},
	{pattern: "/ui/connections/{c}/requests/{id}/ignore", confirm: confirmDecision(StatusIgnored), apply: applyDecision(StatusIgnored)},
	{pattern: "/ui/connections/{c}/requests/approve", field: "filter", confirm: confirmBulk(StatusApproved), apply: applyBulk(StatusApproved)},
	{pattern: "/ui/connections/{c}/requests/ignore", field: "filter", confirm: confirmBulk(StatusIgnored), apply: applyBulk(StatusIgnored)},
}

// uiRoutes is the mux of the review page.
var uiRoutes = sync.OnceValue(func() *http.ServeMux {
	routes := []apiRoute{
		uiRoute("GET /ui/connections", (*ReviewAPI).uiConnections),
		uiRoute("GET /ui/connections/{c}/requests", (*ReviewAPI).uiRequests),
		uiRoute("GET /ui/connections/{c}/requests/{id}", (*ReviewAPI).uiRequest),
		uiRoute("GET /ui/connections/{c}/resources", (*ReviewAPI).uiResources),
		uiRoute("GET /ui/connections/{c}/warnings", (*ReviewAPI).uiWarnings),
		uiRoute("GET /ui/connections/{c}/warnings/users/{key}", (*ReviewAPI).uiUserWarnings),
		{uiStaticPattern + "{file}", func(_ *ReviewAPI, w http.ResponseWriter, r *http.Request) { serveUIStatic(w, r) }},
	}
	for _, act := range uiActions {
		routes = append(routes, act.routes()...)
	}
	return newAPIMux(routes)
})

// serveUI answers a request under /ui (path relative to the review API's mount point).
func (a *ReviewAPI) serveUI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	switch r.URL.EscapedPath() {
	case "/ui":
		uiRedirect(w, "ui/connections")
		return
	case "/ui/":
		uiRedirect(w, "connections")
		return
	}
	a.serveMux(uiRoutes(), w, r, func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		a.uiError(w, r, &uiStatusError{status, uiCapital(msg) + "."})
	})
}

func serveUIStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(uiFiles, "ui/static/"+name)
	if err != nil || !strings.HasSuffix(name, ".css") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}

// uiPageFor returns the page of a browser's GET of a JSON endpoint (its Accept names
// text/html), as a URL relative to the request's.
func uiPageFor(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return "", false
	}
	p := r.URL.EscapedPath()
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	var page string
	switch {
	case p == "" || p == "/" || p == "/connections":
		page = "connections"
	case len(segs) >= 3 && segs[0] == "connections":
		rest := segs[2:]
		if rest[0] == "records" {
			rest[0] = "requests"
		}
		page = "connections/" + segs[1] + "/" + strings.Join(rest, "/")
	default:
		return "", false
	}
	return strings.Repeat("../", max(0, len(segs)-1)) + "ui/" + page, true
}

// uiRedirect answers 303 with a relative Location: the browser resolves it against the
// URL it requested, so the stripped prefix is kept.
func uiRedirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

// uiRoot is the relative path from the page at r to /ui/.
func uiRoot(r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/ui/")
	if n := strings.Count(rest, "/"); n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// uiConnBase is the relative URL of /ui/connections/{conn}/ from the page at r.
func uiConnBase(r *http.Request, conn string) string {
	return uiRoot(r) + "connections/" + url.PathEscape(conn) + "/"
}

// uiView is what a page handler answers: a page, or a redirect.
type uiView struct {
	template string // the page's template
	title    string
	conn     string // the connection the page is about, if any
	body     any    // the page's own data
	redirect string // if set: a 303 to this relative URL instead of a page
}

// uiStatusError is an error the page shows with its status and message.
type uiStatusError struct {
	status int
	msg    string
}

func (e *uiStatusError) Error() string { return e.msg }

// uiRoute adapts a page handler: its error becomes an error page, its view a page.
func uiRoute(pattern string, h func(*ReviewAPI, *http.Request) (uiView, error)) apiRoute {
	return apiRoute{pattern, func(a *ReviewAPI, w http.ResponseWriter, r *http.Request) {
		v, err := h(a, r)
		switch {
		case err != nil:
			a.uiError(w, r, err)
		case v.redirect != "":
			uiRedirect(w, v.redirect)
		default:
			a.render(w, r, http.StatusOK, v)
		}
	}}
}

// uiPage is what every template gets.
type uiPage struct {
	Root  string     // relative path to /ui/
	Title string     // the page's title
	Conn  *uiConnRef // the connection the page is about, if any
	Body  any        // the page's own data
}

// uiConnRef names a connection and the relative base of its pages.
type uiConnRef struct {
	Name string
	Base string // relative URL of /ui/connections/{c}/
}

func (a *ReviewAPI) render(w http.ResponseWriter, r *http.Request, status int, v uiView) {
	p := uiPage{Root: uiRoot(r), Title: v.title, Body: v.body}
	if v.conn != "" {
		p.Conn = &uiConnRef{Name: v.conn, Base: uiConnBase(r, v.conn)}
	}
	var buf bytes.Buffer
	if err := uiTemplates()[v.template].ExecuteTemplate(&buf, "layout", p); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintf(w, "rendering the page failed: %v\n", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// uiError shows err on an error page: a uiStatusError with its status, else 500.
func (a *ReviewAPI) uiError(w http.ResponseWriter, r *http.Request, err error) {
	se := &uiStatusError{http.StatusInternalServerError, "Something failed: " + err.Error()}
	errors.As(err, &se)
	a.render(w, r, se.status, uiView{template: "error", title: http.StatusText(se.status), body: struct {
		Status  int
		Message string
	}{se.status, se.msg}})
}

// uiQueryError maps a store's ErrBadCursor to 400.
func uiQueryError(err error, what string) error {
	if errors.Is(err, ErrBadCursor) {
		return &uiStatusError{http.StatusBadRequest, "Invalid cursor."}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// connectionView returns one connection's view (a connection nobody knows is live with
// nothing pending).
func (a *ReviewAPI) connectionView(r *http.Request, name string) (connectionView, error) {
	views, err := a.connectionViews(r.Context())
	if err != nil {
		return connectionView{}, err
	}
	for _, v := range views {
		if v.Name == name {
			return v, nil
		}
	}
	return connectionView{Name: name, Mode: ModeLive}, nil
}

// uiConnRow is one connection of the connections page.
type uiConnRow struct {
	connectionView
	Base      string
	OtherMode Mode
}

func (a *ReviewAPI) uiConnections(r *http.Request) (uiView, error) {
	views, err := a.connectionViews(r.Context())
	if err != nil {
		return uiView{}, err
	}
	rows := make([]uiConnRow, len(views))
	for i, v := range views {
		other := ModePreview
		if v.Mode == ModePreview {
			other = ModeLive
		}
		rows[i] = uiConnRow{connectionView: v, Base: uiConnBase(r, v.Name), OtherMode: other}
	}
	return uiView{template: "connections", title: "Connections", body: rows}, nil
}

// uiChange is one change as shown: a mark and a word, so colour is not the only signal.
type uiChange struct {
	Kind string // add, remove, replace
	Mark string // +, −, ~
	Word string // added, removed, changed
	Path string
	Old  string
	New  string
}

// uiMaxValue bounds a value shown in a list; the detail shows whole values.
const uiMaxValue = 200

func uiChanges(cs []Change, maxLen int) []uiChange {
	out := make([]uiChange, 0, len(cs))
	for _, c := range cs {
		u := uiChange{Path: c.Path}
		switch strings.ToLower(c.Op) {
		case "add":
			u.Kind, u.Mark, u.Word = "add", "+", "added"
		case "remove":
			u.Kind, u.Mark, u.Word = "remove", "−", "removed"
		default:
			u.Kind, u.Mark, u.Word = "replace", "~", "changed"
		}
		if u.Path == "" {
			u.Path = "(the resource)"
		}
		u.Old = uiValue(c.Old, c.Display, maxLen)
		u.New = uiValue(c.New, c.Display, maxLen)
		out = append(out, u)
	}
	return out
}

// uiValue shows a change's value: a member by its display name and value, else compact
// JSON, cut to maxLen runes (0: no limit).
func uiValue(raw json.RawMessage, display string, maxLen int) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	var member struct {
		Value *string `json:"value"`
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	switch {
	case display != "" && json.Unmarshal(raw, &member) == nil && member.Value != nil:
		s = display + " (" + *member.Value + ")"
	case dec.Decode(&v) == nil:
		s = jsonText(v) // compact, and "<" rather than "\u003c"
	default:
		s = string(raw)
	}
	if maxLen > 0 && utf8.RuneCountInString(s) > maxLen {
		s = string([]rune(s)[:maxLen]) + "…"
	}
	return s
}

// uiFinding is one finding of a record.
type uiFinding struct {
	Severity  string `json:"severity"`
	Code      string `json:"code"`
	Attribute string `json:"attribute"`
	Source    string `json:"source"`
	Path      string `json:"path"`
	Message   string `json:"message"`
}

func uiFindings(raw json.RawMessage) []uiFinding {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var fs []uiFinding
	if json.Unmarshal(raw, &fs) != nil {
		return []uiFinding{{Severity: "info", Code: "unreadable", Message: string(raw)}}
	}
	return fs
}

// uiRecord is one request as shown in a list or the detail.
type uiRecord struct {
	Record
	URL         string
	Age         string
	ChangeList  []uiChange
	FindingList []uiFinding
}

// CanApprove reports whether the record waits for an approval (held or failed).
func (r uiRecord) CanApprove() bool { return decidable(r.Status, StatusApproved) }

// CanIgnore reports whether the record can be ignored (held, failed or approved).
func (r uiRecord) CanIgnore() bool { return decidable(r.Status, StatusIgnored) }

func uiRecordView(rec Record, base string, now time.Time, maxLen int) uiRecord {
	var cs []Change
	if len(rec.Changes) > 0 {
		_ = json.Unmarshal(rec.Changes, &cs)
	}
	return uiRecord{
		Record:      rec,
		URL:         base + "requests/" + strconv.FormatInt(rec.ID, 10),
		Age:         uiAge(now.Sub(rec.LastSeenAt)),
		ChangeList:  uiChanges(cs, maxLen),
		FindingList: uiFindings(rec.Findings),
	}
}

// uiAge is a short duration: 42s, 5m, 3h, 2d.
func uiAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(max(0, int(d/time.Second))) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}

// uiTime is a time as the pages show it.
func uiTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// uiFilters are the filters of the requests and resources pages, as GET parameters, so a
// filtered view can be shared by its URL.
type uiFilters struct {
	User, Group, Type   string
	Status              RecordStatus // the requests page only
	Errors, Deprovision bool
	Active              bool // any filter is set
}

// uiStatuses are the choices of the status filter.
var uiStatuses = []RecordStatus{StatusHeld, StatusFailed, StatusApproved, StatusPending, StatusIgnored,
	StatusForwarding, StatusForwarded, StatusObserved}

// Statuses are the choices of the status filter.
func (uiFilters) Statuses() []RecordStatus { return uiStatuses }

func uiReadFilters(v url.Values) (uiFilters, error) {
	f := uiFilters{User: v.Get("user"), Group: v.Get("group"), Type: v.Get("type"), Status: RecordStatus(v.Get("status"))}
	var err error
	if f.Errors, err = queryFlag(v, "errors"); err == nil {
		f.Deprovision, err = queryFlag(v, "deprovisions")
	}
	if err == nil && f.Status != "" && !validStatuses[f.Status] {
		err = fmt.Errorf("unknown status %q", f.Status)
	}
	if err != nil {
		return f, &uiStatusError{http.StatusBadRequest, err.Error()}
	}
	f.Active = f.User != "" || f.Group != "" || f.Type != "" || f.Status != "" || f.Errors || f.Deprovision
	return f, nil
}

// decision is the DecisionFilter of the requests page's filters.
func (f uiFilters) decision() DecisionFilter {
	return DecisionFilter{User: f.User, Group: f.Group, Deprovisions: f.Deprovision, status: f.Status, errorsOnly: f.Errors}
}

// describe names the filters in words.
func (f uiFilters) describe() string {
	var parts []string
	for _, p := range [][2]string{{"status", string(f.Status)}, {"user", f.User}, {"group", f.Group}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+strconv.Quote(p[1]))
		}
	}
	if f.Errors {
		parts = append(parts, "with predicted errors")
	}
	if f.Deprovision {
		parts = append(parts, "deprovisions")
	}
	if len(parts) == 0 {
		return "no filter"
	}
	return strings.Join(parts, ", ")
}

// CanApproveAll and CanIgnoreAll report whether the requests page offers approving or
// ignoring every request its filters show: only when they select a status that waits
// for that decision.
func (f uiFilters) CanApproveAll() bool { return f.Status != "" && decidable(f.Status, StatusApproved) }

// CanIgnoreAll: see CanApproveAll.
func (f uiFilters) CanIgnoreAll() bool { return f.Status != "" && decidable(f.Status, StatusIgnored) }

// Encoded is the filters as a query string without a cursor: the bulk actions' value.
func (f uiFilters) Encoded() string { return strings.TrimPrefix(f.query(""), "?") }

// query returns the filters as a query string with the given cursor.
func (f uiFilters) query(cursor string) string {
	v := url.Values{}
	for k, s := range map[string]string{"user": f.User, "group": f.Group, "type": f.Type, "status": string(f.Status), "cursor": cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Errors {
		v.Set("errors", "1")
	}
	if f.Deprovision {
		v.Set("deprovisions", "1")
	}
	return "?" + v.Encode()
}

// uiPager links the first and the next page of a list.
type uiPager struct {
	FirstURL string // shown when the page is not the first
	NextURL  string // "" on the last page
}

func newUIPager(cursor, next string, query func(cursor string) string) uiPager {
	var p uiPager
	if cursor != "" {
		p.FirstURL = query("")
	}
	if next != "" {
		p.NextURL = query(next)
	}
	return p
}

func (a *ReviewAPI) uiRequests(r *http.Request) (uiView, error) {
	conn := r.PathValue("c")
	f, err := uiReadFilters(r.URL.Query())
	if err != nil {
		return uiView{}, err
	}
	cursor := r.URL.Query().Get("cursor")
	recs, next, err := a.Store.Records(r.Context(), conn, RecordQuery{User: f.User, Group: f.Group, Status: f.Status,
		ErrorsOnly: f.Errors, Deprovisions: f.Deprovision, Cursor: cursor, Limit: uiPageSize})
	if err != nil {
		return uiView{}, uiQueryError(err, "listing requests")
	}
	body := struct {
		Filters uiFilters
		Records []uiRecord
		uiPager
	}{Filters: f, uiPager: newUIPager(cursor, next, f.query)}
	now := time.Now()
	for _, rec := range recs {
		body.Records = append(body.Records, uiRecordView(rec, uiConnBase(r, conn), now, uiMaxValue))
	}
	return uiView{template: "requests", title: "Requests of " + conn, conn: conn, body: body}, nil
}

// uiPretty indents JSON; a body that is not JSON is shown as it is.
func uiPretty(raw json.RawMessage, text string) string {
	if len(raw) == 0 {
		return text
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

type uiHeader struct{ Name, Value string }

func uiHeaders(h map[string][]string) []uiHeader {
	var out []uiHeader
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, uiHeader{k, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// uiRequestPair is a request as the IdP sent it and as the backend would get it, each
// body laid out in lines with the lines that differ from the other side marked.
type uiRequestPair struct {
	OriginalMeth, OriginalURL   string
	EffectiveMeth, EffectiveURL string
	Original, Effective         []uiLine
	OriginalHdr, EffectiveHdr   []uiHeader
	Rewrites                    uiRewrites
}

func newUIRequestPair(original, effective StoredRequest) uiRequestPair {
	o, e := layoutBody(original), layoutBody(effective)
	return uiRequestPair{
		OriginalMeth: original.Method, OriginalURL: original.URL,
		EffectiveMeth: effective.Method, EffectiveURL: effective.URL,
		Original: o.marked(e), Effective: e.marked(o),
		OriginalHdr: uiHeaders(original.Header), EffectiveHdr: uiHeaders(effective.Header),
		Rewrites: o.compare(e),
	}
}

// uiPathRecord reads the record of the path's {c} and {id}.
func (a *ReviewAPI) uiPathRecord(r *http.Request) (Record, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return Record{}, &uiStatusError{http.StatusNotFound, "No such request."}
	}
	rec, err := a.Store.Record(r.Context(), r.PathValue("c"), id)
	if errors.Is(err, ErrNotFound) {
		return Record{}, &uiStatusError{http.StatusNotFound, "No such request."}
	}
	if err != nil {
		return Record{}, fmt.Errorf("reading request %d: %w", id, err)
	}
	return rec, nil
}

func (a *ReviewAPI) uiRequest(r *http.Request) (uiView, error) {
	conn := r.PathValue("c")
	rec, err := a.uiPathRecord(r)
	if err != nil {
		return uiView{}, err
	}
	id := rec.ID
	body := struct {
		uiRecord
		Pair              uiRequestPair
		Live, Projected   string
		Created, LastSeen string
	}{
		uiRecord: uiRecordView(rec, uiConnBase(r, conn), time.Now(), 0),
		Pair:     newUIRequestPair(rec.Original, rec.Effective),
		Live:     uiPretty(rec.Live, ""), Projected: uiPretty(rec.Projected, ""),
		Created: uiTime(rec.CreatedAt), LastSeen: uiTime(rec.LastSeenAt),
	}
	return uiView{template: "request", title: fmt.Sprintf("Request %d of %s", id, conn), conn: conn, body: body}, nil
}

type uiResource struct {
	PendingResource
	ChangeList  []uiChange
	ErrorList   []uiFinding
	RecordLinks []uiLink
	LiveJSON    string
	ProjJSON    string
}

type uiLink struct{ URL, Text string }

func (a *ReviewAPI) uiResources(r *http.Request) (uiView, error) {
	conn := r.PathValue("c")
	f, err := uiReadFilters(r.URL.Query())
	if err != nil {
		return uiView{}, err
	}
	cursor := r.URL.Query().Get("cursor")
	res, next, err := PendingResources(r.Context(), a.Store, conn, ResourceQuery{User: f.User, Group: f.Group,
		ErrorsOnly: f.Errors, ResourceType: f.Type, Cursor: cursor, Limit: uiPageSize})
	if err != nil {
		return uiView{}, uiQueryError(err, "listing resources")
	}
	body := struct {
		Filters   uiFilters
		Resources []uiResource
		uiPager
	}{Filters: f, uiPager: newUIPager(cursor, next, f.query)}
	base := uiConnBase(r, conn)
	for _, pr := range res {
		v := uiResource{PendingResource: pr, ChangeList: uiChanges(pr.Changes, uiMaxValue),
			LiveJSON: uiPretty(pr.Live, ""), ProjJSON: uiPretty(pr.Projected, "")}
		for _, e := range pr.Errors {
			v.ErrorList = append(v.ErrorList, uiFindings(json.RawMessage("["+string(e)+"]"))...)
		}
		for _, id := range pr.Records {
			s := strconv.FormatInt(id, 10)
			v.RecordLinks = append(v.RecordLinks, uiLink{base + "requests/" + s, "#" + s})
		}
		body.Resources = append(body.Resources, v)
	}
	return uiView{template: "resources", title: "Users and groups of " + conn, conn: conn, body: body}, nil
}

// uiWarningAttr is one attribute of the warnings page.
type uiWarningAttr struct {
	WarningAttribute
	UsersURL string // the users missing it
}

// uiWarningUser is one user (or group) of the warnings page.
type uiWarningUser struct {
	WarningUser
	URL      string
	LastSeen string
}

func (a *ReviewAPI) uiWarnings(r *http.Request) (uiView, error) {
	conn := r.PathValue("c")
	q := r.URL.Query()
	attribute, cursor := q.Get("attribute"), q.Get("cursor")
	attrs, err := a.Store.WarningSummary(r.Context(), conn)
	if err != nil {
		return uiView{}, fmt.Errorf("listing warnings: %w", err)
	}
	users, next, err := a.Store.WarningUsers(r.Context(), conn, attribute, cursor, uiPageSize)
	if err != nil {
		return uiView{}, uiQueryError(err, "listing users with warnings")
	}
	query := func(cursor string) string {
		v := url.Values{}
		if attribute != "" {
			v.Set("attribute", attribute)
		}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		return "?" + v.Encode()
	}
	body := struct {
		Attribute  string
		Attributes []uiWarningAttr
		Users      []uiWarningUser
		uiPager
	}{Attribute: attribute, uiPager: newUIPager(cursor, next, query)}
	for _, at := range attrs {
		body.Attributes = append(body.Attributes, uiWarningAttr{at, "?attribute=" + url.QueryEscape(at.Attribute)})
	}
	base := uiConnBase(r, conn)
	for _, u := range users {
		body.Users = append(body.Users, uiWarningUser{u, base + "warnings/users/" + url.PathEscape(u.Key), uiTime(u.LastSeenAt)})
	}
	return uiView{template: "warnings", title: "Warnings of " + conn, conn: conn, body: body}, nil
}

// uiUserWarning is one warning of a user's warnings page, with its example request.
type uiUserWarning struct {
	warningView
	FirstSeen, LastSeen string
	ExampleURL          string // the example's detail page; "" when it is gone
	Example             *uiRequestPair
}

func (a *ReviewAPI) uiUserWarnings(r *http.Request) (uiView, error) {
	conn := r.PathValue("c")
	key, views, err := a.userWarningViews(r.Context(), conn, r.PathValue("key"))
	if err != nil {
		return uiView{}, err
	}
	body := struct {
		Key         string
		Warnings    []uiUserWarning
		WarningsURL string
	}{Key: key, WarningsURL: uiConnBase(r, conn) + "warnings"}
	for _, v := range views {
		w := uiUserWarning{warningView: v, FirstSeen: uiTime(v.FirstSeenAt), LastSeen: uiTime(v.LastSeenAt)}
		if v.Example != nil {
			pair := newUIRequestPair(v.Example.Original, v.Example.Effective)
			w.Example = &pair
			w.ExampleURL = uiConnBase(r, conn) + "requests/" + strconv.FormatInt(v.Example.RecordID, 10)
		}
		body.Warnings = append(body.Warnings, w)
	}
	return uiView{template: "userwarnings", title: "Warnings of " + key, conn: conn, body: body}, nil
}

// uiAction is a state-changing action of the review page. GET on its path shows a
// confirmation of what will happen (confirm); POST on it does it (apply) when the form
// carries the confirmation's token and the request does not come from another origin.
// value is the action's parameter: the query's field on GET, the form's on POST.
type uiAction struct {
	pattern string // path pattern under /ui/
	field   string // the parameter's name; "" when the action has none
	confirm func(a *ReviewAPI, r *http.Request, value string) (uiConfirm, error)
	apply   func(a *ReviewAPI, r *http.Request, value string) (redirect string, err error)
}

// uiConfirm is the confirmation page of an action.
type uiConfirm struct {
	Heading  string
	Lines    []string
	Button   string
	Danger   bool
	CancelTo string
	// Set by the action's route:
	Action string // the form's action, relative
	Token  string
	Field  string // the parameter's hidden field, if any
	Value  string
}

// uiCrossOrigin refuses state-changing requests a browser sends from another origin.
var uiCrossOrigin = http.NewCrossOriginProtection()

func (act uiAction) routes() []apiRoute {
	show := func(a *ReviewAPI, r *http.Request) (uiView, error) {
		var value string
		if act.field != "" {
			value = r.URL.Query().Get(act.field)
		}
		c, err := act.confirm(a, r, value)
		if err != nil {
			return uiView{}, err
		}
		c.Action, c.Token, c.Field, c.Value = path.Base(r.URL.EscapedPath()), a.uiToken(r.URL.Path, value), act.field, value
		return uiView{template: "confirm", title: c.Heading, conn: r.PathValue("c"), body: c}, nil
	}
	do := func(a *ReviewAPI, r *http.Request) (uiView, error) {
		if err := uiCrossOrigin.Check(r); err != nil {
			return uiView{}, &uiStatusError{http.StatusForbidden, "Refused: the form was sent from another site."}
		}
		r.Body = http.MaxBytesReader(nil, r.Body, reviewMaxBody)
		if err := r.ParseForm(); err != nil {
			return uiView{}, &uiStatusError{http.StatusBadRequest, "Unreadable form."}
		}
		var value string
		if act.field != "" {
			value = r.PostForm.Get(act.field)
		}
		want := a.uiToken(r.URL.Path, value)
		if got := r.PostForm.Get("token"); !hmac.Equal([]byte(got), []byte(want)) {
			return uiView{}, &uiStatusError{http.StatusForbidden,
				"Refused: the form's token is missing or invalid. Go back, reload the page and try again."}
		}
		redirect, err := act.apply(a, r, value)
		return uiView{redirect: redirect}, err
	}
	return []apiRoute{uiRoute("GET "+act.pattern, show), uiRoute("POST "+act.pattern, do)}
}

// uiToken is the CSRF token of an action: an HMAC of its path (below the stripped
// prefix) and its parameter under the CSRF key.
func (a *ReviewAPI) uiToken(actionPath, value string) string {
	key := uiProcessKey
	if a.CSRFSecret != "" {
		sum := sha256.Sum256([]byte("scim-shadow review csrf\x00" + a.CSRFSecret))
		key = sum[:]
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(actionPath + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *ReviewAPI) confirmMode(r *http.Request, value string) (uiConfirm, error) {
	conn := r.PathValue("c")
	to, err := ParseMode(value)
	if err != nil {
		return uiConfirm{}, &uiStatusError{http.StatusBadRequest, err.Error()}
	}
	v, err := a.connectionView(r, conn)
	if err != nil {
		return uiConfirm{}, err
	}
	c := uiConfirm{Heading: fmt.Sprintf("Switch %s from %s to %s?", conn, v.Mode, to), CancelTo: uiRoot(r) + "connections"}
	if to == ModeLive {
		c.Button, c.Danger = "Switch to live", true
		c.Lines = []string{
			"Writes are forwarded to the backend from now on, and the IdP's next retries will be applied to the backend.",
			fmt.Sprintf("%d recorded requests are pending (%d with predicted errors, %d deprovisions); each is applied when the IdP retries it.",
				v.Pending, v.Errors, v.Deprovisions),
		}
	} else {
		c.Button = "Switch to preview"
		c.Lines = []string{"Writes are recorded and answered with a retryable rejection; nothing reaches the backend until the connection is switched to live."}
	}
	return c, nil
}

func (a *ReviewAPI) applyMode(r *http.Request, value string) (string, error) {
	conn := r.PathValue("c")
	mode, err := ParseMode(value)
	if err != nil {
		return "", &uiStatusError{http.StatusBadRequest, err.Error()}
	}
	if err := a.Store.SetMode(r.Context(), conn, mode); err != nil {
		return "", fmt.Errorf("setting the mode of %s: %w", conn, err)
	}
	if a.OnModeChange != nil {
		a.OnModeChange(conn, mode)
	}
	return uiRoot(r) + "connections", nil
}

func (a *ReviewAPI) confirmClear(r *http.Request, _ string) (uiConfirm, error) {
	conn := r.PathValue("c")
	v, err := a.connectionView(r, conn)
	if err != nil {
		return uiConfirm{}, err
	}
	return uiConfirm{
		Heading: "Clear the preview of " + conn + "?",
		Lines: []string{
			fmt.Sprintf("Every recorded request of %s is deleted (%d pending). This cannot be undone.", conn, v.Pending),
			"Nothing is sent to the backend. While the connection is in preview, the IdP's next retries are recorded again.",
		},
		Button: "Clear the preview", Danger: true, CancelTo: "requests",
	}, nil
}

func (a *ReviewAPI) applyClear(r *http.Request, _ string) (string, error) {
	conn := r.PathValue("c")
	if _, err := a.Store.DeleteRecords(r.Context(), conn); err != nil {
		return "", fmt.Errorf("clearing the preview of %s: %w", conn, err)
	}
	return "requests", nil
}

// uiDecisionText says what approving (to: approved) or ignoring a request does.
func uiDecisionText(to RecordStatus) string {
	if to == StatusApproved {
		return "Nothing is sent now: the IdP's next identical retry will be forwarded to the backend."
	}
	return "The backend never gets this write: later retries get a final 403 and the IdP stops retrying."
}

// uiDecisionVerb is the button's word of a decision.
func uiDecisionVerb(to RecordStatus) string {
	if to == StatusApproved {
		return "Approve"
	}
	return "Ignore"
}

func confirmDecision(to RecordStatus) func(*ReviewAPI, *http.Request, string) (uiConfirm, error) {
	return func(a *ReviewAPI, r *http.Request, _ string) (uiConfirm, error) {
		rec, err := a.uiPathRecord(r)
		if err != nil {
			return uiConfirm{}, err
		}
		if !decidable(rec.Status, to) {
			return uiConfirm{}, &uiStatusError{http.StatusConflict, uiCapital(notWaitingMessage(rec.ID, rec.Status)) + "."}
		}
		what := rec.Key
		if what == "" {
			what = rec.ResourceID
		}
		c := uiConfirm{
			Heading: fmt.Sprintf("%s request #%d of %s?", uiDecisionVerb(to), rec.ID, rec.Connection),
			Lines: []string{
				strings.TrimSpace(fmt.Sprintf("%s %s %s (%s), status %s.", rec.Method, rec.ResourceType, what, rec.Path, rec.Status)),
				uiDecisionText(to),
			},
			Button:   uiDecisionVerb(to),
			Danger:   to == StatusApproved && (rec.Deprovision || rec.Method == http.MethodDelete),
			CancelTo: "../" + strconv.FormatInt(rec.ID, 10),
		}
		if rec.HoldReason != "" {
			c.Lines = slices.Insert(c.Lines, 1, "Held because: "+rec.HoldReason)
		}
		return c, nil
	}
}

func applyDecision(to RecordStatus) func(*ReviewAPI, *http.Request, string) (string, error) {
	return func(a *ReviewAPI, r *http.Request, _ string) (string, error) {
		rec, err := a.uiPathRecord(r)
		if err != nil {
			return "", err
		}
		changed, err := a.decide(r.Context(), rec.Connection, []int64{rec.ID}, to)
		if err != nil {
			return "", fmt.Errorf("deciding request %d: %w", rec.ID, err)
		}
		if len(changed) == 0 {
			return "", &uiStatusError{http.StatusConflict, uiCapital(notWaitingMessage(rec.ID, rec.Status)) + "."}
		}
		return "../" + strconv.FormatInt(rec.ID, 10), nil
	}
}

// uiBulkFilter reads a bulk action's filter: a requests page's query string that selects
// a status waiting for the decision.
func uiBulkFilter(value string, to RecordStatus) (uiFilters, error) {
	v, err := url.ParseQuery(value)
	if err != nil {
		return uiFilters{}, &uiStatusError{http.StatusBadRequest, "Unreadable filter."}
	}
	f, err := uiReadFilters(v)
	if err == nil && (f.Status == "" || !decidable(f.Status, to)) {
		err = &uiStatusError{http.StatusBadRequest, "Filter the requests by a status that can be " + string(to) + " first."}
	}
	return f, err
}

func confirmBulk(to RecordStatus) func(*ReviewAPI, *http.Request, string) (uiConfirm, error) {
	return func(a *ReviewAPI, r *http.Request, value string) (uiConfirm, error) {
		conn := r.PathValue("c")
		f, err := uiBulkFilter(value, to)
		if err != nil {
			return uiConfirm{}, err
		}
		ids, err := a.selectWaiting(r.Context(), conn, f.decision(), to)
		if err != nil {
			return uiConfirm{}, err
		}
		back := "../requests?" + f.Encoded()
		if len(ids) == 0 {
			return uiConfirm{}, &uiStatusError{http.StatusConflict, "No request matches the filter (" + f.describe() + ")."}
		}
		plural := "s"
		if len(ids) == 1 {
			plural = ""
		}
		return uiConfirm{
			Heading: fmt.Sprintf("%s %d request%s of %s?", uiDecisionVerb(to), len(ids), plural, conn),
			Lines: []string{
				fmt.Sprintf("%d request%s match the filter (%s), on every page of the list. The filter is applied again when you confirm.", len(ids), plural, f.describe()),
				"For each: " + uiDecisionText(to),
			},
			Button:   fmt.Sprintf("%s %d request%s", uiDecisionVerb(to), len(ids), plural),
			Danger:   to == StatusApproved,
			CancelTo: back,
		}, nil
	}
}

func applyBulk(to RecordStatus) func(*ReviewAPI, *http.Request, string) (string, error) {
	return func(a *ReviewAPI, r *http.Request, value string) (string, error) {
		f, err := uiBulkFilter(value, to)
		if err != nil {
			return "", err
		}
		if _, err := a.decideFilter(r.Context(), r.PathValue("c"), f.decision(), to); err != nil {
			return "", fmt.Errorf("deciding the requests of the filter: %w", err)
		}
		return "../requests?" + f.Encoded(), nil
	}
}

// uiCapital is s with its first letter upper-cased.
func uiCapital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
