package shadow

import (
	"bytes"
	"context"
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
//	GET  /ui/                                  → connections
//	GET  /ui/connections                       connections, modes, counts
//	GET  /ui/connections/{c}/requests          ?user=&group=&errors=1&deprovisions=1&cursor=
//	GET  /ui/connections/{c}/requests/{id}     one request: original, effective, diff, findings
//	GET  /ui/connections/{c}/resources         ?user=&group=&errors=1&type=&cursor=
//	GET  /ui/connections/{c}/mode?to=live      confirmation; POST switches (token, mode)
//	GET  /ui/connections/{c}/clear             confirmation; POST deletes the records (token)
//	GET  /ui/static/style.css
//
// Links are relative, so the page works under any prefix the caller strips. GETs change
// nothing; every POST carries a token (HMAC of connection and action under a per-process
// random key) and is refused when its Origin or Referer names another host.

//go:embed ui/templates/*.html ui/static/*.css
var uiFiles embed.FS

// uiCSP is the Content-Security-Policy of every page: no script, no foreign asset.
const uiCSP = "default-src 'self'; style-src 'self'; img-src 'self'; script-src 'none'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// uiPageSize is how many requests or resources a page shows.
const uiPageSize = 50

var (
	uiOnce   sync.Once
	uiMux    *http.ServeMux
	uiPages  map[string]*template.Template
	uiStatic fs.FS
	uiKey    = newUIKey()
)

func newUIKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read does not fail
	return k
}

type uiAPIKey struct{}

func uiInit() {
	uiOnce.Do(func() {
		uiPages = map[string]*template.Template{}
		for _, name := range []string{"connections", "requests", "request", "resources", "confirm", "error"} {
			uiPages[name] = template.Must(template.New(name).ParseFS(uiFiles,
				"ui/templates/layout.html", "ui/templates/"+name+".html"))
		}
		static, err := fs.Sub(uiFiles, "ui/static")
		if err != nil {
			panic(err)
		}
		uiStatic = static
		mux := http.NewServeMux()
		handle := func(pattern string, h func(*ReviewAPI, http.ResponseWriter, *http.Request)) {
			mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
				h(r.Context().Value(uiAPIKey{}).(*ReviewAPI), w, r)
			})
		}
		handle("GET /ui/connections", (*ReviewAPI).uiConnections)
		handle("GET /ui/connections/{c}/requests", (*ReviewAPI).uiRequests)
		handle("GET /ui/connections/{c}/requests/{id}", (*ReviewAPI).uiRequest)
		handle("GET /ui/connections/{c}/resources", (*ReviewAPI).uiResources)
		handle("GET /ui/connections/{c}/mode", (*ReviewAPI).uiModeConfirm)
		handle("POST /ui/connections/{c}/mode", (*ReviewAPI).uiModePost)
		handle("GET /ui/connections/{c}/clear", (*ReviewAPI).uiClearConfirm)
		handle("POST /ui/connections/{c}/clear", (*ReviewAPI).uiClearPost)
		mux.HandleFunc("GET /ui/static/{file}", serveUIStatic)
		uiMux = mux
	})
}

// serveUI answers a request under /ui (path relative to the review API's mount point).
func (a *ReviewAPI) serveUI(w http.ResponseWriter, r *http.Request) {
	uiInit()
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	p := r.URL.EscapedPath()
	switch p {
	case "/ui":
		uiRedirect(w, "ui/connections")
		return
	case "/ui/":
		uiRedirect(w, "connections")
		return
	}
	if path.Clean(p) != p {
		a.uiError(w, r, http.StatusNotFound, "Not found.")
		return
	}
	if _, pattern := uiMux.Handler(r); pattern == "" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
			h.Set("Allow", "GET, HEAD, POST")
			a.uiError(w, r, http.StatusMethodNotAllowed, "Method not allowed.")
			return
		}
		a.uiError(w, r, http.StatusNotFound, "Not found.")
		return
	}
	if a.Store == nil && !strings.HasPrefix(p, "/ui/static/") {
		a.uiError(w, r, http.StatusServiceUnavailable, "No store is configured.")
		return
	}
	uiMux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), uiAPIKey{}, a)))
}

func serveUIStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(uiStatic, name)
	if err != nil || !strings.HasSuffix(name, ".css") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
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

