package shadow

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type reviewFixture struct {
	t       *testing.T
	store   *SQLiteStore
	srv     *httptest.Server
	mu      sync.Mutex
	changes []string // "connection=mode" from OnModeChange
	ids     map[string][]int64
}

func newReviewFixture(t *testing.T) *reviewFixture {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "review.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f := &reviewFixture{t: t, store: s, ids: map[string][]int64{}}
	api := &ReviewAPI{
		Store:        s,
		DefaultModes: func() map[string]Mode { return map[string]Mode{"acme": ModePreview, "configured": ModePreview} },
		OnModeChange: func(c string, m Mode) {
			f.mu.Lock()
			f.changes = append(f.changes, c+"="+string(m))
			f.mu.Unlock()
		},
	}
	// Mounted as the review handler is: under a prefix that is stripped.
	f.srv = httptest.NewServer(http.StripPrefix("/scim-shadow", api))
	t.Cleanup(f.srv.Close)
	return f
}

// seed saves a record and remembers its id under its connection.
func (f *reviewFixture) seed(conn, typ, key, id, method string, st RecordStatus) int64 {
	f.t.Helper()
	rec := &Record{
		Connection: conn, Method: method, Path: "/scim/v2/" + typ + "s", ResourceType: typ, Key: key, ResourceID: id,
		Operation: "create", Status: st, DedupeHash: conn + key + id + method + string(st),
		Original:  StoredRequest{Method: method, URL: "/scim/v2/" + typ + "s", Body: json.RawMessage(`{"userName":"` + key + `","secretish":"body"}`)},
		Effective: StoredRequest{Method: method, URL: "/scim/v2/" + typ + "s", Text: "effective text " + key},
		Changes:   json.RawMessage(`[{"path":"userName","new":"` + key + `"}]`),
	}
	saved := mustSave(f.t, f.store, rec)
	f.ids[conn] = append(f.ids[conn], saved.ID)
	return saved.ID
}

// do sends a request and decodes the JSON answer into out (if not nil).
func (f *reviewFixture) do(method, path, body string, wantStatus int, out any) http.Header {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+"/scim-shadow"+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		f.t.Fatalf("%s %s = %d %s; want %d", method, path, resp.StatusCode, raw, wantStatus)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if wantStatus >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" {
			f.t.Errorf("%s %s: error body %s is not {\"error\":…}", method, path, raw)
		}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			f.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
	return resp.Header
}

type connectionsResponse struct {
	Connections []connectionView `json:"connections"`
}

type recordsResponse struct {
	Records    []map[string]any `json:"records"`
	NextCursor *string          `json:"next_cursor"`
}

func (r recordsResponse) ids(t *testing.T) []int64 {
	t.Helper()
	out := []int64{}
	for _, rec := range r.Records {
		id, ok := rec["id"].(float64)
		if !ok {
			t.Fatalf("record without id: %v", rec)
		}
		out = append(out, int64(id))
	}
	return out
}

