package shadow

import (
	"encoding/json"
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