func (a *ReviewAPI) page(r *http.Request, title string, conn string, body any) uiPage {
	p := uiPage{Root: uiRoot(r), Title: title, Body: body}
	if conn != "" {
		p.Conn = &uiConnRef{Name: conn, Base: p.Root + "connections/" + url.PathEscape(conn) + "/"}
	}
	return p
}

func (a *ReviewAPI) render(w http.ResponseWriter, status int, name string, p uiPage) {
	var buf bytes.Buffer
	if err := uiPages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintln(w, "rendering the page failed")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *ReviewAPI) uiError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a.render(w, status, "error", a.page(r, http.StatusText(status), "", struct {
		Status  int
		Message string
	}{status, msg}))
}

// connectionViews lists the connections as GET /connections does: stored ones and
// configured ones, each with its effective mode.
func (a *ReviewAPI) connectionViews(ctx context.Context) ([]connectionView, error) {
	infos, err := a.Store.Connections(ctx)
	if err != nil {
		return nil, err
	}
	var defaults map[string]Mode
	if a.DefaultModes != nil {
		defaults = a.DefaultModes()
	}
	views := map[string]*connectionView{}
	for _, info := range infos {
		views[info.Name] = &connectionView{Name: info.Name, Mode: info.Mode, Pending: info.Pending,
			Errors: info.Errors, Deprovisions: info.Deprovisions}
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

// connectionView returns one connection's view (a connection nobody knows is live with
// nothing pending).
func (a *ReviewAPI) connectionView(ctx context.Context, name string) (connectionView, error) {
	views, err := a.connectionViews(ctx)
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

type uiConnRow struct {
	connectionView
	Base       string
	OtherMode  Mode
	IsPreview  bool
	HasPending bool
}

func (a *ReviewAPI) uiConnections(w http.ResponseWriter, r *http.Request) {
	views, err := a.connectionViews(r.Context())
	if err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Listing connections failed: "+err.Error())
		return
	}
	root := uiRoot(r)
	rows := make([]uiConnRow, len(views))
	for i, v := range views {
		other := ModePreview
		if v.Mode == ModePreview {
			other = ModeLive
		}
		rows[i] = uiConnRow{connectionView: v, Base: root + "connections/" + url.PathEscape(v.Name) + "/",
			OtherMode: other, IsPreview: v.Mode == ModePreview, HasPending: v.Pending > 0}
	}
	a.render(w, http.StatusOK, "connections", a.page(r, "Connections", "", rows))
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
	s := ""
	var member struct {
		Value *string `json:"value"`
	}
	if display != "" && json.Unmarshal(raw, &member) == nil && member.Value != nil {
		s = display + " (" + *member.Value + ")"
	} else {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			s = buf.String()
		} else {
			s = string(raw)
		}
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

// uiFilters are the filters of the requests and resources pages, as GET parameters.
type uiFilters struct {
	User, Group, Type   string
	Errors, Deprovision bool
	Active              bool // any filter is set
}

func uiReadFilters(v url.Values) (uiFilters, error) {
	f := uiFilters{User: v.Get("user"), Group: v.Get("group"), Type: v.Get("type")}
	var err error
	if f.Errors, err = queryFlag(v, "errors"); err != nil {
		return f, err
	}
	if f.Deprovision, err = queryFlag(v, "deprovisions"); err != nil {
		return f, err
	}
	f.Active = f.User != "" || f.Group != "" || f.Type != "" || f.Errors || f.Deprovision
	return f, nil
}

// query returns the filters as a query string with the given cursor.
func (f uiFilters) query(cursor string) string {
	v := url.Values{}
	for k, s := range map[string]string{"user": f.User, "group": f.Group, "type": f.Type, "cursor": cursor} {
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

func (a *ReviewAPI) uiRequests(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	f, err := uiReadFilters(r.URL.Query())
	if err != nil {
		a.uiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	cursor := r.URL.Query().Get("cursor")
	recs, next, err := a.Store.Records(r.Context(), conn, RecordQuery{User: f.User, Group: f.Group,
		ErrorsOnly: f.Errors, Deprovisions: f.Deprovision, Cursor: cursor, Limit: uiPageSize})
	if errors.Is(err, ErrBadCursor) {
		a.uiError(w, r, http.StatusBadRequest, "Invalid cursor.")
		return
	}
	if err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Listing requests failed: "+err.Error())
		return
	}
	p := a.page(r, "Requests of "+conn, conn, nil)
	now := time.Now()
	body := struct {
		Filters  uiFilters
		Records  []uiRecord
		NextURL  string
		FirstURL string
		Paged    bool
	}{Filters: f, Paged: cursor != ""}
	for _, rec := range recs {
		body.Records = append(body.Records, uiRecordView(rec, p.Conn.Base, now, uiMaxValue))
	}
	if next != "" {
		body.NextURL = f.query(next)
	}
	body.FirstURL = f.query("")
	p.Body = body
	a.render(w, http.StatusOK, "requests", p)
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

func (a *ReviewAPI) uiRequest(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		a.uiError(w, r, http.StatusNotFound, "No such request.")
		return
	}
	rec, err := a.Store.Record(r.Context(), conn, id)
	if errors.Is(err, ErrNotFound) {
		a.uiError(w, r, http.StatusNotFound, "No such request.")
		return
	}
	if err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Reading the request failed: "+err.Error())
		return
	}
	p := a.page(r, fmt.Sprintf("Request %d of %s", id, conn), conn, nil)
	p.Body = struct {
		uiRecord
		Original, Effective         string
		OriginalHdr, EffectiveHdr   []uiHeader
		Live, Projected             string
		Created, LastSeen           string
		OriginalURL, EffectiveURL   string
		OriginalMeth, EffectiveMeth string
	}{
		uiRecord:    uiRecordView(rec, p.Conn.Base, time.Now(), 0),
		Original:    uiPretty(rec.Original.Body, rec.Original.Text),
		Effective:   uiPretty(rec.Effective.Body, rec.Effective.Text),
		OriginalHdr: uiHeaders(rec.Original.Header), EffectiveHdr: uiHeaders(rec.Effective.Header),
		Live: uiPretty(rec.Live, ""), Projected: uiPretty(rec.Projected, ""),
		Created:     rec.CreatedAt.UTC().Format(time.RFC3339),
		LastSeen:    rec.LastSeenAt.UTC().Format(time.RFC3339),
		OriginalURL: rec.Original.URL, EffectiveURL: rec.Effective.URL,
		OriginalMeth: rec.Original.Method, EffectiveMeth: rec.Effective.Method,
	}
	a.render(w, http.StatusOK, "request", p)
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

func (a *ReviewAPI) uiResources(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	f, err := uiReadFilters(r.URL.Query())
	if err != nil {
		a.uiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	cursor := r.URL.Query().Get("cursor")
	res, next, err := PendingResources(r.Context(), a.Store, conn, ResourceQuery{User: f.User, Group: f.Group,
		ErrorsOnly: f.Errors, ResourceType: f.Type, Cursor: cursor, Limit: uiPageSize})
	if errors.Is(err, ErrBadCursor) {
		a.uiError(w, r, http.StatusBadRequest, "Invalid cursor.")
		return
	}
	if err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Listing resources failed: "+err.Error())
		return
	}
	p := a.page(r, "Users and groups of "+conn, conn, nil)
	body := struct {
		Filters   uiFilters
		Resources []uiResource
		NextURL   string
		FirstURL  string
		Paged     bool
	}{Filters: f, Paged: cursor != "", FirstURL: f.query("")}
	for _, pr := range res {
		v := uiResource{PendingResource: pr, ChangeList: uiChanges(pr.Changes, uiMaxValue),
			LiveJSON: uiPretty(pr.Live, ""), ProjJSON: uiPretty(pr.Projected, "")}
		for _, e := range pr.Errors {
			v.ErrorList = append(v.ErrorList, uiFindings(json.RawMessage("["+string(e)+"]"))...)
		}
		for _, id := range pr.Records {
			s := strconv.FormatInt(id, 10)
			v.RecordLinks = append(v.RecordLinks, uiLink{p.Conn.Base + "requests/" + s, "#" + s})
		}
		body.Resources = append(body.Resources, v)
	}
	if next != "" {
		body.NextURL = f.query(next)
	}
	p.Body = body
	a.render(w, http.StatusOK, "resources", p)
}

// uiToken is the CSRF token of an action on a connection.
func uiToken(connection, action string) string {
	m := hmac.New(sha256.New, uiKey)
	m.Write([]byte("scim-shadow-ui\x00" + connection + "\x00" + action))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// uiSameOrigin reports whether the request's Origin, else its Referer, names the host it
// was sent to; a request with neither passes (the token still has to match).
func uiSameOrigin(r *http.Request) bool {
	for _, h := range []string{"Origin", "Referer"} {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	}
	return true
}

// uiCheckPost parses a POST form and checks its origin and token for action; on failure
// it has answered 403.
func (a *ReviewAPI) uiCheckPost(w http.ResponseWriter, r *http.Request, action string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, reviewMaxBody)
	if err := r.ParseForm(); err != nil {
		a.uiError(w, r, http.StatusBadRequest, "Unreadable form.")
		return false
	}
	if !uiSameOrigin(r) {
		a.uiError(w, r, http.StatusForbidden, "Refused: the form was sent from another site.")
		return false
	}
	want := uiToken(r.PathValue("c"), action)
	if got := r.PostForm.Get("token"); !hmac.Equal([]byte(got), []byte(want)) {
		a.uiError(w, r, http.StatusForbidden, "Refused: the form's token is missing or invalid. Reload the page and try again.")
		return false
	}
	return true
}

type uiConfirm struct {
	Heading  string
	Lines    []string
	Action   string // form action, relative
	Token    string
	Field    string // a hidden field name, if any
	Value    string
	Button   string
	Danger   bool
	CancelTo string
}

func (a *ReviewAPI) uiModeConfirm(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	to, err := ParseMode(r.URL.Query().Get("to"))
	if err != nil {
		a.uiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	v, err := a.connectionView(r.Context(), conn)
	if err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Reading the connection failed: "+err.Error())
		return
	}
	p := a.page(r, "Switch "+conn+" to "+string(to), conn, nil)
	c := uiConfirm{Action: p.Conn.Base + "mode", Token: uiToken(conn, "mode:"+string(to)), Field: "mode",
		Value: string(to), CancelTo: p.Root + "connections"}
	c.Heading = fmt.Sprintf("Switch %s from %s to %s?", conn, v.Mode, to)
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
	p.Body = c
	a.render(w, http.StatusOK, "confirm", p)
}

func (a *ReviewAPI) uiModePost(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	r.Body = http.MaxBytesReader(w, r.Body, reviewMaxBody)
	if err := r.ParseForm(); err != nil {
		a.uiError(w, r, http.StatusBadRequest, "Unreadable form.")
		return
	}
	mode, err := ParseMode(r.PostForm.Get("mode"))
	if err != nil {
		a.uiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if !a.uiCheckPost(w, r, "mode:"+string(mode)) {
		return
	}
	if err := a.Store.SetMode(r.Context(), conn, mode); err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Setting the mode failed: "+err.Error())
		return
	}
	if a.OnModeChange != nil {
		a.OnModeChange(conn, mode)
	}
	uiRedirect(w, uiRoot(r)+"connections")
}

func (a *ReviewAPI) uiClearConfirm(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	v, err := a.connectionView(r.Context(), conn)
	if err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Reading the connection failed: "+err.Error())
		return
	}
	p := a.page(r, "Clear the preview of "+conn, conn, nil)
	p.Body = uiConfirm{
		Heading: "Clear the preview of " + conn + "?",
		Lines: []string{
			fmt.Sprintf("Every recorded request of %s is deleted (%d pending). This cannot be undone.", conn, v.Pending),
			"Nothing is sent to the backend. While the connection is in preview, the IdP's next retries are recorded again.",
		},
		Action: p.Conn.Base + "clear", Token: uiToken(conn, "clear"), Button: "Clear the preview", Danger: true,
		CancelTo: p.Conn.Base + "requests",
	}
	a.render(w, http.StatusOK, "confirm", p)
}

func (a *ReviewAPI) uiClearPost(w http.ResponseWriter, r *http.Request) {
	if !a.uiCheckPost(w, r, "clear") {
		return
	}
	if _, err := a.Store.DeleteRecords(r.Context(), r.PathValue("c")); err != nil {
		a.uiError(w, r, http.StatusInternalServerError, "Clearing the preview failed: "+err.Error())
		return
	}
	uiRedirect(w, "requests")
}
