package shadow

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type uiFixture struct {
	t       *testing.T
	store   *SQLiteStore
	srv     *httptest.Server
	mu      sync.Mutex
	changes []string
	errID   int64
	xssID   int64
}

const uiXSS = `<script>alert(1)</script>`

func newUIFixture(t *testing.T) *uiFixture {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "ui.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f := &uiFixture{t: t, store: s}
	api := &ReviewAPI{
		Store:        s,
		DefaultModes: func() map[string]Mode { return map[string]Mode{"acme": ModePreview} },
		OnModeChange: func(c string, m Mode) {
			f.mu.Lock()
			f.changes = append(f.changes, c+"="+string(m))
			f.mu.Unlock()
		},
	}
	f.srv = httptest.NewServer(http.StripPrefix("/review", api))
	t.Cleanup(f.srv.Close)

	now := time.Now().UTC()
	save := func(rec Record) int64 {
		rec.Connection, rec.Status, rec.CreatedAt, rec.LastSeenAt = "acme", StatusPending, now, now
		rec.DedupeHash = rec.Method + rec.Key + rec.ResourceID
		got, err := s.SaveRecord(t.Context(), &rec)
		if err != nil {
			t.Fatal(err)
		}
		return got.ID
	}
	save(Record{Method: "PATCH", Path: "/scim/v2/Groups/g1", ResourceType: "Group", ResourceID: "g1", Key: "Engineering",
		Operation: "patch", Deprovision: true,
		Original: StoredRequest{Method: "PATCH", URL: "/scim/v2/Groups/g1", Body: json.RawMessage(`{"Operations":[{"op":"remove"}]}`)},
		Changes: json.RawMessage(`[{"op":"remove","path":"members","old":{"value":"u2"},"display":"grace@example.com"},` +
			`{"op":"add","path":"members","new":{"value":"u3"},"display":"linus@example.com"}]`),
		Live:      json.RawMessage(`{"id":"g1","displayName":"Engineering","members":[{"value":"u1"},{"value":"u2"}]}`),
		Projected: json.RawMessage(`{"id":"g1","displayName":"Engineering","members":[{"value":"u1"},{"value":"u3"}]}`),
		Subjects:  []Subject{{Kind: "group", ID: "g1", Key: "Engineering"}, {Kind: "user", ID: "u3", Key: "linus@example.com", Change: "added"}},
	})
	f.errID = save(Record{Method: "PATCH", Path: "/scim/v2/Groups/0000-misspelled", ResourceType: "Group", ResourceID: "0000-misspelled",
		Operation: "patch", Errors: 1,
		Findings: json.RawMessage(`[{"severity":"error","code":"not_found","message":"the backend has no Group with id \"0000-misspelled\""}]`),
	})
	f.xssID = save(Record{Method: "POST", Path: "/scim/v2/Users", ResourceType: "User", Key: uiXSS, Operation: "create",
		Original:  StoredRequest{Method: "POST", URL: "/scim/v2/Users", Body: json.RawMessage(`{"userName":"` + `\u003cscript\u003ealert(1)\u003c/script\u003e"}`)},
		Effective: StoredRequest{Method: "POST", URL: "/scim/v2/Users", Text: uiXSS},
		Changes:   json.RawMessage(`[{"op":"add","path":"userName","new":"<script>alert(1)</script>"},{"op":"replace","path":"title","old":"a","new":"b"}]`),
		Findings:  json.RawMessage(`[{"severity":"warning","code":"x","message":"<script>alert(1)</script>"}]`),
		Subjects:  []Subject{{Kind: "user", Key: uiXSS}},
	})
	return f
}

var uiNoRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (f *uiFixture) req(method, path string, form url.Values, header map[string]string) (int, string, http.Header) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+"/review"+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := uiNoRedirect.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (f *uiFixture) get(path string) string {
	f.t.Helper()
	status, body, h := f.req(http.MethodGet, path, nil, nil)
	if status != http.StatusOK {
		f.t.Fatalf("GET %s: %d\n%s", path, status, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		f.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "style-src 'self'") {
		f.t.Errorf("GET %s: CSP %q", path, csp)
	}
	return body
}

// state is what a state-changing request could change.
func (f *uiFixture) state() string {
	f.t.Helper()
	infos, err := f.store.Connections(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := json.Marshal(infos)
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(b) + strings.Join(f.changes, ",")
}

var uiTokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

func uiFormToken(t *testing.T, page string) string {
	t.Helper()
	m := uiTokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token in page:\n%s", page)
	}
	return m[1]
}

func TestUIPagesRender(t *testing.T) {
	f := newUIFixture(t)
	before := f.state()

	status, _, h := f.req(http.MethodGet, "/ui/", nil, nil)
	if status != http.StatusSeeOther || h.Get("Location") != "connections" {
		t.Errorf("GET /ui/: %d Location %q", status, h.Get("Location"))
	}
	page := f.get("/ui/connections")
	for _, want := range []string{"acme", "preview", `href="./connections/acme/requests"`, "Switch to live…", `<td data-label="Pending" class="num pending">3</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("connections page lacks %q:\n%s", want, page)
		}
	}

	page = f.get("/ui/connections/acme/requests")
	for _, want := range []string{"Engineering", "grace@example.com (u2)", "linus@example.com (u3)", "removed", "added",
		"0000-misspelled", "not_found", "deprovision", `href="../../connections/acme/requests/`, `class="old">&#34;a&#34;</span> <span class="arrow">→</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("requests page lacks %q:\n%s", want, page)
		}
	}
	page = f.get("/ui/connections/acme/requests?errors=1")
	if !strings.Contains(page, "0000-misspelled") || strings.Contains(page, "grace@example.com") || !strings.Contains(page, `id="f-errors" checked`) {
		t.Errorf("errors-only page:\n%s", page)
	}
	page = f.get("/ui/connections/acme/requests?user=linus@example.com")
	if !strings.Contains(page, "Engineering") || strings.Contains(page, "0000-misspelled") {
		t.Errorf("user filter page:\n%s", page)
	}
	page = f.get("/ui/connections/acme/requests?deprovisions=1")
	if !strings.Contains(page, "Engineering") || strings.Contains(page, "0000-misspelled") {
		t.Errorf("deprovisions page:\n%s", page)
	}
	if status, _, _ := f.req(http.MethodGet, "/ui/connections/acme/requests?errors=maybe", nil, nil); status != http.StatusBadRequest {
		t.Errorf("bad flag: %d", status)
	}

	page = f.get("/ui/connections/acme/requests/" + itoa(f.errID))
	for _, want := range []string{"Attempts", "not_found", "Original request", "Effective request", "First seen"} {
		if !strings.Contains(page, want) {
			t.Errorf("detail page lacks %q:\n%s", want, page)
		}
	}
	page = f.get("/ui/connections/acme/resources")
	for _, want := range []string{"Engineering", "Live and projected", "linus@example.com (u3)"} {
		if !strings.Contains(page, want) {
			t.Errorf("resources page lacks %q:\n%s", want, page)
		}
	}
	page = f.get("/ui/connections/acme/mode?to=live")
	if !strings.Contains(page, "the IdP&#39;s next retries will be applied to the backend") {
		t.Errorf("mode confirmation:\n%s", page)
	}
	f.get("/ui/connections/acme/clear")
	if status, _, _ := f.req(http.MethodGet, "/ui/connections/acme/requests/999", nil, nil); status != http.StatusNotFound {
		t.Errorf("missing record: %d", status)
	}
	if status, _, _ := f.req(http.MethodGet, "/ui/nope", nil, nil); status != http.StatusNotFound {
		t.Errorf("unknown page: %d", status)
	}
	status, css, h := f.req(http.MethodGet, "/ui/static/style.css", nil, nil)
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/css") || !strings.Contains(css, ".chg") {
		t.Errorf("style.css: %d %q", status, h.Get("Content-Type"))
	}
	// The JSON API is still there.
	if status, body, _ := f.req(http.MethodGet, "/connections", nil, nil); status != http.StatusOK || !strings.Contains(body, `"acme"`) {
		t.Errorf("JSON API: %d %s", status, body)
	}
	if after := f.state(); after != before {
		t.Errorf("GETs changed state:\n%s\n%s", before, after)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestUIEscapesIdPData(t *testing.T) {
	f := newUIFixture(t)
	for _, p := range []string{"/ui/connections/acme/requests", "/ui/connections/acme/requests/" + itoa(f.xssID),
		"/ui/connections/acme/resources", "/ui/connections/acme/requests?user=" + url.QueryEscape(uiXSS)} {
		page := f.get(p)
		if strings.Contains(page, "<script") {
			t.Errorf("%s contains an unescaped script tag:\n%s", p, page)
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the escaped key:\n%s", p, page)
		}
	}
}

func TestUIPostNeedsTokenAndOrigin(t *testing.T) {
	f := newUIFixture(t)
	modeToken := uiFormToken(t, f.get("/ui/connections/acme/mode?to=live"))
	clearToken := uiFormToken(t, f.get("/ui/connections/acme/clear"))
	before := f.state()
	cases := []struct {
		name   string
		path   string
		form   url.Values
		header map[string]string
	}{
		{"mode without token", "/ui/connections/acme/mode", url.Values{"mode": {"live"}}, nil},
		{"mode with a bad token", "/ui/connections/acme/mode", url.Values{"mode": {"live"}, "token": {"AAAA"}}, nil},
		{"mode with the preview token", "/ui/connections/acme/mode", url.Values{"mode": {"live"}, "token": {uiToken("acme", "mode:preview")}}, nil},
		{"mode with another connection's token", "/ui/connections/acme/mode", url.Values{"mode": {"live"}, "token": {uiToken("other", "mode:live")}}, nil},
		{"mode from a foreign origin", "/ui/connections/acme/mode", url.Values{"mode": {"live"}, "token": {modeToken}},
			map[string]string{"Origin": "https://evil.example"}},
		{"mode from a null origin", "/ui/connections/acme/mode", url.Values{"mode": {"live"}, "token": {modeToken}},
			map[string]string{"Origin": "null"}},
		{"mode from a foreign referer", "/ui/connections/acme/mode", url.Values{"mode": {"live"}, "token": {modeToken}},
			map[string]string{"Referer": "https://evil.example/page"}},
		{"clear without token", "/ui/connections/acme/clear", url.Values{}, nil},
		{"clear with the mode token", "/ui/connections/acme/clear", url.Values{"token": {modeToken}}, nil},
		{"clear from a foreign origin", "/ui/connections/acme/clear", url.Values{"token": {clearToken}},
			map[string]string{"Origin": "http://evil.example"}},
	}
	for _, c := range cases {
		status, body, _ := f.req(http.MethodPost, c.path, c.form, c.header)
		if status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403\n%s", c.name, status, body)
		}
		if after := f.state(); after != before {
			t.Fatalf("%s changed state:\n%s\n%s", c.name, before, after)
		}
	}

	// With the token and a matching origin: switched, OnModeChange called, redirected.
	status, body, h := f.req(http.MethodPost, "/ui/connections/acme/mode", url.Values{"mode": {"live"}, "token": {modeToken}},
		map[string]string{"Origin": f.srv.URL})
	if status != http.StatusSeeOther || h.Get("Location") != "../../connections" {
		t.Fatalf("mode switch: %d %q\n%s", status, h.Get("Location"), body)
	}
	if modes, _ := f.store.Modes(t.Context()); modes["acme"] != ModeLive {
		t.Errorf("stored modes %v", modes)
	}
	f.mu.Lock()
	if strings.Join(f.changes, ",") != "acme=live" {
		t.Errorf("OnModeChange calls %v", f.changes)
	}
	f.mu.Unlock()
	if page := f.get("/ui/connections"); !strings.Contains(page, "Switch to preview…") {
		t.Errorf("connections page after switch:\n%s", page)
	}

	// Clear, with a same-origin Referer.
	status, _, h = f.req(http.MethodPost, "/ui/connections/acme/clear", url.Values{"token": {clearToken}},
		map[string]string{"Referer": f.srv.URL + "/review/ui/connections/acme/clear"})
	if status != http.StatusSeeOther || h.Get("Location") != "requests" {
		t.Fatalf("clear: %d %q", status, h.Get("Location"))
	}
	if recs, _, _ := f.store.Records(t.Context(), "acme", RecordQuery{}); len(recs) != 0 {
		t.Errorf("%d records left after clear", len(recs))
	}
	if page := f.get("/ui/connections/acme/requests"); !strings.Contains(page, "No recorded requests") {
		t.Errorf("requests after clear:\n%s", page)
	}
	// Other methods are refused.
	if status, _, _ := f.req(http.MethodDelete, "/ui/connections/acme/clear", nil, nil); status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", status)
	}
}
