package shadow

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// uiFixture is the review API's fixture (mounted under /scim-shadow) with records and a
// warning for the review page.
type uiFixture struct {
	*reviewFixture
	errID int64
	xssID int64
	adaID int64
}

const uiXSS = `<script>alert(1)</script>`

func newUIFixture(t *testing.T) *uiFixture {
	t.Helper()
	f := &uiFixture{reviewFixture: newReviewFixture(t)}
	s := f.store
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
	// A create the rules rewrote: favorite_color became favoriteColor.
	f.adaID = save(Record{Method: "POST", Path: "/scim/v2/Users", ResourceType: "User", Key: "ada@example.com", Operation: "create",
		Original:  StoredRequest{Method: "POST", URL: "/scim/v2/Users", Body: json.RawMessage(`{"userName":"ada@example.com","favorite_color":"teal","name":{"givenName":"Ada"}}`)},
		Effective: StoredRequest{Method: "POST", URL: "/scim/v2/Users", Body: json.RawMessage(`{"userName":"ada@example.com","favoriteColor":"teal","name":{"givenName":"Ada"}}`)},
		Changes:   json.RawMessage(`[{"op":"add","path":"userName","new":"ada@example.com"}]`),
		Findings:  json.RawMessage(`[{"severity":"info","code":"fallback_used","attribute":"favoriteColor","source":"favorite_color","message":"taken from favorite_color"}]`),
		Subjects:  []Subject{{Kind: "user", Key: "ada@example.com"}},
	})
	// The script user lacks favoriteColor: an open warning with its request as example.
	if _, err := s.NoteWarnings(t.Context(), WarningNote{Connection: "acme", ResourceType: "User", Key: uiXSS,
		Missing: []string{"favoriteColor"}, ExampleRecordID: f.xssID, At: now}); err != nil {
		t.Fatal(err)
	}
	return f
}

var uiNoRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (f *uiFixture) req(method, path string, form url.Values, header map[string]string) (int, string, http.Header) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+"/scim-shadow"+path, body)
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
	for _, want := range []string{"acme", "preview", `href="./connections/acme/requests"`, "Switch to live…", `<td data-label="Pending" class="num pending">4</td>`, `1 open`, `href="./connections/acme/warnings"`} {
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
	page = f.get("/ui/connections/acme/requests/" + itoa(f.adaID))
	for _, want := range []string{"What the rewrite changed", "only in the original:</span> <code>favorite_color</code>",
		"only in the effective request:</span> <code>favoriteColor</code>", "fallback_used",
		`<span class="ln rewritten"><span class="gutter">≠</span>  &#34;favoriteColor&#34;: &#34;teal&#34;,</span>`,
		`<span class="ln rewritten"><span class="gutter">≠</span>  &#34;favorite_color&#34;: &#34;teal&#34;,</span>`,
		`<span class="ln"><span class="gutter"> </span>  &#34;userName&#34;: &#34;ada@example.com&#34;,</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("detail page of the rewritten create lacks %q:\n%s", want, page)
		}
	}
	page = f.get("/ui/connections/acme/warnings")
	for _, want := range []string{"favoriteColor", "⚠ 1", `href="?attribute=favoriteColor"`,
		`href="../../connections/acme/warnings/users/` + url.PathEscape(uiXSS) + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("warnings page lacks %q:\n%s", want, page)
		}
	}
	page = f.get("/ui/connections/acme/warnings?attribute=title")
	if !strings.Contains(page, "No user has an open warning for this attribute") {
		t.Errorf("warnings page filtered on another attribute:\n%s", page)
	}
	page = f.get("/ui/connections/acme/warnings/users/" + url.PathEscape(uiXSS))
	for _, want := range []string{"favoriteColor", "Writes without it", "Example request", `href="../../../../connections/acme/requests/` + itoa(f.xssID) + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("user warnings page lacks %q:\n%s", want, page)
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
		"/ui/connections/acme/resources", "/ui/connections/acme/requests?user=" + url.QueryEscape(uiXSS),
		"/ui/connections/acme/warnings", "/ui/connections/acme/warnings/users/" + url.PathEscape(uiXSS)} {
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
		{"mode without token", "/ui/connections/acme/mode", url.Values{"to": {"live"}}, nil},
		{"mode with a bad token", "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {"AAAA"}}, nil},
		{"mode with the preview token", "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {(&ReviewAPI{}).uiToken("/ui/connections/acme/mode", "preview")}}, nil},
		{"mode with another connection's token", "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {(&ReviewAPI{}).uiToken("/ui/connections/other/mode", "live")}}, nil},
		{"mode with another secret's token", "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {(&ReviewAPI{CSRFSecret: "x"}).uiToken("/ui/connections/acme/mode", "live")}}, nil},
		{"mode from a foreign origin", "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {modeToken}},
			map[string]string{"Origin": "https://evil.example"}},
		{"mode from a null origin", "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {modeToken}},
			map[string]string{"Origin": "null"}},
		{"mode from a cross-site form", "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {modeToken}},
			map[string]string{"Sec-Fetch-Site": "cross-site"}},
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
	status, body, h := f.req(http.MethodPost, "/ui/connections/acme/mode", url.Values{"to": {"live"}, "token": {modeToken}},
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
		map[string]string{"Sec-Fetch-Site": "same-origin"})
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

func TestUICSRFSecretIsSharedAcrossInstances(t *testing.T) {
	a, b := &ReviewAPI{CSRFSecret: "shared"}, &ReviewAPI{CSRFSecret: "shared"}
	if a.uiToken("/ui/connections/acme/clear", "") != b.uiToken("/ui/connections/acme/clear", "") {
		t.Error("two instances with one secret make different tokens")
	}
	random := &ReviewAPI{}
	if random.uiToken("/ui/connections/acme/clear", "") == a.uiToken("/ui/connections/acme/clear", "") {
		t.Error("the per-process key makes the secret's tokens")
	}
	if a.uiToken("/ui/connections/acme/mode", "live") == a.uiToken("/ui/connections/acme/mode", "preview") {
		t.Error("a token does not depend on its value")
	}
}

func TestUIBrowserGetOfJSONEndpointRedirects(t *testing.T) {
	f := newUIFixture(t)
	html := map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
	for path, want := range map[string]string{
		"/":                                   "ui/connections",
		"/connections":                        "ui/connections",
		"/connections/acme/records":           "../../ui/connections/acme/requests",
		"/connections/acme/records/2":         "../../../ui/connections/acme/requests/2",
		"/connections/acme/warnings":          "../../ui/connections/acme/warnings",
		"/connections/acme/resources":         "../../ui/connections/acme/resources",
		"/connections/a%2Fb/warnings/users/x": "../../../../ui/connections/a%2Fb/warnings/users/x",
	} {
		status, _, h := f.req(http.MethodGet, path, nil, html)
		if status != http.StatusSeeOther || h.Get("Location") != want {
			t.Errorf("GET %s as a browser: %d Location %q, want %q", path, status, h.Get("Location"), want)
		}
	}
	// A JSON client still gets JSON.
	status, body, h := f.req(http.MethodGet, "/connections", nil, map[string]string{"Accept": "application/json"})
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" || !strings.Contains(body, `"warnings":1`) {
		t.Errorf("GET /connections as JSON: %d %q %s", status, h.Get("Content-Type"), body)
	}
}

func TestUIBodyLayoutMarksRewrites(t *testing.T) {
	orig := layoutBody(StoredRequest{Body: json.RawMessage(`{"Operations":[{"op":"replace","path":"favorite_color","value":"teal"}],"a":{},"b":[1,2]}`)})
	eff := layoutBody(StoredRequest{Body: json.RawMessage(`{"Operations":[{"op":"replace","path":"favoriteColor","value":"teal"}],"a":{},"b":[1,2],"urn:x:User":{"department":"R"}}`)})
	var marked []string
	for _, l := range eff.marked(orig) {
		if l.Marked {
			marked = append(marked, strings.TrimSpace(l.Text))
		}
	}
	want := []string{`"path": "favoriteColor",`, `"urn:x:User": {`, `"department": "R"`}
	if strings.Join(marked, "|") != strings.Join(want, "|") {
		t.Errorf("marked lines %q, want %q", marked, want)
	}
	rw := orig.compare(eff)
	if strings.Join(rw.OnlyEffective, ",") != "urn:x:User" || len(rw.OnlyOriginal) != 0 ||
		strings.Join(rw.Changed, ",") != "Operations[0].path" {
		t.Errorf("rewrites %+v", rw)
	}
	// Not JSON: shown as text, nothing marked.
	text := layoutBody(StoredRequest{Body: json.RawMessage(`{"a":1} trailing`)})
	if len(text.lines) != 1 || text.lines[0] != `{"a":1} trailing` {
		t.Errorf("text body lines %q", text.lines)
	}
}

func TestUIWithoutStore(t *testing.T) {
	api := &ReviewAPI{}
	for path, want := range map[string]int{
		"/ui/connections":      http.StatusServiceUnavailable,
		"/ui/static/style.css": http.StatusOK,
		"/ui/static/nope.js":   http.StatusNotFound,
		"/ui/connections//x":   http.StatusNotFound,
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s without a store: %d, want %d\n%s", path, rec.Code, want, rec.Body)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
}

func TestUIRequestsPaging(t *testing.T) {
	f := &uiFixture{reviewFixture: newReviewFixture(t)}
	for i := range uiPageSize + 10 {
		f.save(&Record{Connection: "acme", ResourceType: "User", ResourceID: "u" + strconv.Itoa(i),
			Key: "user" + strconv.Itoa(i) + "@example.com", Operation: "patch", Status: StatusPending, Errors: i % 2})
	}
	nextRE := regexp.MustCompile(`<a class="next" href="([^"]+)">`)
	countRE := regexp.MustCompile(`<article class="request`)

	page := f.get("/ui/connections/acme/requests?errors=1")
	if n := len(countRE.FindAllString(page, -1)); n != (uiPageSize+10)/2 {
		t.Errorf("errors only: %d requests, want %d (one page)", n, (uiPageSize+10)/2)
	}
	page = f.get("/ui/connections/acme/requests")
	if n := len(countRE.FindAllString(page, -1)); n != uiPageSize {
		t.Errorf("first page: %d requests, want %d", n, uiPageSize)
	}
	if !strings.Contains(page, "user59@example.com") || strings.Contains(page, ">user9@example.com<") {
		t.Errorf("the first page is not the newest requests")
	}
	m := nextRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no next page link:\n%s", page)
	}
	next := html.UnescapeString(m[1])
	page = f.get("/ui/connections/acme/requests" + next)
	if n := len(countRE.FindAllString(page, -1)); n != 10 {
		t.Errorf("second page: %d requests, want 10", n)
	}
	if nextRE.MatchString(page) || !strings.Contains(page, ">First page</a>") || !strings.Contains(page, ">user0@example.com<") {
		t.Errorf("second page:\n%s", page)
	}
	if status, _, _ := f.req(http.MethodGet, "/ui/connections/acme/requests?cursor=garbage", nil, nil); status != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d, want 400", status)
	}
}

// uiHeld saves a record of acme waiting for a decision and returns its id.
func (f *uiFixture) uiHeld(key string, st RecordStatus, backendStatus int, backendError string) int64 {
	f.t.Helper()
	now := time.Now().UTC()
	rec := mustSave(f.t, f.store, &Record{Connection: "acme", Method: "DELETE", Path: "/scim/v2/Users/id-" + key,
		ResourceType: "User", ResourceID: "id-" + key, Key: key, Operation: "delete", Status: st, Deprovision: true,
		DedupeHash: "held-" + key, CreatedAt: now, LastSeenAt: now, Attempts: 1,
		HoldReason:    "hold delete: deletes of User wait for approval",
		BackendStatus: backendStatus, BackendError: backendError,
		Subjects: []Subject{{Kind: "user", ID: "id-" + key, Key: key}}})
	return rec.ID
}

// status reads a record's status from the store.
func (f *uiFixture) status(id int64) RecordStatus {
	f.t.Helper()
	rec, err := f.store.Record(f.t.Context(), "acme", id)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec.Status
}

func TestUIApproveAndIgnore(t *testing.T) {
	f := newUIFixture(t)
	held := f.uiHeld("held@example.com", StatusHeld, 0, "")
	failed := f.uiHeld("failed@example.com", StatusFailed, 500, "boom <b>")
	rp := func(id int64) string { return "/ui/connections/acme/requests/" + itoa(id) }

	// The list: badges, the hold reason, buttons only where a decision applies.
	list := f.get("/ui/connections/acme/requests")
	for _, want := range []string{`status-held">held</span>`, `status-failed">failed</span>`, "backend answered 500: boom &lt;b&gt;",
		"<strong>Held because:</strong> hold delete: deletes of User wait for approval", `requests/` + itoa(held) + `/approve"`,
		`requests/` + itoa(failed) + `/ignore"`, `status-pending">pending</span>`} {
		if !strings.Contains(list, want) {
			t.Errorf("requests page lacks %s", want)
		}
	}
	if n := strings.Count(list, `/approve"><button`); n != 2 {
		t.Errorf("%d approve buttons, want 2 (held and failed only)", n)
	}
	if page := f.get("/ui/connections"); !strings.Contains(page, `<span class="badge held">1 held</span>`) {
		t.Errorf("connections page lacks the held count")
	}

	// Approve through the detail page's confirmation.
	detail := f.get(rp(held))
	if !strings.Contains(detail, "Approve…") || !strings.Contains(detail, "Ignore…") || !strings.Contains(detail, "Held because:") {
		t.Errorf("detail page:\n%s", detail)
	}
	confirm := f.get(rp(held) + "/approve")
	if !strings.Contains(confirm, "the IdP&#39;s next identical retry will be forwarded to the backend") {
		t.Errorf("approve confirmation:\n%s", confirm)
	}
	token := uiFormToken(t, confirm)
	for name, c := range map[string]struct {
		form   url.Values
		header map[string]string
	}{
		"without token":           {url.Values{}, nil},
		"with the ignore's token": {url.Values{"token": {uiFormToken(t, f.get(rp(held)+"/ignore"))}}, nil},
		"from another origin":     {url.Values{"token": {token}}, map[string]string{"Origin": "https://evil.example"}},
	} {
		if status, body, _ := f.req(http.MethodPost, rp(held)+"/approve", c.form, c.header); status != http.StatusForbidden {
			t.Errorf("approve %s: %d, want 403\n%s", name, status, body)
		}
	}
	if st := f.status(held); st != StatusHeld {
		t.Fatalf("a refused POST changed the record: %s", st)
	}
	status, body, h := f.req(http.MethodPost, rp(held)+"/approve", url.Values{"token": {token}}, map[string]string{"Origin": f.srv.URL})
	if status != http.StatusSeeOther || h.Get("Location") != "../"+itoa(held) {
		t.Fatalf("approve: %d %q\n%s", status, h.Get("Location"), body)
	}
	if st := f.status(held); st != StatusApproved {
		t.Fatalf("approved record is %s", st)
	}
	detail = f.get(rp(held))
	if !strings.Contains(detail, `status-approved">approved</span>`) || strings.Contains(detail, "Approve…") || !strings.Contains(detail, "Ignore…") {
		t.Errorf("detail after approving:\n%s", detail)
	}
	// Approving it again: the confirmation and the old token's POST are conflicts.
	if status, _, _ := f.req(http.MethodGet, rp(held)+"/approve", nil, nil); status != http.StatusConflict {
		t.Errorf("second approve confirmation: %d, want 409", status)
	}
	if status, _, _ := f.req(http.MethodPost, rp(held)+"/approve", url.Values{"token": {token}}, nil); status != http.StatusConflict {
		t.Errorf("second approve: %d, want 409", status)
	}

	// Ignore the approved record.
	confirm = f.get(rp(held) + "/ignore")
	if !strings.Contains(confirm, "later retries get a final 403 and the IdP stops retrying") {
		t.Errorf("ignore confirmation:\n%s", confirm)
	}
	if status, _, _ := f.req(http.MethodPost, rp(held)+"/ignore", url.Values{"token": {uiFormToken(t, confirm)}}, nil); status != http.StatusSeeOther {
		t.Fatalf("ignore: %d", status)
	}
	if st := f.status(held); st != StatusIgnored {
		t.Fatalf("ignored record is %s", st)
	}
	if detail := f.get(rp(held)); strings.Contains(detail, "Ignore…") || !strings.Contains(detail, `status-ignored">ignored</span>`) {
		t.Errorf("detail after ignoring:\n%s", detail)
	}
	// A pending record cannot be decided.
	if status, _, _ := f.req(http.MethodGet, rp(f.adaID)+"/approve", nil, nil); status != http.StatusConflict {
		t.Errorf("approving a pending request: %d, want 409", status)
	}
	f.mu.Lock()
	if got := strings.Join(f.decided, ","); got != fmt.Sprintf("acme:[%d]=approved,acme:[%d]=ignored", held, held) {
		t.Errorf("OnDecide calls %s", got)
	}
	f.mu.Unlock()
}

func TestUIBulkApproveAndIgnore(t *testing.T) {
	f := newUIFixture(t)
	a := f.uiHeld("a@example.com", StatusHeld, 0, "")
	b := f.uiHeld("b@example.com", StatusHeld, 0, "")
	failed := f.uiHeld("c@example.com", StatusFailed, 502, "bad gateway")

	// Filtered by status: the held ones, with both bulk buttons.
	page := f.get("/ui/connections/acme/requests?status=held")
	if strings.Count(page, `<article class="request`) != 2 || !strings.Contains(page, "Approve all shown…") ||
		!strings.Contains(page, "Ignore all shown…") || !strings.Contains(page, `<option value="held" selected>`) {
		t.Errorf("held requests page:\n%s", page)
	}
	if page := f.get("/ui/connections/acme/requests"); strings.Contains(page, "all shown…") {
		t.Errorf("bulk buttons without a status filter")
	}
	if status, _, _ := f.req(http.MethodGet, "/ui/connections/acme/requests?status=bogus", nil, nil); status != http.StatusBadRequest {
		t.Errorf("unknown status: %d, want 400", status)
	}
	if status, _, _ := f.req(http.MethodGet, "/ui/connections/acme/requests/approve?filter=user%3Da%40example.com", nil, nil); status != http.StatusBadRequest {
		t.Errorf("bulk approve without a status: %d, want 400", status)
	}

	// Approve the held ones of one user: the confirmation counts them.
	filter := url.Values{"status": {"held"}, "user": {"a@example.com"}}.Encode()
	confirm := f.get("/ui/connections/acme/requests/approve?filter=" + url.QueryEscape(filter))
	if !strings.Contains(confirm, "Approve 1 request of acme?") || !strings.Contains(confirm, `status &#34;held&#34;, user &#34;a@example.com&#34;`) {
		t.Errorf("bulk confirmation:\n%s", confirm)
	}
	token := uiFormToken(t, confirm)
	if status, _, _ := f.req(http.MethodPost, "/ui/connections/acme/requests/approve", url.Values{"token": {token},
		"filter": {"status=held"}}, nil); status != http.StatusForbidden {
		t.Errorf("bulk approve with another filter than the token's: %d, want 403", status)
	}
	status, _, h := f.req(http.MethodPost, "/ui/connections/acme/requests/approve", url.Values{"token": {token}, "filter": {filter}}, nil)
	if status != http.StatusSeeOther || h.Get("Location") != "../requests?"+filter {
		t.Fatalf("bulk approve: %d %q", status, h.Get("Location"))
	}
	if f.status(a) != StatusApproved || f.status(b) != StatusHeld || f.status(failed) != StatusFailed {
		t.Errorf("after approving a's: %s %s %s", f.status(a), f.status(b), f.status(failed))
	}

	// Ignore all failed ones.
	confirm = f.get("/ui/connections/acme/requests/ignore?filter=status%3Dfailed")
	if !strings.Contains(confirm, "Ignore 1 request of acme?") || !strings.Contains(confirm, "final 403") {
		t.Errorf("bulk ignore confirmation:\n%s", confirm)
	}
	if status, _, _ := f.req(http.MethodPost, "/ui/connections/acme/requests/ignore", url.Values{"token": {uiFormToken(t, confirm)},
		"filter": {"status=failed"}}, nil); status != http.StatusSeeOther {
		t.Fatalf("bulk ignore: %d", status)
	}
	if f.status(failed) != StatusIgnored || f.status(b) != StatusHeld {
		t.Errorf("after ignoring the failed ones: %s %s", f.status(failed), f.status(b))
	}
	f.mu.Lock()
	if got := strings.Join(f.decided, ","); got != fmt.Sprintf("acme:[%d]=approved,acme:[%d]=ignored", a, failed) {
		t.Errorf("OnDecide calls %s", got)
	}
	f.mu.Unlock()
	// Nothing left to approve among the failed ones: a conflict, not an empty confirmation.
	if status, _, _ := f.req(http.MethodGet, "/ui/connections/acme/requests/approve?filter=status%3Dfailed", nil, nil); status != http.StatusConflict {
		t.Errorf("bulk approve of nothing: %d, want 409", status)
	}
}
