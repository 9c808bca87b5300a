package shadow_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

const enterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// warnRules: favoriteColor (from favorite_color) and the enterprise department must be
// there; externalId is mapped without a warning.
func warnRules(t testing.TB) *rules.Set {
	t.Helper()
	set, err := rules.Compile(map[string]rules.ResourceRules{
		"User": {Rules: []rules.Rule{
			{Target: "favoriteColor", From: []string{"favorite_color"}, WarnIfMissing: true},
			{Target: enterpriseUser + ":department", From: []string{"dept"}, WarnIfMissing: true},
			{Target: "nickName", From: []string{"nick"}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// newWarnings is a started recorder over st, closed at the end of the test, collecting
// the warnings it opens.
type warningsFixture struct {
	t     *testing.T
	store *shadow.SQLiteStore
	rec   *shadow.WarningRecorder
	eng   *shadow.Engine
	next  *recordingNext
	mu    sync.Mutex
	news  []shadow.NewWarning
	errs  []error
}

func newWarningsFixture(t *testing.T, mode shadow.Mode, st shadow.Store) *warningsFixture {
	t.Helper()
	f := &warningsFixture{t: t, store: openStore(t), next: &recordingNext{}}
	if st == nil {
		st = f.store
	}
	f.rec = shadow.NewWarningRecorder(0)
	f.rec.OnNew = func(w shadow.NewWarning) {
		f.mu.Lock()
		f.news = append(f.news, w)
		f.mu.Unlock()
	}
	f.rec.OnError = func(err error) {
		f.mu.Lock()
		f.errs = append(f.errs, err)
		f.mu.Unlock()
	}
	f.rec.Start(st)
	t.Cleanup(func() { f.rec.Close(5 * time.Second) })
	f.eng = &shadow.Engine{
		Rules:         warnRules(t),
		Connection:    func(*http.Request) string { return testConn },
		DefaultMode:   mode,
		Store:         st,
		Warnings:      f.rec,
		RedactHeaders: []string{"X-Api-Key"},
	}
	return f
}

// send serves one request and returns its status.
func (f *warningsFixture) send(method, target, body string) int {
	f.t.Helper()
	r := newRequest(method, target, body)
	r.Header.Set("X-Api-Key", "secret-api-key")
	w := &statusRecorder{header: http.Header{}}
	f.eng.ServeHTTP(w, r, f.next)
	return w.status
}

// flush waits for the bookkeeping of the requests sent so far.
func (f *warningsFixture) flush() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.rec.Flush(ctx); err != nil {
		f.t.Fatalf("Flush: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		f.t.Fatalf("bookkeeping errors: %v", f.errs)
	}
}

func (f *warningsFixture) opened() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, w := range f.news {
		out = append(out, w.Key+"/"+w.Attribute)
	}
	return out
}

// open returns the open warnings of key as "attribute:count".
func (f *warningsFixture) open(key string) []string {
	f.t.Helper()
	ws, err := f.store.UserWarnings(context.Background(), testConn, key)
	if err != nil {
		f.t.Fatal(err)
	}
	out := []string{}
	for _, w := range ws {
		out = append(out, w.Attribute+":"+strings.Repeat("I", int(w.Count)))
	}
	return out
}

type statusRecorder struct {
	header http.Header
	status int
}

func (w *statusRecorder) Header() http.Header { return w.header }
func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
func (w *statusRecorder) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

const dept = `"` + enterpriseUser + `":{"department":"R&D"}`

func user(name, extra string) string {
	s := `{"schemas":["` + userSchema + `"],"userName":"` + name + `","password":"` + userPassword + `"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestWarningsLive(t *testing.T) {
	f := newWarningsFixture(t, shadow.ModeLive, nil)
	ctx := context.Background()

	// Ada lacks both; twice. Bob has both, one through a fallback.
	f.send("POST", "/scim/v2/Users", user("ada@example.com", ""))
	f.send("POST", "/scim/v2/Users", user("ADA@example.com", `"favorite_color":null`))
	f.send("POST", "/scim/v2/Users", user("bob@example.com", `"favorite_color":"teal",`+dept))
	f.flush()
	if len(f.next.writes()) != 3 {
		t.Fatalf("backend got %d writes, want 3", len(f.next.writes()))
	}
	if got := f.open("ada@example.com"); !slices.Equal(got, []string{"favoriteColor:II", enterpriseUser + ":department:II"}) {
		t.Errorf("ada = %v", got)
	}
	if got := f.open("bob@example.com"); len(got) != 0 {
		t.Errorf("bob = %v", got)
	}
	if got := f.opened(); !slices.Equal(got, []string{"ada@example.com/favoriteColor", "ada@example.com/" + enterpriseUser + ":department"}) {
		t.Errorf("opened = %v", got)
	}

	// One observed record, the first request, redacted.
	recs, _, err := f.store.Records(ctx, testConn, shadow.RecordQuery{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("records = %d, %v; want one example", len(recs), err)
	}
	ex, err := f.store.Record(ctx, testConn, recs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != shadow.StatusObserved || ex.Key != "ada@example.com" || ex.Operation != "create" || ex.Method != "POST" {
		t.Errorf("example = %+v", ex)
	}
	for _, sr := range []shadow.StoredRequest{ex.Original, ex.Effective} {
		raw, _ := json.Marshal(sr)
		if strings.Contains(string(raw), userPassword) || strings.Contains(string(raw), "okta-api-token") ||
			strings.Contains(string(raw), "secret-api-key") {
			t.Errorf("secret stored in the example: %s", raw)
		}
		if sr.URL != "/scim/v2/Users" || sr.Header["Content-Length"] != nil || sr.Header["User-Agent"] == nil {
			t.Errorf("stored request = %+v", sr)
		}
	}
	ws, _ := f.store.UserWarnings(ctx, testConn, "ada@example.com")
	for _, w := range ws {
		if w.ExampleRecordID != ex.ID {
			t.Errorf("%s: example %d, want %d", w.Attribute, w.ExampleRecordID, ex.ID)
		}
	}
	f.mu.Lock()
	if len(f.news) != 2 || f.news[0].RecordID != ex.ID || f.news[0].Connection != testConn || f.news[0].ResourceType != "User" {
		t.Errorf("new warnings = %+v", f.news)
	}
	f.mu.Unlock()

	// A PUT with the color resolves it (and makes the department remember the id); a
	// PATCH by id then sets the department through its fallback.
	f.send("PUT", "/scim/v2/Users/u-ada", user("ada@example.com", `"favorite_color":"red"`))
	f.flush()
	if got := f.open("ada@example.com"); !slices.Equal(got, []string{enterpriseUser + ":department:III"}) {
		t.Errorf("after PUT = %v", got)
	}
	f.send("PATCH", "/scim/v2/Users/u-ada", `{"schemas":["`+patchSchema+`"],"Operations":[{"op":"remove","path":"favoriteColor"}]}`)
	f.flush()
	if got := f.open("ada@example.com"); len(got) != 1 {
		t.Errorf("a remove resolved: %v", got)
	}
	f.send("PATCH", "/scim/v2/Users/u-ada", `{"schemas":["`+patchSchema+`"],"Operations":[{"op":"add","value":{"dept":"Ops"}}]}`)
	f.flush()
	if got := f.open("ada@example.com"); len(got) != 0 {
		t.Errorf("after PATCH = %v", got)
	}
	if n := len(f.opened()); n != 2 {
		t.Errorf("opened %d warnings, want 2", n)
	}

	// Fallbacks, from the POST and the PATCH (rewritten to the target).
	sum, err := f.store.WarningSummary(ctx, testConn)
	if err != nil {
		t.Fatal(err)
	}
	fallbacks := map[string]int64{}
	for _, a := range sum {
		for _, fb := range a.Fallbacks {
			fallbacks[a.Attribute+"<"+fb.Source] = fb.Count
		}
	}
	want := map[string]int64{"favoriteColor<favorite_color": 2, enterpriseUser + ":department<dept": 1}
	if len(fallbacks) != len(want) || fallbacks["favoriteColor<favorite_color"] != 2 || fallbacks[enterpriseUser+":department<dept"] != 1 {
		t.Errorf("fallbacks = %v, want %v", fallbacks, want)
	}
	if f.rec.Dropped() != 0 {
		t.Errorf("dropped %d", f.rec.Dropped())
	}
}

func TestWarningsPreview(t *testing.T) {
	f := newWarningsFixture(t, shadow.ModePreview, nil)
	ctx := context.Background()
	body := user("cy@example.com", `"favorite_color":"blue"`)
	if st := f.send("POST", "/scim/v2/Users", body); st != http.StatusTooManyRequests {
		t.Fatalf("status %d", st)
	}
	f.send("POST", "/scim/v2/Users", body) // the IdP's retry: noted once
	f.flush()
	recs, _, _ := f.store.Records(ctx, testConn, shadow.RecordQuery{})
	if len(recs) != 1 || recs[0].Attempts != 2 || recs[0].Status != shadow.StatusPending {
		t.Fatalf("records = %+v", recs)
	}
	ws, err := f.store.UserWarnings(ctx, testConn, "cy@example.com")
	if err != nil || len(ws) != 1 || ws[0].Attribute != enterpriseUser+":department" || ws[0].Count != 1 || ws[0].ExampleRecordID != recs[0].ID {
		t.Fatalf("warnings = %+v, %v", ws, err)
	}
	if got := f.opened(); !slices.Equal(got, []string{"cy@example.com/" + enterpriseUser + ":department"}) {
		t.Errorf("opened = %v", got)
	}
	// A PUT carrying it resolves it; the preview still has only pending records.
	f.send("PUT", "/scim/v2/Users/u-cy", user("cy@example.com", `"favoriteColor":"blue",`+dept))
	f.flush()
	if got := f.open("cy@example.com"); len(got) != 0 {
		t.Errorf("after PUT = %v", got)
	}
	recs, _, _ = f.store.Records(ctx, testConn, shadow.RecordQuery{Status: shadow.StatusObserved})
	if len(recs) != 0 {
		t.Errorf("observed records in preview: %d", len(recs))
	}
	infos, _ := f.store.Connections(ctx)
	if len(infos) != 1 || infos[0].Pending != 2 || infos[0].Warnings != 0 {
		t.Errorf("connections = %+v", infos)
	}
}

func TestWarningsBulk(t *testing.T) {
	f := newWarningsFixture(t, shadow.ModeLive, nil)
	f.send("POST", "/scim/v2/Bulk", `{"schemas":["`+bulkSchema+`"],"Operations":[
		{"method":"POST","path":"/Users","bulkId":"a","data":`+user("dee@example.com", `"favorite_color":"red"`)+`},
		{"method":"POST","path":"/Users","bulkId":"b","data":`+user("eve@example.com", `"favoriteColor":"red",`+dept)+`},
		{"method":"DELETE","path":"/Users/u-x"}]}`)
	f.flush()
	if got := f.open("dee@example.com"); !slices.Equal(got, []string{enterpriseUser + ":department:I"}) {
		t.Errorf("dee = %v", got)
	}
	if got := f.open("eve@example.com"); len(got) != 0 {
		t.Errorf("eve = %v", got)
	}
	ws, _ := f.store.UserWarnings(context.Background(), testConn, "dee@example.com")
	ex, err := f.store.Record(context.Background(), testConn, ws[0].ExampleRecordID)
	if err != nil || ex.Operation != "bulk" || !strings.Contains(string(ex.Original.Body), "favorite_color") {
		t.Errorf("bulk example = %+v, %v", ex, err)
	}
}

// blockingStore blocks NoteWarnings until release is closed.
type blockingStore struct {
	shadow.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingStore) NoteWarnings(ctx context.Context, n shadow.WarningNote) (shadow.NoteResult, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.Store.NoteWarnings(ctx, n)
}

// TestWarningsOffTheRequestPath: a store that does not answer never holds a live
// request up; a full queue drops (and counts) instead of waiting; Close gives up after
// its timeout and the rest is dropped.
func TestWarningsOffTheRequestPath(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}), release: make(chan struct{})}
	f := &warningsFixture{t: t, store: openStore(t), next: &recordingNext{}}
	bs.Store = f.store
	f.rec = shadow.NewWarningRecorder(2)
	f.rec.Start(bs)
	f.eng = &shadow.Engine{Rules: warnRules(t), Connection: func(*http.Request) string { return testConn },
		DefaultMode: shadow.ModeLive, Store: bs, Warnings: f.rec}

	f.send("POST", "/scim/v2/Users", user("u0@example.com", ""))
	<-bs.entered // the worker is stuck in the store
	for i := 1; i <= 5; i++ {
		if st := f.send("POST", "/scim/v2/Users", user("u"+string(rune('0'+i))+"@example.com", "")); st != http.StatusOK {
			t.Fatalf("request %d: status %d", i, st)
		}
	}
	if n := len(f.next.writes()); n != 6 {
		t.Fatalf("backend got %d writes, want 6", n)
	}
	if d := f.rec.Dropped(); d != 3 {
		t.Errorf("dropped = %d, want 3 (queue of 2)", d)
	}
	if f.rec.Close(20 * time.Millisecond) {
		t.Error("Close reported drained while the store was blocked")
	}
	close(bs.release)
	if !f.rec.Close(5 * time.Second) {
		t.Fatal("Close did not finish after the store answered")
	}
	if d := f.rec.Dropped(); d != 5 {
		t.Errorf("dropped after Close = %d, want 5 (the two queued ones too)", d)
	}
	// After Close, writes are still served, and their bookkeeping dropped.
	if st := f.send("POST", "/scim/v2/Users", user("late@example.com", "")); st != http.StatusOK {
		t.Errorf("after Close: %d", st)
	}
	if d := f.rec.Dropped(); d != 6 {
		t.Errorf("dropped after a late write = %d, want 6", d)
	}
	if err := f.rec.Flush(context.Background()); err == nil {
		t.Error("Flush after Close: no error")
	}
	if got := f.open("u0@example.com"); len(got) != 2 {
		t.Errorf("the first write's warnings = %v", got)
	}
}

// TestWarningsObserverSource: without Engine.Warnings the engine uses its Observer's
// recorder; writes queued before Start wait for it; no recorder, no bookkeeping.
func TestWarningsObserverSource(t *testing.T) {
	st := openStore(t)
	rec := shadow.NewWarningRecorder(0)
	eng := &shadow.Engine{Rules: warnRules(t), Connection: func(*http.Request) string { return testConn },
		DefaultMode: shadow.ModeLive, Store: st, Observer: sourceObserver{rec}}
	next := &recordingNext{}
	eng.ServeHTTP(&statusRecorder{header: http.Header{}}, newRequest("POST", "/scim/v2/Users", user("src@example.com", "")), next)
	rec.Start(st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ws, err := st.UserWarnings(ctx, testConn, "src@example.com"); err != nil || len(ws) != 2 {
		t.Errorf("warnings = %+v, %v", ws, err)
	}
	rec.Close(time.Second)

	eng.Observer = nil
	eng.ServeHTTP(&statusRecorder{header: http.Header{}}, newRequest("POST", "/scim/v2/Users", user("none@example.com", "")), next)
	if ws, _ := st.UserWarnings(ctx, testConn, "none@example.com"); len(ws) != 0 {
		t.Errorf("warnings without a recorder: %+v", ws)
	}
}

type sourceObserver struct{ rec *shadow.WarningRecorder }

func (sourceObserver) Observe(*http.Request, *shadow.Decision)    {}
func (o sourceObserver) WarningRecorder() *shadow.WarningRecorder { return o.rec }