func reversed(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

func TestReviewConnectionsAndModes(t *testing.T) {
	f := newReviewFixture(t)
	f.seed("acme", "User", "alice", "u1", "POST", StatusPending)
	f.seed("acme", "User", "bob", "u2", "POST", StatusPending)
	f.seed("acme", "User", "carol", "u3", "POST", StatusIgnored)
	f.seed("globex", "User", "dave", "u4", "PATCH", StatusPending)
	f.seed("tenant/with space", "Group", "admins", "g1", "POST", StatusPending)

	var got connectionsResponse
	f.do("GET", "/connections", "", 200, &got)
	want := []connectionView{
		{Name: "acme", Mode: ModePreview, Pending: 2}, // configured default
		{Name: "configured", Mode: ModePreview},       // configured, no records
		{Name: "globex", Mode: ModeLive, Pending: 1},  // records only: live
		{Name: "tenant/with space", Mode: ModeLive, Pending: 1},
	}
	if !slices.Equal(got.Connections, want) {
		t.Fatalf("GET /connections = %+v\nwant %+v", got.Connections, want)
	}

	var put connectionView
	f.do("PUT", "/connections/acme/mode", `{"mode":"live"}`, 200, &put)
	if put != (connectionView{Name: "acme", Mode: ModeLive}) {
		t.Errorf("PUT mode = %+v", put)
	}
	f.do("PUT", "/connections/"+url.PathEscape("tenant/with space")+"/mode", `{"mode":"preview"}`, 200, &put)
	if put != (connectionView{Name: "tenant/with space", Mode: ModePreview}) {
		t.Errorf("PUT mode of an escaped name = %+v", put)
	}
	f.do("PUT", "/connections/newcomer/mode", `{"mode":"preview"}`, 200, &put)

	f.do("GET", "/connections", "", 200, &got)
	want = []connectionView{
		{Name: "acme", Mode: ModeLive, Pending: 2}, // the stored override beats the default
		{Name: "configured", Mode: ModePreview},
		{Name: "globex", Mode: ModeLive, Pending: 1},
		{Name: "newcomer", Mode: ModePreview},
		{Name: "tenant/with space", Mode: ModePreview, Pending: 1},
	}
	if !slices.Equal(got.Connections, want) {
		t.Errorf("after PUTs: %+v\nwant %+v", got.Connections, want)
	}
	modes, err := f.store.Modes(t.Context())
	if err != nil || modes["acme"] != ModeLive || modes["tenant/with space"] != ModePreview {
		t.Errorf("stored modes = %v, %v", modes, err)
	}

	for _, body := range []string{`{"mode":"shadow"}`, `{"mode":""}`, `{}`, `not json`, ``, `{"mode":"live"} {"mode":"preview"}`, `{"mode":"LIVE"}`} {
		f.do("PUT", "/connections/acme/mode", body, 400, nil)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if wantChanges := []string{"acme=live", "tenant/with space=preview", "newcomer=preview"}; !slices.Equal(f.changes, wantChanges) {
		t.Errorf("OnModeChange calls = %q, want %q", f.changes, wantChanges)
	}
}

func TestReviewRecords(t *testing.T) {
	f := newReviewFixture(t)
	alice := f.seed("acme", "User", "Alice@Example.com", "u1", "POST", StatusPending)
	alicePatch := f.seed("acme", "User", "", "u1", "PATCH", StatusPending)
	bob := f.seed("acme", "User", "bob", "u2", "DELETE", StatusIgnored)
	group := f.seed("acme", "Group", "admins", "g1", "PATCH", StatusPending)
	other := f.seed("globex", "User", "Alice@Example.com", "u1", "POST", StatusPending)

	var list recordsResponse
	f.do("GET", "/connections/acme/records", "", 200, &list)
	if ids := list.ids(t); !slices.Equal(ids, []int64{group, bob, alicePatch, alice}) {
		t.Fatalf("records = %v", ids)
	}
	if list.NextCursor == nil || *list.NextCursor != "" {
		t.Errorf("next_cursor = %v, want present and empty", list.NextCursor)
	}
	first := list.Records[0]
	orig, _ := first["original"].(map[string]any)
	if first["connection"] != "acme" || first["method"] != "PATCH" || first["resource_type"] != "Group" || first["key"] != "admins" || first["status"] != "pending" {
		t.Errorf("list item = %v", first)
	}
	if orig == nil || orig["url"] != "/scim/v2/Groups" || orig["body"] != nil || first["effective"].(map[string]any)["text"] != nil {
		t.Errorf("list item must carry no bodies: %v", first)
	}
	if first["changes"] == nil {
		t.Errorf("list item lost its changes: %v", first)
	}

	cases := []struct {
		query string
		want  []int64
	}{
		{"user=alice%40example.com", []int64{alice}},
		{"user=u1", []int64{alicePatch, alice}},
		{"resource=group", []int64{group}},
		{"resource=User&method=patch", []int64{alicePatch}},
		{"method=DELETE", []int64{bob}},
		{"status=ignored", []int64{bob}},
		{"status=pending&resource=User", []int64{alicePatch, alice}},
		{"user=nobody", []int64{}},
		{"limit=1000000", []int64{group, bob, alicePatch, alice}},
	}
	for _, c := range cases {
		var got recordsResponse
		f.do("GET", "/connections/acme/records?"+c.query, "", 200, &got)
		if ids := got.ids(t); !slices.Equal(ids, c.want) {
			t.Errorf("?%s = %v, want %v", c.query, ids, c.want)
		}
	}
	for _, q := range []string{"status=bogus", "limit=abc", "limit=0", "limit=-3", "cursor=!!", "cursor=" + url.QueryEscape("' OR 1=1")} {
		f.do("GET", "/connections/acme/records?"+q, "", 400, nil)
	}

	// One record, with bodies.
	var rec map[string]any
	f.do("GET", "/connections/acme/records/"+strconv.FormatInt(alice, 10), "", 200, &rec)
	if rec["id"] != float64(alice) || rec["key"] != "Alice@Example.com" || rec["attempts"] != float64(1) {
		t.Errorf("record = %v", rec)
	}
	if body := rec["original"].(map[string]any)["body"].(map[string]any); body["userName"] != "Alice@Example.com" {
		t.Errorf("original body = %v", body)
	}
	if txt := rec["effective"].(map[string]any)["text"]; txt != "effective text Alice@Example.com" {
		t.Errorf("effective text = %v", txt)
	}
	if _, ok := rec["DedupeHash"]; ok {
		t.Errorf("the dedupe hash is shown: %v", rec)
	}

	// Isolation: another connection's id is not found, and its records never listed.
	f.do("GET", "/connections/acme/records/"+strconv.FormatInt(other, 10), "", 404, nil)
	f.do("GET", "/connections/globex/records/"+strconv.FormatInt(alice, 10), "", 404, nil)
	f.do("GET", "/connections/acme/records/999999", "", 404, nil)
	f.do("GET", "/connections/acme/records/abc", "", 400, nil)
	f.do("GET", "/connections/acme/records/-1", "", 400, nil)
	var globex recordsResponse
	f.do("GET", "/connections/globex/records?user=u1", "", 200, &globex)
	if ids := globex.ids(t); !slices.Equal(ids, []int64{other}) {
		t.Errorf("globex records = %v, want [%d]", ids, other)
	}
	f.do("GET", "/connections/Acme/records", "", 200, &globex)
	if len(globex.Records) != 0 {
		t.Errorf("Acme (other case) has %d records", len(globex.Records))
	}
}

func TestReviewPaging(t *testing.T) {
	f := newReviewFixture(t)
	for i := range 23 {
		f.seed("tenant/a b", "User", "user"+strconv.Itoa(i), "", "POST", StatusPending)
	}
	f.seed("tenant", "User", "x", "", "POST", StatusPending)
	base := "/connections/" + url.PathEscape("tenant/a b") + "/records?limit=5"
	var all []int64
	cursor := ""
	for page := 0; ; page++ {
		var got recordsResponse
		f.do("GET", base+"&cursor="+url.QueryEscape(cursor), "", 200, &got)
		all = append(all, got.ids(t)...)
		for _, r := range got.Records {
			if r["connection"] != "tenant/a b" {
				t.Fatalf("record of %v listed", r["connection"])
			}
		}
		if *got.NextCursor == "" {
			if page != 4 {
				t.Errorf("%d pages, want 5", page+1)
			}
			break
		}
		if page > 10 {
			t.Fatal("paging does not end")
		}
		cursor = *got.NextCursor
	}
	if want := reversed(f.ids["tenant/a b"]); !slices.Equal(all, want) {
		t.Errorf("paged ids = %v, want %v", all, want)
	}
}

func TestReviewDelete(t *testing.T) {
	f := newReviewFixture(t)
	f.seed("acme", "User", "a", "", "POST", StatusPending)
	f.seed("acme", "User", "b", "", "POST", StatusIgnored)
	g := f.seed("globex", "User", "a", "", "POST", StatusPending)

	var del struct {
		Deleted *int64 `json:"deleted"`
	}
	f.do("DELETE", "/connections/acme/records", "", 200, &del)
	if del.Deleted == nil || *del.Deleted != 2 {
		t.Fatalf("deleted = %v, want 2", del.Deleted)
	}
	var list recordsResponse
	f.do("GET", "/connections/acme/records", "", 200, &list)
	if len(list.Records) != 0 {
		t.Errorf("acme still lists %d records", len(list.Records))
	}
	f.do("GET", "/connections/globex/records", "", 200, &list)
	if ids := list.ids(t); !slices.Equal(ids, []int64{g}) {
		t.Errorf("globex lost records: %v", ids)
	}
	del.Deleted = nil
	f.do("DELETE", "/connections/acme/records", "", 200, &del)
	if del.Deleted == nil || *del.Deleted != 0 {
		t.Errorf("second delete = %v, want 0", del.Deleted)
	}
}

func TestReviewRouting(t *testing.T) {
	f := newReviewFixture(t)
	f.do("GET", "/nope", "", 404, nil)
	f.do("GET", "/connections/acme", "", 404, nil)
	f.do("GET", "/connections/acme/records/1/extra", "", 404, nil)
	f.do("GET", "/connections/x/../acme/records", "", 404, nil) // no redirect that would lose the prefix
	f.do("GET", "/connections//records", "", 404, nil)
	// Escaped slashes and dots are part of a name, not of the path.
	var put connectionView
	for name, escaped := range map[string]string{"a/../b": "", "a//b": "", "..": "%2E%2E", "100%": ""} {
		if escaped == "" {
			escaped = url.PathEscape(name)
		}
		f.do("PUT", "/connections/"+escaped+"/mode", `{"mode":"preview"}`, 200, &put)
		if put.Name != name {
			t.Errorf("PUT mode of %q answered %q", name, put.Name)
		}
	}
	if m, _ := f.store.Modes(t.Context()); len(m) != 4 || m["a/../b"] != ModePreview || m[".."] != ModePreview {
		t.Errorf("modes = %v", m)
	}
	h := f.do("POST", "/connections", "", 405, nil)
	if allow := h.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("405 Allow = %q", allow)
	}
	f.do("POST", "/connections/acme/records", "", 405, nil)
	f.do("GET", "/connections/acme/mode", "", 405, nil)
	h = f.do("GET", "/connections", "", 200, nil)
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", h.Get("Cache-Control"))
	}

	// Without a store every endpoint fails cleanly.
	rec := httptest.NewRecorder()
	(&ReviewAPI{}).ServeHTTP(rec, httptest.NewRequest("GET", "/connections", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("no store: %d %s", rec.Code, rec.Body)
	}
	// A nil DefaultModes is fine.
	empty, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "empty.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	rec = httptest.NewRecorder()
	(&ReviewAPI{Store: empty}).ServeHTTP(rec, httptest.NewRequest("GET", "/connections", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"connections":[]}` {
		t.Errorf("empty store without defaults: %d %s", rec.Code, rec.Body)
	}
}
