package shadow

import (
	"encoding/json"
	"fmt"
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
	"time"
)

type reviewFixture struct {
	t       *testing.T
	store   *SQLiteStore
	srv     *httptest.Server
	mu      sync.Mutex
	changes []string // "connection=mode" from OnModeChange
	decided []string // "connection:ids=status" from OnDecide
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
		OnDecide: func(c string, ids []int64, to RecordStatus) {
			f.mu.Lock()
			f.decided = append(f.decided, fmt.Sprintf("%s:%v=%s", c, ids, to))
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

// save stores rec (a pending write unless rec says otherwise) and returns its id.
func (f *reviewFixture) save(rec *Record) int64 {
	f.t.Helper()
	if rec.Method == "" {
		rec.Method = "PATCH"
	}
	if rec.Path == "" {
		rec.Path = "/scim/v2/" + rec.ResourceType + "s/" + rec.ResourceID
	}
	if rec.DedupeHash == "" {
		rec.DedupeHash = "h" + strconv.Itoa(len(f.ids[rec.Connection])) + rec.Path + rec.Key
	}
	rec.Original = StoredRequest{Method: rec.Method, URL: rec.Path, Body: json.RawMessage(`{"secretish":"body"}`)}
	rec.Effective = rec.Original
	saved := mustSave(f.t, f.store, rec)
	f.ids[rec.Connection] = append(f.ids[rec.Connection], saved.ID)
	return saved.ID
}

// predictionFixture is a connection "acme" with a chain of pending writes to user u1 and
// to group g1, a create, a bulk request and an ignored write; "globex" has one write.
type predictionFixture struct {
	*reviewFixture
	u1a, g1a, u1b, bob, g1b, ignored, bulk, globex int64
}

func newPredictionFixture(t *testing.T) *predictionFixture {
	f := &predictionFixture{reviewFixture: newReviewFixture(t)}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	f.u1a = f.save(&Record{Connection: "acme", ResourceType: "User", ResourceID: "u1", Key: "alice", Operation: "patch",
		Live:      raw(`{"id":"u1","userName":"alice","active":true,"title":"a"}`),
		Projected: raw(`{"id":"u1","userName":"alice","active":true,"title":"b"}`),
		Changes:   raw(`[{"op":"replace","path":"title","old":"a","new":"b"}]`),
		Subjects:  []Subject{{Kind: "user", ID: "u1", Key: "alice"}}})
	f.g1a = f.save(&Record{Connection: "acme", ResourceType: "Group", ResourceID: "g1", Key: "Admins", Operation: "patch",
		Live:      raw(`{"id":"g1","displayName":"Admins","members":[{"value":"u0"}]}`),
		Projected: raw(`{"id":"g1","displayName":"Admins","members":[{"value":"u0"},{"value":"u1"}]}`),
		Changes:   raw(`[{"op":"add","path":"members","new":{"value":"u1"},"display":"alice"}]`),
		Findings: raw(`[{"severity":"error","code":"unknown_member","attribute":"","path":"members[value eq \"u9\"]","message":"no u9"},` +
			`{"severity":"warning","code":"x","attribute":"a","message":"just a warning"}]`),
		Errors:   1,
		Subjects: []Subject{{Kind: "group", ID: "g1", Key: "Admins"}, {Kind: "user", ID: "u1", Key: "alice", Change: "added"}}})
	f.u1b = f.save(&Record{Connection: "acme", ResourceType: "User", ResourceID: "u1", Operation: "patch", Attempts: 3,
		Live:        raw(`{"id":"u1","userName":"alice","active":true,"title":"b"}`),
		Projected:   raw(`{"id":"u1","userName":"alice","active":false,"title":"b"}`),
		Changes:     raw(`[{"op":"replace","path":"active","old":true,"new":false}]`),
		Deprovision: true,
		Subjects:    []Subject{{Kind: "user", ID: "u1", Key: "alice"}}})
	f.bob = f.save(&Record{Connection: "acme", Method: "POST", Path: "/scim/v2/Users", ResourceType: "User", Key: "Bob", Operation: "create",
		Projected: raw(`{"userName":"Bob"}`),
		Changes:   raw(`[{"op":"add","path":"userName","new":"Bob"}]`),
		Subjects:  []Subject{{Kind: "user", Key: "Bob"}}})
	f.g1b = f.save(&Record{Connection: "acme", ResourceType: "Group", ResourceID: "g1", Operation: "patch",
		Live:        raw(`{"id":"g1","displayName":"Admins","members":[{"value":"u0"},{"value":"u1"}]}`),
		Projected:   raw(`{"id":"g1","displayName":"Admins","members":[{"value":"u1"}]}`),
		Changes:     raw(`[{"op":"remove","path":"members","old":{"value":"u0"},"display":"zed"}]`),
		Deprovision: true,
		Subjects:    []Subject{{Kind: "group", ID: "g1", Key: "Admins"}, {Kind: "user", ID: "u0", Key: "zed", Change: "removed"}}})
	f.ignored = f.save(&Record{Connection: "acme", ResourceType: "User", ResourceID: "u2", Key: "carol", Status: StatusIgnored,
		Errors: 4, Deprovision: true, Subjects: []Subject{{Kind: "user", ID: "u2", Key: "carol"}}})
	f.bulk = f.save(&Record{Connection: "acme", Method: "POST", Path: "/scim/v2/Bulk", Operation: "bulk"})
	f.globex = f.save(&Record{Connection: "globex", ResourceType: "User", ResourceID: "u1", Key: "alice", Errors: 1,
		Live: raw(`{"id":"u1","userName":"alice","title":"x"}`), Projected: raw(`{"id":"u1","userName":"alice","title":"y"}`),
		Subjects: []Subject{{Kind: "user", ID: "u1", Key: "alice"}}})
	return f
}

func TestReviewPredictionFilters(t *testing.T) {
	f := newPredictionFixture(t)

	var conns connectionsResponse
	f.do("GET", "/connections", "", 200, &conns)
	want := []connectionView{
		{Name: "acme", Mode: ModePreview, Pending: 6, Errors: 1, Deprovisions: 2},
		{Name: "configured", Mode: ModePreview},
		{Name: "globex", Mode: ModeLive, Pending: 1, Errors: 1},
	}
	if !slices.Equal(conns.Connections, want) {
		t.Errorf("GET /connections = %+v\nwant %+v", conns.Connections, want)
	}
	var rawConns map[string][]map[string]any
	f.do("GET", "/connections", "", 200, &rawConns)
	if c := rawConns["connections"][1]; c["errors"] != float64(0) || c["deprovisions"] != float64(0) || c["pending"] != float64(0) {
		t.Errorf("zero counts must be present: %v", c)
	}

	cases := []struct {
		query string
		want  []int64
	}{
		{"user=ALICE", []int64{f.u1b, f.g1a, f.u1a}},
		{"user=u1", []int64{f.u1b, f.g1a, f.u1a}},
		{"user=zed", []int64{f.g1b}},
		{"user=u0", []int64{f.g1b}},
		{"user=carol", []int64{f.ignored}},
		{"user=admins", []int64{}},
		{"group=admins", []int64{f.g1b, f.g1a}},
		{"group=g1", []int64{f.g1b, f.g1a}},
		{"group=alice", []int64{}},
		{"errors=1", []int64{f.ignored, f.g1a}},
		{"errors=true&status=pending", []int64{f.g1a}},
		{"errors=0", []int64{f.bulk, f.ignored, f.g1b, f.bob, f.u1b, f.g1a, f.u1a}},
		{"deprovisions=1", []int64{f.ignored, f.g1b, f.u1b}},
		{"deprovisions=1&user=alice", []int64{f.u1b}},
		{"deprovisions=1&group=admins", []int64{f.g1b}},
		{"user=alice&group=admins&errors=1", []int64{f.g1a}},
		{"user=alice&resource=group", []int64{f.g1a}},
		{"user=alice&limit=1", []int64{f.u1b}},
	}
	for _, c := range cases {
		var got recordsResponse
		f.do("GET", "/connections/acme/records?"+c.query, "", 200, &got)
		if ids := got.ids(t); !slices.Equal(ids, c.want) {
			t.Errorf("?%s = %v, want %v", c.query, ids, c.want)
		}
	}
	for _, q := range []string{"errors=yes", "deprovisions=2", "errors=%20"} {
		f.do("GET", "/connections/acme/records?"+q, "", 400, nil)
	}
	var globex recordsResponse
	f.do("GET", "/connections/globex/records?user=alice&errors=1", "", 200, &globex)
	if ids := globex.ids(t); !slices.Equal(ids, []int64{f.globex}) {
		t.Errorf("globex ?user=alice&errors=1 = %v", ids)
	}

	// List items carry subjects and flags, not the resources; the record has them all.
	var list recordsResponse
	f.do("GET", "/connections/acme/records?group=admins&limit=1", "", 200, &list)
	item := list.Records[0]
	if item["live"] != nil || item["projected"] != nil || item["original"].(map[string]any)["body"] != nil {
		t.Errorf("list item carries resources or bodies: %v", item)
	}
	if item["deprovision"] != true || item["errors"] != float64(0) || len(item["subjects"].([]any)) != 2 {
		t.Errorf("list item = %v", item)
	}
	var rec Record
	f.do("GET", "/connections/acme/records/"+strconv.FormatInt(f.g1a, 10), "", 200, &rec)
	wantSubjects := []Subject{{Kind: "group", ID: "g1", Key: "Admins"}, {Kind: "user", ID: "u1", Key: "alice", Change: "added"}}
	if rec.Errors != 1 || rec.Deprovision || !slices.Equal(rec.Subjects, wantSubjects) ||
		compactJSON(t, rec.Live) != `{"id":"g1","displayName":"Admins","members":[{"value":"u0"}]}` ||
		compactJSON(t, rec.Projected) != `{"id":"g1","displayName":"Admins","members":[{"value":"u0"},{"value":"u1"}]}` {
		t.Errorf("record = %+v", rec)
	}
}

type resourcesResponse struct {
	Resources []struct {
		ResourceType string            `json:"resource_type"`
		ID           string            `json:"id"`
		Key          string            `json:"key"`
		Records      []int64           `json:"records"`
		Live         json.RawMessage   `json:"live"`
		Projected    json.RawMessage   `json:"projected"`
		Changes      []Change          `json:"changes"`
		Errors       []json.RawMessage `json:"errors"`
		Deprovision  bool              `json:"deprovision"`
		Attempts     int               `json:"attempts"`
	} `json:"resources"`
	NextCursor *string `json:"next_cursor"`
}

// keys lists the resources as "type/id-or-key".
func (r resourcesResponse) keys() []string {
	out := []string{}
	for _, res := range r.Resources {
		id := res.ID
		if id == "" {
			id = res.Key
		}
		out = append(out, res.ResourceType+"/"+id)
	}
	return out
}

func TestReviewResources(t *testing.T) {
	f := newPredictionFixture(t)

	var got resourcesResponse
	f.do("GET", "/connections/acme/resources", "", 200, &got)
	if keys := got.keys(); !slices.Equal(keys, []string{"/", "Group/g1", "User/Bob", "User/u1"}) {
		t.Fatalf("resources = %v", keys)
	}
	if got.NextCursor == nil || *got.NextCursor != "" {
		t.Errorf("next_cursor = %v, want present and empty", got.NextCursor)
	}
	bulk, g1, bob, u1 := got.Resources[0], got.Resources[1], got.Resources[2], got.Resources[3]

	if !slices.Equal(u1.Records, []int64{f.u1a, f.u1b}) || u1.Key != "alice" || u1.Attempts != 4 || !u1.Deprovision || len(u1.Errors) != 0 ||
		compactJSON(t, u1.Live) != `{"id":"u1","userName":"alice","active":true,"title":"a"}` ||
		compactJSON(t, u1.Projected) != `{"id":"u1","userName":"alice","active":false,"title":"b"}` {
		t.Errorf("u1 = %+v", u1)
	}
	paths := func(cs []Change) []string {
		var out []string
		for _, c := range cs {
			out = append(out, strings.ToLower(c.Op)+" "+c.Path)
		}
		slices.Sort(out)
		return out
	}
	if p := paths(u1.Changes); !slices.Equal(p, []string{"replace active", "replace title"}) {
		t.Errorf("u1 changes = %v (%+v)", p, u1.Changes)
	}

	if !slices.Equal(g1.Records, []int64{f.g1a, f.g1b}) || g1.Key != "Admins" || g1.Attempts != 2 || !g1.Deprovision ||
		compactJSON(t, g1.Live) != `{"id":"g1","displayName":"Admins","members":[{"value":"u0"}]}` ||
		compactJSON(t, g1.Projected) != `{"id":"g1","displayName":"Admins","members":[{"value":"u1"}]}` {
		t.Errorf("g1 = %+v", g1)
	}
	if len(g1.Errors) != 1 || !strings.Contains(string(g1.Errors[0]), `"unknown_member"`) {
		t.Errorf("g1 errors = %s", g1.Errors)
	}
	displays := map[string]string{}
	for _, c := range g1.Changes {
		if strings.EqualFold(c.Path, "members") {
			displays[strings.ToLower(c.Op)] = c.Display
		}
	}
	if displays["add"] != "alice" || displays["remove"] != "zed" || len(displays) != 2 {
		t.Errorf("g1 member changes = %+v; want add alice, remove zed (display carried from the records)", g1.Changes)
	}

	if !slices.Equal(bob.Records, []int64{f.bob}) || bob.ID != "" || string(bob.Live) != "null" || compactJSON(t, bob.Projected) != `{"userName":"Bob"}` ||
		!slices.Equal(paths(bob.Changes), []string{"add userName"}) || bob.Deprovision || bob.Attempts != 1 {
		t.Errorf("bob = %+v", bob)
	}
	if !slices.Equal(bulk.Records, []int64{f.bulk}) || bulk.ResourceType != "" || string(bulk.Live) != "null" || string(bulk.Projected) != "null" ||
		bulk.Changes == nil || bulk.Errors == nil {
		t.Errorf("bulk = %+v", bulk)
	}
	// Empty lists are [], not null.
	var raw struct {
		Resources []map[string]any `json:"resources"`
	}
	f.do("GET", "/connections/acme/resources?type=User&user=bob", "", 200, &raw)
	if r := raw.Resources; len(r) != 1 || r[0]["errors"] == nil || r[0]["changes"] == nil || r[0]["live"] != nil {
		t.Errorf("bob as JSON = %v", r)
	}
	f.do("GET", "/connections/acme/resources?limit=1", "", 200, &raw)
	if r := raw.Resources; len(r) != 1 || r[0]["errors"] == nil || r[0]["changes"] == nil {
		t.Errorf("bulk as JSON = %v", r)
	}

	cases := []struct {
		query string
		want  []string
	}{
		{"user=alice", []string{"Group/g1", "User/u1"}}, // g1 adds alice
		{"user=u0", []string{"Group/g1"}},
		{"user=ZED", []string{"Group/g1"}},
		{"user=bob", []string{"User/Bob"}},
		{"user=carol", []string{}}, // ignored: not pending
		{"user=nobody", []string{}},
		{"group=ADMINS", []string{"Group/g1"}},
		{"group=alice", []string{}},
		{"errors=1", []string{"Group/g1"}},
		{"errors=1&type=user", []string{}},
		{"type=user", []string{"User/Bob", "User/u1"}},
		{"type=Group", []string{"Group/g1"}},
		{"type=User&user=alice", []string{"User/u1"}},
		{"user=alice&group=g1", []string{"Group/g1"}},
		{"limit=100000", []string{"/", "Group/g1", "User/Bob", "User/u1"}},
	}
	for _, c := range cases {
		var got resourcesResponse
		f.do("GET", "/connections/acme/resources?"+c.query, "", 200, &got)
		if keys := got.keys(); !slices.Equal(keys, c.want) {
			t.Errorf("?%s = %v, want %v", c.query, keys, c.want)
		}
	}
	// A filtered resource still shows all its pending records.
	f.do("GET", "/connections/acme/resources?user=zed", "", 200, &got)
	if len(got.Resources) != 1 || !slices.Equal(got.Resources[0].Records, []int64{f.g1a, f.g1b}) {
		t.Errorf("?user=zed records = %+v", got.Resources)
	}

	// Pages.
	for _, c := range []struct {
		limit int
		want  [][]string
	}{
		{1, [][]string{{"/"}, {"Group/g1"}, {"User/Bob"}, {"User/u1"}}},
		{2, [][]string{{"/", "Group/g1"}, {"User/Bob", "User/u1"}}},
		{3, [][]string{{"/", "Group/g1", "User/Bob"}, {"User/u1"}}},
		{4, [][]string{{"/", "Group/g1", "User/Bob", "User/u1"}}},
	} {
		cursor := ""
		for i, want := range c.want {
			var page resourcesResponse
			f.do("GET", "/connections/acme/resources?limit="+strconv.Itoa(c.limit)+"&cursor="+url.QueryEscape(cursor), "", 200, &page)
			if keys := page.keys(); !slices.Equal(keys, want) {
				t.Errorf("limit %d page %d = %v, want %v", c.limit, i, keys, want)
			}
			last := i == len(c.want)-1
			if (*page.NextCursor == "") != last {
				t.Errorf("limit %d page %d: next_cursor %q", c.limit, i, *page.NextCursor)
			}
			cursor = *page.NextCursor
		}
	}
	var page resourcesResponse
	f.do("GET", "/connections/acme/resources?limit=1&user=alice", "", 200, &page)
	f.do("GET", "/connections/acme/resources?limit=1&user=alice&cursor="+url.QueryEscape(*page.NextCursor), "", 200, &page)
	if keys := page.keys(); !slices.Equal(keys, []string{"User/u1"}) || *page.NextCursor != "" {
		t.Errorf("second filtered page = %v, next %q", keys, *page.NextCursor)
	}

	// Isolation.
	f.do("GET", "/connections/globex/resources?user=alice", "", 200, &got)
	if len(got.Resources) != 1 || !slices.Equal(got.Resources[0].Records, []int64{f.globex}) {
		t.Errorf("globex resources = %+v", got.Resources)
	}
	f.do("GET", "/connections/nobody/resources", "", 200, &got)
	if len(got.Resources) != 0 || *got.NextCursor != "" {
		t.Errorf("unknown connection: %+v", got)
	}
	f.do("GET", "/connections/Acme/resources", "", 200, &got)
	if len(got.Resources) != 0 {
		t.Errorf("Acme (other case) has %d resources", len(got.Resources))
	}

	// Bad parameters.
	var records recordsResponse
	f.do("GET", "/connections/acme/records?limit=1", "", 200, &records)
	for _, q := range []string{"errors=maybe", "limit=0", "limit=x", "cursor=!!", "cursor=" + url.QueryEscape(*records.NextCursor)} {
		f.do("GET", "/connections/acme/resources?"+q, "", 400, nil)
	}
	f.do("POST", "/connections/acme/resources", "", 405, nil)
}

// TestReviewPendingResourcesScan covers resources whose records span several pages of the
// scan, and a resource whose only record is the oldest.
func TestReviewPendingResourcesScan(t *testing.T) {
	f := newReviewFixture(t)
	oldest := f.save(&Record{Connection: "big", ResourceType: "User", ResourceID: "old", Attempts: 2,
		Projected: json.RawMessage(`{"id":"old","title":"t"}`)})
	// More than two pages of the scan, in one statement (SaveRecord would fsync each).
	const n = 2*resourceScanPage + 50
	_, err := f.store.db.ExecContext(t.Context(), `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $1)
		INSERT INTO records (connection, created_at, last_seen_at, method, path, resource_type, resource_id, original, effective)
		SELECT 'big', $2, $2, 'PATCH', '/scim/v2/Users/u' || (i % 3), 'User', 'u' || (i % 3), '{}', '{}' FROM seq ORDER BY i`,
		n-1, sqliteTime(suiteT0))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int64{"old": {oldest}}
	for i := range int64(n) {
		id := "u" + strconv.FormatInt(i%3, 10)
		want[id] = append(want[id], oldest+1+i)
	}
	res, next, err := PendingResources(t.Context(), f.store, "big", ResourceQuery{})
	if err != nil || next != "" {
		t.Fatalf("PendingResources = %d, %q, %v", len(res), next, err)
	}
	var order []string
	for _, r := range res {
		order = append(order, r.ID)
		if !slices.Equal(r.Records, want[r.ID]) {
			t.Errorf("%s: %d records, want %d", r.ID, len(r.Records), len(want[r.ID]))
		}
	}
	if !slices.Equal(order, []string{"u0", "u2", "u1", "old"}) { // the last record written is u0's

		t.Errorf("order = %v", order)
	}
	last := res[len(res)-1]
	if last.Attempts != 2 || compactJSON(t, last.Projected) != `{"id":"old","title":"t"}` {
		t.Errorf("old = %+v", last)
	}
	res, next, err = PendingResources(t.Context(), f.store, "big", ResourceQuery{Limit: 3})
	if err != nil || len(res) != 3 || next == "" {
		t.Fatalf("limit 3: %d, %q, %v", len(res), next, err)
	}
	res, next, err = PendingResources(t.Context(), f.store, "big", ResourceQuery{Limit: 3, Cursor: next})
	if err != nil || len(res) != 1 || res[0].ID != "old" || !slices.Equal(res[0].Records, []int64{oldest}) || next != "" {
		t.Errorf("second page: %+v, %q, %v", res, next, err)
	}
}

type warningSummaryResponse struct {
	Attributes []struct {
		ResourceType string `json:"resource_type"`
		Attribute    string `json:"attribute"`
		UsersMissing int64  `json:"users_missing"`
		Fallbacks    []struct {
			Source     string `json:"source"`
			Count      int64  `json:"count"`
			LastSeenAt string `json:"last_seen_at"`
		} `json:"fallbacks"`
	} `json:"attributes"`
}

type warningUsersResponse struct {
	Users []struct {
		ResourceType string   `json:"resource_type"`
		Key          string   `json:"key"`
		Attributes   []string `json:"attributes"`
		Count        int64    `json:"count"`
		LastSeenAt   string   `json:"last_seen_at"`
	} `json:"users"`
	NextCursor *string `json:"next_cursor"`
}

type userWarningsResponse struct {
	Key      *string `json:"key"`
	Warnings []struct {
		ResourceType string `json:"resource_type"`
		Attribute    string `json:"attribute"`
		Count        int64  `json:"count"`
		FirstSeenAt  string `json:"first_seen_at"`
		LastSeenAt   string `json:"last_seen_at"`
		Example      *struct {
			RecordID  int64         `json:"record_id"`
			Original  StoredRequest `json:"original"`
			Effective StoredRequest `json:"effective"`
		} `json:"example"`
	} `json:"warnings"`
}

func TestReviewWarnings(t *testing.T) {
	f := newReviewFixture(t)
	ctx := t.Context()
	note := func(n WarningNote) {
		t.Helper()
		if n.At.IsZero() {
			n.At = suiteT0
		}
		if _, err := f.store.NoteWarnings(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// Preview: the record is the example.
	ex := f.seed("acme", "User", "Ann Lee/ops", "u1", "POST", StatusPending)
	note(WarningNote{Connection: "acme", ResourceType: "User", Key: "Ann Lee/ops", Missing: []string{"favoriteColor", "title"}, ExampleRecordID: ex,
		Fallbacks: []FallbackUse{{Attribute: "department", Source: "dept"}}})
	note(WarningNote{Connection: "acme", ResourceType: "User", Key: "ann lee/ops", Missing: []string{"favoriteColor"}, At: suiteT0.Add(time.Minute)})
	// Live: an observed example.
	obs := &Record{Method: "POST", Path: "/scim/v2/Users", ResourceType: "User", Key: "bo", Operation: "create",
		Original:  StoredRequest{Method: "POST", URL: "/scim/v2/Users", Body: json.RawMessage(`{"userName":"bo","favorite_color":null}`)},
		Effective: StoredRequest{Method: "POST", URL: "/scim/v2/Users", Body: json.RawMessage(`{"userName":"bo"}`)}}
	note(WarningNote{Connection: "acme", ResourceType: "User", Key: "bo", Missing: []string{"favoriteColor"}, Example: obs})
	note(WarningNote{Connection: "acme", ResourceType: "User", Key: "cy", Missing: []string{"title"}})
	note(WarningNote{Connection: "acme", ResourceType: "User", Key: "cy", Present: []string{"title"}, At: suiteT0.Add(time.Hour)})
	note(WarningNote{Connection: "globex", ResourceType: "User", Key: "ann lee/ops", Missing: []string{"nickName"}})

	var conns connectionsResponse
	f.do("GET", "/connections", "", 200, &conns)
	want := []connectionView{
		{Name: "acme", Mode: ModePreview, Pending: 1, Warnings: 3},
		{Name: "configured", Mode: ModePreview},
		{Name: "globex", Mode: ModeLive, Warnings: 1}, // warnings only: listed
	}
	if !slices.Equal(conns.Connections, want) {
		t.Errorf("GET /connections = %+v\nwant %+v", conns.Connections, want)
	}

	var sum warningSummaryResponse
	f.do("GET", "/connections/acme/warnings", "", 200, &sum)
	var attrs []string
	for _, a := range sum.Attributes {
		attrs = append(attrs, a.ResourceType+"/"+a.Attribute+"="+strconv.FormatInt(a.UsersMissing, 10))
		if a.Fallbacks == nil {
			t.Errorf("%s: fallbacks is null, want []", a.Attribute)
		}
	}
	if want := []string{"User/department=0", "User/favoriteColor=2", "User/title=1"}; !slices.Equal(attrs, want) {
		t.Errorf("summary = %v, want %v", attrs, want)
	}
	if fb := sum.Attributes[0].Fallbacks; len(fb) != 1 || fb[0].Source != "dept" || fb[0].Count != 1 || !strings.HasPrefix(fb[0].LastSeenAt, "2025-03-04T04:06:07.123456Z") {
		t.Errorf("fallbacks = %+v", fb)
	}
	f.do("GET", "/connections/nobody/warnings", "", 200, &sum)
	if sum.Attributes == nil || len(sum.Attributes) != 0 {
		t.Errorf("summary of nobody = %+v", sum.Attributes)
	}

	var users warningUsersResponse
	f.do("GET", "/connections/acme/warnings/users", "", 200, &users)
	if len(users.Users) != 2 || users.NextCursor == nil || *users.NextCursor != "" {
		t.Fatalf("users = %+v", users)
	}
	ann := users.Users[0]
	if ann.Key != "ann lee/ops" && ann.Key != "Ann Lee/ops" || ann.ResourceType != "User" || ann.Count != 3 ||
		!slices.Equal(ann.Attributes, []string{"favoriteColor", "title"}) || !strings.HasPrefix(ann.LastSeenAt, "2025-03-04T04:07:07") {
		t.Errorf("first user = %+v", ann)
	}
	f.do("GET", "/connections/acme/warnings/users?attribute=title", "", 200, &users)
	if len(users.Users) != 1 || users.Users[0].Count != 3 {
		t.Errorf("users missing title = %+v", users.Users)
	}
	f.do("GET", "/connections/acme/warnings/users?limit=1", "", 200, &users)
	if len(users.Users) != 1 || users.NextCursor == nil || *users.NextCursor == "" {
		t.Fatalf("page 1 = %+v", users)
	}
	f.do("GET", "/connections/acme/warnings/users?limit=1&cursor="+url.QueryEscape(*users.NextCursor), "", 200, &users)
	if len(users.Users) != 1 || users.Users[0].Key != "bo" || *users.NextCursor != "" {
		t.Errorf("page 2 = %+v", users)
	}
	f.do("GET", "/connections/acme/warnings/users?cursor=nope", "", 400, nil)
	f.do("GET", "/connections/acme/warnings/users?limit=0", "", 400, nil)
	f.do("GET", "/connections/acme/warnings/users?limit=x", "", 400, nil)
	f.do("GET", "/connections/other/warnings/users", "", 200, &users)
	if users.Users == nil || len(users.Users) != 0 {
		t.Errorf("users of another connection = %+v", users.Users)
	}

	// One user's warnings, with their examples; the key is escaped and case-insensitive.
	var uw userWarningsResponse
	f.do("GET", "/connections/acme/warnings/users/"+url.PathEscape("ANN LEE/OPS"), "", 200, &uw)
	if uw.Key == nil || *uw.Key != "ann lee/ops" || len(uw.Warnings) != 2 {
		t.Fatalf("ann = %+v", uw)
	}
	fav, title := uw.Warnings[0], uw.Warnings[1]
	if fav.Attribute != "favoriteColor" || fav.Count != 2 || title.Attribute != "title" || title.Count != 1 ||
		!strings.HasPrefix(fav.FirstSeenAt, "2025-03-04T04:06:07") || !strings.HasPrefix(fav.LastSeenAt, "2025-03-04T04:07:07") {
		t.Errorf("ann's warnings = %+v", uw.Warnings)
	}
	for _, w := range uw.Warnings {
		if w.Example == nil || w.Example.RecordID != ex || w.Example.Original.Method != "POST" ||
			compactJSON(t, w.Example.Original.Body) != `{"userName":"Ann Lee/ops","secretish":"body"}` || w.Example.Effective.Text != "effective text Ann Lee/ops" {
			t.Errorf("%s: example = %+v", w.Attribute, w.Example)
		}
	}
	f.do("GET", "/connections/acme/warnings/users/bo", "", 200, &uw)
	if len(uw.Warnings) != 1 || uw.Warnings[0].Example == nil || compactJSON(t, uw.Warnings[0].Example.Original.Body) != `{"userName":"bo","favorite_color":null}` ||
		compactJSON(t, uw.Warnings[0].Example.Effective.Body) != `{"userName":"bo"}` {
		t.Errorf("bo = %+v", uw)
	}
	// Resolved and unknown users have no open warnings; other connections see none.
	for _, path := range []string{"/connections/acme/warnings/users/cy", "/connections/acme/warnings/users/nobody",
		"/connections/globex/warnings/users/bo"} {
		f.do("GET", path, "", 200, &uw)
		if uw.Warnings == nil || len(uw.Warnings) != 0 {
			t.Errorf("%s = %+v", path, uw)
		}
	}

	// Clearing the preview keeps the warnings; their examples become null.
	f.do("DELETE", "/connections/acme/records", "", 200, nil)
	f.do("GET", "/connections/acme/warnings/users/"+url.PathEscape("ann lee/ops"), "", 200, &uw)
	if len(uw.Warnings) != 2 || uw.Warnings[0].Example != nil || uw.Warnings[1].Example != nil {
		t.Errorf("after DELETE records: %+v", uw)
	}
	f.do("GET", "/connections", "", 200, &conns)
	if conns.Connections[0].Name != "acme" || conns.Connections[0].Pending != 0 || conns.Connections[0].Warnings != 3 {
		t.Errorf("acme after DELETE records = %+v", conns.Connections[0])
	}
	f.do("POST", "/connections/acme/warnings", "", 405, nil)
	f.do("GET", "/connections/acme/warnings/users/a/b", "", 404, nil)

	// Observed records are listed with ?status=observed.
	var list recordsResponse
	note(WarningNote{Connection: "acme", ResourceType: "User", Key: "dee", Missing: []string{"x"}, Example: obs})
	f.do("GET", "/connections/acme/records?status=observed", "", 200, &list)
	if len(list.Records) != 1 || list.Records[0]["status"] != "observed" {
		t.Errorf("observed records = %+v", list.Records)
	}
}
