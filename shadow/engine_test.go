package shadow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// The tests of this file drive shadow.Engine with httptest requests, a real SQLite store
// and a recording next handler standing in for reverse_proxy. They check the invariants
// of ARCHITECTURE.md: 1 (no preview write reaches the backend), 2 (recorded means
// committed), 3 (fail closed), 4 (reads pass), 5 (no secret stored) and 7 (live mode
// never blocks what the backend would accept).

const (
	testConn     = "acme"
	userSchema   = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchSchema  = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	bulkSchema   = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	bearerSecret = "Bearer okta-api-token-0123456789"
	userPassword = "t1meMachine!x9"
)

// errInjected is what faultStore returns when told to fail.
var errInjected = errors.New("injected store failure")

// openStore opens a SQLite store in a fresh file of the test's temporary directory.
func openStore(t testing.TB) *shadow.SQLiteStore {
	t.Helper()
	s, err := shadow.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "shadow.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// faultStore is a real store whose SaveRecord and Modes can be made to fail or block.
type faultStore struct {
	shadow.Store
	failSave   atomic.Bool
	blockSave  atomic.Bool // SaveRecord waits for its context to end and returns its error
	failModes  atomic.Bool
	saves      atomic.Int64
	modesCalls atomic.Int64
	// beforeSave, when set, runs at the start of every SaveRecord with its context.
	beforeSave func(ctx context.Context)
}

func (s *faultStore) SaveRecord(ctx context.Context, rec *shadow.Record) (shadow.Record, error) {
	s.saves.Add(1)
	if s.beforeSave != nil {
		s.beforeSave(ctx)
	}
	if s.blockSave.Load() {
		<-ctx.Done()
		return shadow.Record{}, ctx.Err()
	}
	if s.failSave.Load() {
		return shadow.Record{}, errInjected
	}
	return s.Store.SaveRecord(ctx, rec)
}

func (s *faultStore) Modes(ctx context.Context) (map[string]shadow.Mode, error) {
	s.modesCalls.Add(1)
	if s.failModes.Load() {
		return nil, errInjected
	}
	return s.Store.Modes(ctx)
}

// received is one request as the next handler got it.
type received struct {
	Method        string
	URI           string // r.URL.RequestURI()
	Body          []byte
	ContentLength int64
	Header        http.Header
}

// recordingNext stands in for reverse_proxy: it records what it receives and answers 200.
type recordingNext struct {
	mu  sync.Mutex
	got []received
}

func (n *recordingNext) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	n.mu.Lock()
	n.got = append(n.got, received{
		Method: r.Method, URI: r.URL.RequestURI(), Body: body,
		ContentLength: r.ContentLength, Header: r.Header.Clone(),
	})
	n.mu.Unlock()
	w.Header().Set("Content-Type", shadow.ContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"from":"backend"}`)
}

func (n *recordingNext) calls() []received {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]received(nil), n.got...)
}

// writes are the calls that could change the backend: anything but GET and HEAD (a
// live-state fetch through next is a GET and allowed in preview).
func (n *recordingNext) writes() []received {
	var out []received
	for _, c := range n.calls() {
		if c.Method != http.MethodGet && c.Method != http.MethodHead {
			out = append(out, c)
		}
	}
	return out
}

// decisionLog is an Observer keeping every decision.
type decisionLog struct {
	mu   sync.Mutex
	list []shadow.Decision
}

func (l *decisionLog) Observe(_ *http.Request, d *shadow.Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, *d)
}

func (l *decisionLog) all() []shadow.Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]shadow.Decision(nil), l.list...)
}

func (l *decisionLog) last(t *testing.T) shadow.Decision {
	t.Helper()
	all := l.all()
	if len(all) == 0 {
		t.Fatal("no decision was observed")
	}
	return all[len(all)-1]
}

// colorRules maps favorite_color to favoriteColor for users.
func colorRules(t testing.TB) *rules.Set {
	t.Helper()
	set, err := rules.Compile(map[string]rules.ResourceRules{
		"User": {Rules: []rules.Rule{{Target: "favoriteColor", From: []string{"favorite_color"}}}},
	})
	if err != nil {
		t.Fatalf("rules.Compile: %v", err)
	}
	return set
}

type fixture struct {
	t     *testing.T
	eng   *shadow.Engine
	store *shadow.SQLiteStore
	next  *recordingNext
	obs   *decisionLog
}

// newFixture is an engine for connection "acme" in mode, with the color rules, a real
// SQLite store (wrapped by fs when fs is not nil) and an observer.
func newFixture(t *testing.T, mode shadow.Mode) *fixture {
	t.Helper()
	f := &fixture{t: t, store: openStore(t), next: &recordingNext{}, obs: &decisionLog{}}
	f.eng = &shadow.Engine{
		Rules:       colorRules(t),
		Connection:  func(*http.Request) string { return testConn },
		DefaultMode: mode,
		Store:       f.store,
		Observer:    f.obs,
		Now:         func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) },
	}
	return f
}

// faulty puts a faultStore around the fixture's store.
func (f *fixture) faulty() *faultStore {
	fs := &faultStore{Store: f.store}
	f.eng.Store = fs
	return fs
}

// serve runs one request through the engine; a panic fails the test instead of the binary.
func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	f.t.Helper()
	w := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != nil {
				f.t.Errorf("engine panicked on %s %s: %v", r.Method, r.URL, p)
				w.Code = -1
			}
		}()
		f.eng.ServeHTTP(w, r, f.next)
	}()
	return w
}

func (f *fixture) records() []shadow.Record {
	f.t.Helper()
	recs, _, err := f.store.Records(context.Background(), testConn, shadow.RecordQuery{})
	if err != nil {
		f.t.Fatalf("Records: %v", err)
	}
	return recs
}

// newRequest is an IdP request with a JSON body (none when body is empty) and a bearer token.
func newRequest(method, target, body string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", shadow.ContentType)
	}
	r.Header.Set("Authorization", bearerSecret)
	r.Header.Set("User-Agent", "Okta SCIM Client 1.0.0")
	return r
}

// scimErrorBody is the RFC 7644 §3.12 error body.
type scimErrorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType"`
	Detail   string   `json:"detail"`
}

// assertSCIMError checks that w is an RFC 7644 error with status.
func assertSCIMError(t testing.TB, w *httptest.ResponseRecorder, status int) scimErrorBody {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != shadow.ContentType {
		t.Errorf("Content-Type = %q, want %q", ct, shadow.ContentType)
	}
	var e scimErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body, err)
	}
	if !reflect.DeepEqual(e.Schemas, []string{shadow.ErrorSchema}) {
		t.Errorf("schemas = %q, want [%q]", e.Schemas, shadow.ErrorSchema)
	}
	if e.Status != strconv.Itoa(status) {
		t.Errorf("status member = %q, want %q", e.Status, strconv.Itoa(status))
	}
	if e.Detail == "" {
		t.Error("detail is empty")
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length = %q, body has %d bytes", cl, w.Body.Len())
	}
	return e
}

// assertRecorded checks the "recorded" answer and returns the stored record it names.
func (f *fixture) assertRecorded(w *httptest.ResponseRecorder) shadow.Record {
	f.t.Helper()
	e := assertSCIMError(f.t, w, http.StatusTooManyRequests)
	if ra := w.Header().Get("Retry-After"); ra != "600" {
		f.t.Errorf("Retry-After = %q, want 600", ra)
	}
	id, err := strconv.ParseInt(w.Header().Get("X-Scim-Shadow-Record"), 10, 64)
	if err != nil || id <= 0 {
		f.t.Fatalf("X-Scim-Shadow-Record = %q, want a record id", w.Header().Get("X-Scim-Shadow-Record"))
	}
	if !strings.Contains(e.Detail, strconv.FormatInt(id, 10)) || !strings.Contains(e.Detail, testConn) {
		f.t.Errorf("detail %q names neither record %d nor connection %q", e.Detail, id, testConn)
	}
	rec, err := f.store.Record(context.Background(), testConn, id)
	if err != nil {
		f.t.Fatalf("record %d named by the answer is not in the store: %v", id, err)
	}
	return rec
}

// assertFailedClosed checks the retryable rejection of a write that was not recorded.
func (f *fixture) assertFailedClosed(w *httptest.ResponseRecorder) {
	f.t.Helper()
	assertSCIMError(f.t, w, http.StatusTooManyRequests)
	if ra := w.Header().Get("Retry-After"); ra != "600" {
		f.t.Errorf("Retry-After = %q, want 600", ra)
	}
	if h := w.Header().Get("X-Scim-Shadow-Record"); h != "" {
		f.t.Errorf("X-Scim-Shadow-Record = %q on a write that was not recorded", h)
	}
}

// ruleCodes are the codes of the findings the rules produced, in order; other findings
// (predicted errors, live-state warnings) are left out.
func ruleCodes(fs []rules.Finding) []string {
	var codes []string
	for _, f := range fs {
		switch f.Code {
		case rules.CodeMissing, rules.CodeFallback, rules.CodeUnparseable, rules.CodeDropped, rules.CodeDefault:
			codes = append(codes, f.Code)
		}
	}
	return codes
}

// jsonEqual compares JSON documents semantically.
func jsonEqual(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: %q is not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// ---------------------------------------------------------------------------------------
// Preview mode: writes are recorded, never forwarded.

func TestEnginePreviewRecordsWrites(t *testing.T) {
	const userID = "2819c223-7f76-453a-919d-413861904646"
	oktaCreate := `{"schemas":["` + userSchema + `"],"userName":"bjensen@example.com",` +
		`"name":{"givenName":"Barbara","familyName":"Jensen"},` +
		`"emails":[{"primary":true,"value":"bjensen@example.com","type":"work"}],` +
		`"displayName":"Barbara Jensen","externalId":"00u1abcdEFGH","password":"` + userPassword + `",` +
		`"active":true,"favorite_color":"red"}`
	oktaCreateEffective := `{"schemas":["` + userSchema + `"],"userName":"bjensen@example.com",` +
		`"name":{"givenName":"Barbara","familyName":"Jensen"},` +
		`"emails":[{"primary":true,"value":"bjensen@example.com","type":"work"}],` +
		`"displayName":"Barbara Jensen","externalId":"00u1abcdEFGH","password":"[REDACTED]",` +
		`"active":true,"favoriteColor":"red"}`
	entraPatch := `{"schemas":["` + patchSchema + `"],"Operations":[` +
		`{"op":"Replace","path":"favorite_color","value":"blue"},{"op":"Replace","path":"active","value":"False"}]}`
	bulk := `{"schemas":["` + bulkSchema + `"],"failOnErrors":1,"Operations":[` +
		`{"method":"POST","path":"/Users","bulkId":"q1","data":{"schemas":["` + userSchema + `"],"userName":"alice","favorite_color":"green","password":"bulkPassw0rd"}},` +
		`{"method":"PATCH","path":"/Users/` + userID + `","data":{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"favorite_color","value":"teal"}]}},` +
		`{"method":"POST","path":"/Groups","bulkId":"g1","data":{"schemas":["` + groupSchema + `"],"displayName":"Tour Guides","favorite_color":"kept"}},` +
		`{"method":"DELETE","path":"/Users/abc"}]}`
	bulkEffective := `{"schemas":["` + bulkSchema + `"],"failOnErrors":1,"Operations":[` +
		`{"method":"POST","path":"/Users","bulkId":"q1","data":{"schemas":["` + userSchema + `"],"userName":"alice","favoriteColor":"green","password":"[REDACTED]"}},` +
		`{"method":"PATCH","path":"/Users/` + userID + `","data":{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"favoriteColor","value":"teal"}]}},` +
		`{"method":"POST","path":"/Groups","bulkId":"g1","data":{"schemas":["` + groupSchema + `"],"displayName":"Tour Guides","favorite_color":"kept"}},` +
		`{"method":"DELETE","path":"/Users/abc"}]}`

	tests := []struct {
		name          string
		method, path  string
		body          string
		wantOriginal  string // "" when no body
		wantEffective string
		wantType      string
		wantID        string
		wantKey       string
		wantOp        shadow.Operation
		wantCodes     []string // finding codes
	}{
		{
			name: "okta create user", method: "POST", path: "/scim/v2/Users", body: oktaCreate,
			wantOriginal:  strings.Replace(oktaCreate, userPassword, "[REDACTED]", 1),
			wantEffective: oktaCreateEffective,
			wantType:      "User", wantKey: "bjensen@example.com", wantOp: shadow.OpCreate,
			wantCodes: []string{"fallback_used"},
		},
		{
			name: "replace user", method: "PUT", path: "/scim/v2/Users/" + userID,
			body:          `{"schemas":["` + userSchema + `"],"id":"` + userID + `","userName":"bjensen@example.com","favoriteColor":"red"}`,
			wantOriginal:  `{"schemas":["` + userSchema + `"],"id":"` + userID + `","userName":"bjensen@example.com","favoriteColor":"red"}`,
			wantEffective: `{"schemas":["` + userSchema + `"],"id":"` + userID + `","userName":"bjensen@example.com","favoriteColor":"red"}`,
			wantType:      "User", wantID: userID, wantKey: "bjensen@example.com", wantOp: shadow.OpReplace,
		},
		{
			name: "entra patch user", method: "PATCH", path: "/scim/v2/Users/" + userID, body: entraPatch,
			wantOriginal:  entraPatch,
			wantEffective: strings.Replace(entraPatch, "favorite_color", "favoriteColor", 1),
			wantType:      "User", wantID: userID, wantOp: shadow.OpPatch,
			wantCodes: []string{"fallback_used"},
		},
		{
			name: "delete user", method: "DELETE", path: "/scim/v2/Users/" + userID,
			wantType: "User", wantID: userID, wantOp: shadow.OpDelete,
		},
		{
			name: "create group under a tenant base path", method: "POST", path: "/tenants/acme/scim/v2/Groups",
			body:          `{"schemas":["` + groupSchema + `"],"displayName":"Engineering","members":[]}`,
			wantOriginal:  `{"schemas":["` + groupSchema + `"],"displayName":"Engineering","members":[]}`,
			wantEffective: `{"schemas":["` + groupSchema + `"],"displayName":"Engineering","members":[]}`,
			wantType:      "Group", wantKey: "Engineering", wantOp: shadow.OpCreate,
		},
		{
			name: "patch group members", method: "PATCH", path: "/scim/v2/Groups/g-1",
			body:          `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + userID + `"}]}]}`,
			wantOriginal:  `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + userID + `"}]}]}`,
			wantEffective: `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + userID + `"}]}]}`,
			wantType:      "Group", wantID: "g-1", wantOp: shadow.OpPatch,
		},
		{
			name: "bulk rewritten per operation", method: "POST", path: "/scim/v2/Bulk", body: bulk,
			wantOriginal:  strings.Replace(bulk, "bulkPassw0rd", "[REDACTED]", 1),
			wantEffective: bulkEffective,
			wantOp:        shadow.OpBulk,
			wantCodes:     []string{"fallback_used", "fallback_used"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, shadow.ModePreview)
			w := f.serve(newRequest(tc.method, tc.path, tc.body))
			rec := f.assertRecorded(w)
			if n := len(f.next.writes()); n != 0 {
				t.Fatalf("a preview write reached next %d times: %+v", n, f.next.writes())
			}
			if rec.Connection != testConn || rec.Method != tc.method || rec.Path != tc.path ||
				rec.ResourceType != tc.wantType || rec.ResourceID != tc.wantID || rec.Key != tc.wantKey ||
				rec.Operation != string(tc.wantOp) || rec.Status != shadow.StatusPending || rec.Attempts != 1 {
				t.Errorf("record = {conn %q method %q path %q type %q id %q key %q op %q status %q attempts %d},\n"+
					"want {conn %q method %q path %q type %q id %q key %q op %q status pending attempts 1}",
					rec.Connection, rec.Method, rec.Path, rec.ResourceType, rec.ResourceID, rec.Key, rec.Operation, rec.Status, rec.Attempts,
					testConn, tc.method, tc.path, tc.wantType, tc.wantID, tc.wantKey, tc.wantOp)
			}
			if !rec.CreatedAt.Equal(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) {
				t.Errorf("CreatedAt = %v, want the engine's Now", rec.CreatedAt)
			}
			for _, sr := range []shadow.StoredRequest{rec.Original, rec.Effective} {
				if sr.Method != tc.method || sr.URL != tc.path {
					t.Errorf("stored request %s %s, want %s %s", sr.Method, sr.URL, tc.method, tc.path)
				}
			}
			if tc.wantOriginal == "" {
				if len(rec.Original.Body) != 0 || len(rec.Effective.Body) != 0 || rec.Original.Text != "" {
					t.Errorf("bodyless request stored a body: %s / %s / %q", rec.Original.Body, rec.Effective.Body, rec.Original.Text)
				}
			} else {
				jsonEqual(t, "original body", rec.Original.Body, tc.wantOriginal)
				jsonEqual(t, "effective body", rec.Effective.Body, tc.wantEffective)
			}
			var fs []rules.Finding
			if len(rec.Findings) > 0 {
				if err := json.Unmarshal(rec.Findings, &fs); err != nil {
					t.Fatalf("findings %s: %v", rec.Findings, err)
				}
			}
			if codes := ruleCodes(fs); !reflect.DeepEqual(codes, tc.wantCodes) {
				t.Errorf("stored finding codes = %q, want %q", codes, tc.wantCodes)
			}
			d := f.obs.last(t)
			wantTarget := shadow.Classify(tc.method, tc.path, nil)
			if d.Outcome != shadow.OutcomeRecorded || d.RecordID != rec.ID || d.Attempts != 1 ||
				d.Mode != shadow.ModePreview || d.Connection != testConn || d.Target != wantTarget || d.Err != nil {
				t.Errorf("decision = %+v, want recorded %d (attempt 1) in preview for %+v", d, rec.ID, wantTarget)
			}
		})
	}
}

// commitCheckingWriter verifies, when the status is written, that the record the answer
// names can already be read from the store.
type commitCheckingWriter struct {
	*httptest.ResponseRecorder
	store   shadow.Store
	checked atomic.Int32
	err     error
}

func (w *commitCheckingWriter) WriteHeader(status int) {
	if h := w.Header().Get("X-Scim-Shadow-Record"); h != "" {
		w.checked.Add(1)
		id, err := strconv.ParseInt(h, 10, 64)
		if err == nil {
			_, err = w.store.Record(context.Background(), testConn, id)
		}
		w.err = err
	}
	w.ResponseRecorder.WriteHeader(status)
}

func TestEnginePreviewAnswersRecordedOnlyAfterCommit(t *testing.T) {
	f := newFixture(t, shadow.ModePreview)
	w := &commitCheckingWriter{ResponseRecorder: httptest.NewRecorder(), store: f.store}
	f.eng.ServeHTTP(w, newRequest("POST", "/scim/v2/Users", `{"userName":"late@example.com"}`), f.next)
	if w.checked.Load() != 1 {
		t.Fatalf("the answer named no record (status %d, headers %v)", w.Code, w.Header())
	}
	if w.err != nil {
		t.Fatalf("record named by X-Scim-Shadow-Record was not readable when the status was written: %v", w.err)
	}
	f.assertRecorded(w.ResponseRecorder)
}

func TestEnginePreviewFailsClosed(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fixture)
		wantErr error // errors.Is target; nil: any error
	}{
		{
			name:    "SaveRecord fails",
			setup:   func(f *fixture) { f.faulty().failSave.Store(true) },
			wantErr: errInjected,
		},
		{
			name: "SaveRecord blocks past StoreTimeout",
			setup: func(f *fixture) {
				f.faulty().blockSave.Store(true)
				f.eng.StoreTimeout = 100 * time.Millisecond
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name:  "no store",
			setup: func(f *fixture) { f.eng.Store = nil },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, shadow.ModePreview)
			tc.setup(f)
			for _, r := range []*http.Request{
				newRequest("POST", "/scim/v2/Users", `{"userName":"bjensen","password":"`+userPassword+`"}`),
				newRequest("PATCH", "/scim/v2/Groups/g1", `{"Operations":[{"op":"remove","path":"members[value eq \"u1\"]"}]}`),
				newRequest("DELETE", "/scim/v2/Users/u1", ""),
				newRequest("POST", "/scim/v2/Bulk", `{"Operations":[{"method":"DELETE","path":"/Users/u1"}]}`),
			} {
				w := f.serve(r)
				f.assertFailedClosed(w)
				d := f.obs.last(t)
				if d.Outcome != shadow.OutcomeError || d.Err == nil || d.RecordID != 0 {
					t.Errorf("%s %s: decision = %+v, want outcome error with an error and no record", r.Method, r.URL, d)
				}
				if tc.wantErr != nil && !errors.Is(d.Err, tc.wantErr) {
					t.Errorf("%s %s: decision error %v, want it to wrap %v", r.Method, r.URL, d.Err, tc.wantErr)
				}
			}
			if got := f.next.writes(); len(got) != 0 {
				t.Errorf("preview writes the store could not take reached next: %+v", got)
			}
			if recs := f.records(); len(recs) != 0 {
				t.Errorf("%d records stored, want none", len(recs))
			}
		})
	}
}

func TestEnginePreviewClientCancelled(t *testing.T) {
	t.Run("before the request", func(t *testing.T) {
		f := newFixture(t, shadow.ModePreview)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := newRequest("POST", "/scim/v2/Users", `{"userName":"gone@example.com"}`).WithContext(ctx)
		rec := f.assertRecorded(f.serve(r))
		if rec.Key != "gone@example.com" {
			t.Errorf("record key = %q", rec.Key)
		}
		if n := len(f.next.writes()); n != 0 {
			t.Errorf("next called %d times", n)
		}
	})
	t.Run("while recording", func(t *testing.T) {
		f := newFixture(t, shadow.ModePreview)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fs := f.faulty()
		var storeCtxErr error // set by the hook, which runs on the serving goroutine
		fs.beforeSave = func(storeCtx context.Context) {
			cancel() // the client hangs up while the record is being committed
			<-ctx.Done()
			storeCtxErr = storeCtx.Err()
		}
		r := newRequest("PATCH", "/scim/v2/Users/u1", `{"Operations":[{"op":"replace","path":"active","value":false}]}`).WithContext(ctx)
		rec := f.assertRecorded(f.serve(r))
		if rec.ResourceID != "u1" || rec.Operation != "patch" {
			t.Errorf("record = %+v", rec)
		}
		if storeCtxErr != nil {
			t.Errorf("the store's context ended with the client's: %v", storeCtxErr)
		}
		if n := len(f.next.writes()); n != 0 {
			t.Errorf("next called %d times", n)
		}
	})
	t.Run("while recording past the timeout", func(t *testing.T) {
		f := newFixture(t, shadow.ModePreview)
		f.eng.StoreTimeout = 100 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fs := f.faulty()
		fs.blockSave.Store(true)
		fs.beforeSave = func(context.Context) { cancel() }
		f.assertFailedClosed(f.serve(newRequest("DELETE", "/scim/v2/Users/u1", "").WithContext(ctx)))
		if n := len(f.next.writes()); n != 0 {
			t.Errorf("next called %d times", n)
		}
	})
}

func TestEnginePreviewReadsPassThrough(t *testing.T) {
	tests := []struct {
		method, target, body string
		wantOp               shadow.Operation
	}{
		{"GET", "/scim/v2/Users?filter=userName+eq+%22bjensen%22&startIndex=1&count=100", "", shadow.OpRead},
		{"GET", "/scim/v2/Users/2819c223", "", shadow.OpRead},
		{"HEAD", "/scim/v2/Groups", "", shadow.OpRead},
		{"GET", "/scim/v2/ServiceProviderConfig", "", shadow.OpRead},
		{"GET", "/scim/v2/Schemas/" + userSchema, "", shadow.OpRead},
		{"GET", "/scim/v2/ResourceTypes", "", shadow.OpRead},
		{"POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"bjensen\""}`, shadow.OpSearch},
		{"POST", "/scim/v2/.search", `{"filter":"displayName sw \"Eng\""}`, shadow.OpSearch},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			f := newFixture(t, shadow.ModePreview)
			fs := f.faulty() // reads must not depend on the store
			fs.failSave.Store(true)
			fs.failModes.Store(true)
			w := f.serve(newRequest(tc.method, tc.target, tc.body))
			if w.Code != http.StatusOK || (tc.method != "HEAD" && w.Body.String() != `{"from":"backend"}`) {
				t.Fatalf("answer %d %q, want the backend's 200", w.Code, w.Body)
			}
			calls := f.next.calls()
			if len(calls) != 1 || calls[0].Method != tc.method || calls[0].URI != tc.target || string(calls[0].Body) != tc.body {
				t.Fatalf("next got %+v, want one %s %s with body %q", calls, tc.method, tc.target, tc.body)
			}
			if calls[0].Header.Get("Authorization") != bearerSecret {
				t.Errorf("Authorization not passed to the backend: %q", calls[0].Header.Get("Authorization"))
			}
			d := f.obs.last(t)
			if d.Outcome != shadow.OutcomeForwarded || d.Target.Op != tc.wantOp || d.Mode != shadow.ModePreview {
				t.Errorf("decision = %+v, want forwarded %s in preview", d, tc.wantOp)
			}
			if fs.saves.Load() != 0 {
				t.Errorf("a read was saved")
			}
		})
	}
}

func TestEngineRejection(t *testing.T) {
	tests := []struct {
		name           string
		reject         shadow.Rejection
		wantStatus     int
		wantRetryAfter string // "" for none
	}{
		{"default", shadow.Rejection{}, 429, "600"},
		{"503 for 5m", shadow.Rejection{Status: 503, RetryAfter: 5 * time.Minute}, 503, "300"},
		{"fractions round up", shadow.Rejection{Status: 429, RetryAfter: 1500 * time.Millisecond}, 429, "2"},
		{"status without Retry-After", shadow.Rejection{Status: 503}, 503, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, failing := range []bool{false, true} {
				f := newFixture(t, shadow.ModePreview)
				f.eng.Reject = tc.reject
				f.faulty().failSave.Store(failing)
				w := f.serve(newRequest("DELETE", "/scim/v2/Users/u1", ""))
				assertSCIMError(t, w, tc.wantStatus)
				if got, ok := w.Header()["Retry-After"]; tc.wantRetryAfter == "" && ok || tc.wantRetryAfter != "" && (len(got) != 1 || got[0] != tc.wantRetryAfter) {
					t.Errorf("store failing %v: Retry-After = %q, want %q", failing, got, tc.wantRetryAfter)
				}
				if hasRec := w.Header().Get("X-Scim-Shadow-Record") != ""; hasRec == failing {
					t.Errorf("store failing %v: X-Scim-Shadow-Record = %q", failing, w.Header().Get("X-Scim-Shadow-Record"))
				}
			}
		})
	}
}

func TestEngineDedupe(t *testing.T) {
	f := newFixture(t, shadow.ModePreview)
	f.eng.Connection = func(r *http.Request) string { return r.Header.Get("X-Tenant") }
	body := `{"schemas":["` + userSchema + `"],"userName":"bjensen","favorite_color":"red","password":"` + userPassword + `"}`
	send := func(tenant, token, method, path, body string) shadow.Decision {
		t.Helper()
		r := newRequest(method, path, body)
		r.Header.Set("X-Tenant", tenant)
		r.Header.Set("Authorization", token)
		w := f.serve(r)
		assertSCIMError(t, w, http.StatusTooManyRequests)
		d := f.obs.last(t)
		if d.Outcome != shadow.OutcomeRecorded || w.Header().Get("X-Scim-Shadow-Record") != strconv.FormatInt(d.RecordID, 10) {
			t.Fatalf("decision %+v, header %q", d, w.Header().Get("X-Scim-Shadow-Record"))
		}
		return d
	}
	first := send(testConn, bearerSecret, "POST", "/scim/v2/Users", body)
	steps := []struct {
		name         string
		tenant       string
		token        string
		method, path string
		body         string
		sameAsFirst  bool
		wantAttempts int
	}{
		{"identical retry", testConn, bearerSecret, "POST", "/scim/v2/Users", body, true, 2},
		{"retry with a rotated token", testConn, "Bearer rotated-token", "POST", "/scim/v2/Users", body, true, 3},
		{"retry differing only in the password", testConn, bearerSecret, "POST", "/scim/v2/Users", strings.Replace(body, userPassword, "other-Passw0rd", 1), true, 4},
		{"already rewritten body is the same effective request", testConn, bearerSecret, "POST", "/scim/v2/Users", strings.Replace(body, "favorite_color", "favoriteColor", 1), true, 5},
		{"different body", testConn, bearerSecret, "POST", "/scim/v2/Users", strings.Replace(body, "red", "blue", 1), false, 1},
		{"different path", testConn, bearerSecret, "POST", "/scim/v2/Groups", body, false, 1},
		{"different connection", "globex", bearerSecret, "POST", "/scim/v2/Users", body, false, 1},
	}
	for _, s := range steps {
		d := send(s.tenant, s.token, s.method, s.path, s.body)
		if (d.RecordID == first.RecordID) != s.sameAsFirst || d.Attempts != s.wantAttempts {
			t.Errorf("%s: record %d attempt %d, want same as %d: %v, attempt %d", s.name, d.RecordID, d.Attempts, first.RecordID, s.sameAsFirst, s.wantAttempts)
		}
	}
	rec, err := f.store.Record(context.Background(), testConn, first.RecordID)
	if err != nil || rec.Attempts != 5 {
		t.Fatalf("stored record %+v, %v: want attempts 5", rec, err)
	}
	if n := len(f.records()); n != 3 {
		t.Errorf("%d records of %s, want 3", n, testConn)
	}
	if n := len(f.next.writes()); n != 0 {
		t.Errorf("next called %d times", n)
	}
}

func TestEngineSecretsNeverStored(t *testing.T) {
	secrets := []string{
		"okta-api-token-0123456789", "session=c00kie-value", "Basic cHJveHk6c2VjcmV0", "tenant-api-key-42",
		userPassword, "n3w-Passw0rd!", "bulk-Passw0rd!", "text-Passw0rd!",
	}
	tests := []struct {
		name         string
		method, path string
		contentType  string
		body         string
		keep         []string // non-secret content the stored bodies must keep
	}{
		{"create with password", "POST", "/scim/v2/Users", shadow.ContentType,
			`{"schemas":["` + userSchema + `"],"userName":"bjensen","password":"` + userPassword + `","favorite_color":"red"}`,
			[]string{`"userName":"bjensen"`, `"red"`}},
		{"patch password", "PATCH", "/scim/v2/Users/u1", shadow.ContentType,
			`{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"password","value":"n3w-Passw0rd!"}]}`,
			[]string{`"path":"password"`, `"op":"replace"`}},
		{"path-less patch", "PATCH", "/scim/v2/Users/u1", shadow.ContentType,
			`{"Operations":[{"op":"replace","value":{"password":"n3w-Passw0rd!","active":true}}]}`,
			[]string{`"active":true`}},
		{"bulk", "POST", "/scim/v2/Bulk", shadow.ContentType,
			`{"Operations":[{"method":"POST","path":"/Users","data":{"userName":"x","password":"bulk-Passw0rd!"}}]}`,
			[]string{`"userName":"x"`, `"path":"/Users"`}},
		{"truncated json", "PUT", "/scim/v2/Users/u1", shadow.ContentType,
			`{"userName":"bjensen","password":"text-Passw0rd!","name":{"givenName":"Bar`,
			[]string{`"userName":"bjensen"`, `"givenName":"Bar`}},
		{"form body", "POST", "/scim/v2/Users", "application/x-www-form-urlencoded",
			`userName=bjensen&password=text-Passw0rd!`,
			[]string{`userName=bjensen`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, shadow.ModePreview)
			f.eng.RedactHeaders = []string{"x-tenant-api-key"}
			r := newRequest(tc.method, tc.path, tc.body)
			r.Header.Set("Content-Type", tc.contentType)
			r.Header.Set("Cookie", "session=c00kie-value")
			r.Header.Set("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0")
			r.Header.Set("X-Tenant-Api-Key", "tenant-api-key-42")
			r.Header.Set("X-Request-Id", "req-1")
			rec := f.assertRecorded(f.serve(r))
			recs, _, err := f.store.Records(context.Background(), testConn, shadow.RecordQuery{})
			if err != nil || len(recs) != 1 {
				t.Fatalf("Records: %d, %v", len(recs), err)
			}
			for _, stored := range []shadow.Record{rec, recs[0]} {
				raw, err := json.Marshal(stored)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range secrets {
					if bytes.Contains(raw, []byte(s)) {
						t.Errorf("secret %q stored: %s", s, raw)
					}
				}
				for _, sr := range []shadow.StoredRequest{stored.Original, stored.Effective} {
					for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Tenant-Api-Key"} {
						if got := sr.Header[h]; !reflect.DeepEqual(got, []string{shadow.Redacted}) {
							t.Errorf("stored header %s = %q, want [%q]", h, got, shadow.Redacted)
						}
					}
					if got := sr.Header["X-Request-Id"]; !reflect.DeepEqual(got, []string{"req-1"}) {
						t.Errorf("stored X-Request-Id = %q, want kept", got)
					}
					for _, k := range tc.keep {
						if !strings.Contains(string(sr.Body)+sr.Text, k) {
							t.Errorf("stored body %s / %q lost %s", sr.Body, sr.Text, k)
						}
					}
				}
			}
			// The request itself still carries its secrets: redaction works on copies.
			if r.Header.Get("Authorization") != bearerSecret {
				t.Errorf("the request's Authorization header was changed to %q", r.Header.Get("Authorization"))
			}
		})
	}
}

// ---------------------------------------------------------------------------------------
// Live mode: rewritten and forwarded, never blocked.

func TestEngineLiveForwardsRewritten(t *testing.T) {
	const userID = "2819c223"
	tests := []struct {
		name         string
		method       string
		target       string
		body         string
		wantURI      string
		wantBody     string // semantic JSON compare; "" for none
		wantFindings []string
	}{
		{
			name: "create", method: "POST", target: "/scim/v2/Users",
			body:         `{"schemas":["` + userSchema + `"],"userName":"bjensen","favorite_color":"red"}`,
			wantBody:     `{"schemas":["` + userSchema + `"],"userName":"bjensen","favoriteColor":"red"}`,
			wantFindings: []string{"fallback_used"},
		},
		{
			name: "patch path", method: "PATCH", target: "/scim/v2/Users/" + userID,
			body:         `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"favorite_color","value":"blue"}]}`,
			wantBody:     `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"favoriteColor","value":"blue"}]}`,
			wantFindings: []string{"fallback_used"},
		},
		{
			name: "path-less patch", method: "PATCH", target: "/scim/v2/Users/" + userID,
			body:         `{"Operations":[{"op":"replace","value":{"favorite_color":"blue","active":true}}]}`,
			wantBody:     `{"Operations":[{"op":"replace","value":{"favoriteColor":"blue","active":true}}]}`,
			wantFindings: []string{"fallback_used"},
		},
		{
			name: "bulk per operation", method: "POST", target: "/scim/v2/Bulk",
			body: `{"schemas":["` + bulkSchema + `"],"Operations":[` +
				`{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"a","favorite_color":"red"}},` +
				`{"method":"put","path":"/Users/` + userID + `","data":{"userName":"b","favorite_color":"blue"}},` +
				`{"method":"PATCH","path":"/Users/` + userID + `","data":{"Operations":[{"op":"add","path":"favorite_color","value":"tan"}]}},` +
				`{"method":"POST","path":"/Groups","data":{"displayName":"g","favorite_color":"kept"}}]}`,
			wantBody: `{"schemas":["` + bulkSchema + `"],"Operations":[` +
				`{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"a","favoriteColor":"red"}},` +
				`{"method":"put","path":"/Users/` + userID + `","data":{"userName":"b","favoriteColor":"blue"}},` +
				`{"method":"PATCH","path":"/Users/` + userID + `","data":{"Operations":[{"op":"add","path":"favoriteColor","value":"tan"}]}},` +
				`{"method":"POST","path":"/Groups","data":{"displayName":"g","favorite_color":"kept"}}]}`,
			wantFindings: []string{"fallback_used", "fallback_used", "fallback_used"},
		},
		{
			name: "unchanged body", method: "PUT", target: "/scim/v2/Users/" + userID,
			body:     `{"userName":"bjensen","favoriteColor":"red"}`,
			wantBody: `{"userName":"bjensen","favoriteColor":"red"}`,
		},
		{
			name: "delete", method: "DELETE", target: "/scim/v2/Users/" + userID,
		},
		{
			name: "filter on GET", method: "GET",
			target:  "/scim/v2/Users?filter=favorite_color%20eq%20%22red%22&startIndex=1&count=10",
			wantURI: "/scim/v2/Users?count=10&filter=favoriteColor%20eq%20%22red%22&startIndex=1",
		},
		{
			name: "attributes on GET", method: "GET",
			target:  "/scim/v2/Users/" + userID + "?attributes=userName,favorite_color",
			wantURI: "/scim/v2/Users/" + userID + "?attributes=userName%2CfavoriteColor",
		},
		{
			name: "GET without matching query is untouched", method: "GET",
			target:  "/scim/v2/Users?filter=userName+eq+%22bjensen%22",
			wantURI: "/scim/v2/Users?filter=userName+eq+%22bjensen%22",
		},
		{
			name: "search body", method: "POST", target: "/scim/v2/Users/.search",
			body:     `{"filter":"favorite_color eq \"red\"","attributes":["userName"]}`,
			wantBody: `{"filter":"favoriteColor eq \"red\"","attributes":["userName"]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []shadow.Mode{shadow.ModeLive, shadow.ModePreview} {
				if mode == shadow.ModePreview && tc.method != "GET" && !strings.HasSuffix(tc.target, ".search") {
					continue // preview writes are covered above
				}
				f := newFixture(t, mode)
				w := f.serve(newRequest(tc.method, tc.target, tc.body))
				if w.Code != http.StatusOK {
					t.Fatalf("%s: status %d %s", mode, w.Code, w.Body)
				}
				calls := f.next.calls()
				if len(calls) != 1 {
					t.Fatalf("%s: next called %d times", mode, len(calls))
				}
				c := calls[0]
				wantURI := tc.wantURI
				if wantURI == "" {
					wantURI = tc.target
				}
				if c.Method != tc.method || c.URI != wantURI {
					t.Errorf("%s: next got %s %s, want %s %s", mode, c.Method, c.URI, tc.method, wantURI)
				}
				if tc.wantBody == "" {
					if len(c.Body) != 0 {
						t.Errorf("%s: next got body %q", mode, c.Body)
					}
				} else {
					jsonEqual(t, string(mode)+" forwarded body", c.Body, tc.wantBody)
					if c.ContentLength != int64(len(c.Body)) || c.Header.Get("Content-Length") != strconv.Itoa(len(c.Body)) {
						t.Errorf("%s: ContentLength %d, header %q, body has %d bytes", mode, c.ContentLength, c.Header.Get("Content-Length"), len(c.Body))
					}
				}
				d := f.obs.last(t)
				codes := ruleCodes(d.Findings)
				if d.Outcome != shadow.OutcomeForwarded || d.Mode != mode || !reflect.DeepEqual(codes, tc.wantFindings) {
					t.Errorf("%s: decision %+v, want forwarded with findings %q", mode, d, tc.wantFindings)
				}
			}
		})
	}
}

func TestEngineLiveNeverBlocks(t *testing.T) {
	big := `{"userName":"bjensen","favorite_color":"red","note":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		maxBody     int64
		wantCode    string // finding code; "" for none
	}{
		{"non-JSON content type streams untouched, even beyond max_body", "POST", "text/plain; charset=utf-8", big, 64, ""},
		{"form body", "PUT", "application/x-www-form-urlencoded", "userName=bjensen&favorite_color=red", 0, ""},
		{"truncated JSON", "POST", shadow.ContentType, `{"userName":"bjensen","favorite_color":"re`, 0, "unparseable"},
		{"JSON array", "PUT", "application/json", `["favorite_color"]`, 0, "unparseable"},
		{"PATCH without Operations", "PATCH", shadow.ContentType, `{"op":"replace","path":"favorite_color","value":"x"}`, 0, "unparseable"},
		{"bulk without Operations", "POST", shadow.ContentType, `{"schemas":["` + bulkSchema + `"]}`, 0, "unparseable"},
		{"malformed media type", "POST", "application/scim+json; charset", `{"favorite_color":"red"}`, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, shadow.ModeLive)
			f.eng.MaxBody = tc.maxBody
			target := "/scim/v2/Users/u1"
			switch {
			case strings.Contains(tc.name, "bulk"):
				target = "/scim/v2/Bulk"
			case tc.method == "POST":
				target = "/scim/v2/Users"
			}
			r := newRequest(tc.method, target, tc.body)
			r.Header.Set("Content-Type", tc.contentType)
			w := f.serve(r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d %s, want the backend's 200", w.Code, w.Body)
			}
			calls := f.next.calls()
			if len(calls) != 1 || calls[0].Method != tc.method || string(calls[0].Body) != tc.body {
				t.Fatalf("next got %+v, want the body unchanged", calls)
			}
			if calls[0].ContentLength != int64(len(tc.body)) {
				t.Errorf("ContentLength %d, want %d", calls[0].ContentLength, len(tc.body))
			}
			d := f.obs.last(t)
			codes := ruleCodes(d.Findings)
			for _, fd := range d.Findings {
				if fd.Code == "unparseable" && fd.Severity != "warning" {
					t.Errorf("unparseable finding has severity %q, want warning", fd.Severity)
				}
			}
			want := []string(nil)
			if tc.wantCode != "" {
				want = []string{tc.wantCode}
			}
			if d.Outcome != shadow.OutcomeForwarded || !reflect.DeepEqual(codes, want) {
				t.Errorf("decision %+v (codes %q), want forwarded with %q", d, codes, want)
			}
		})
	}
}

func TestEngineMaxBody(t *testing.T) {
	body := `{"userName":"bjensen","favorite_color":"red","padding":"` + strings.Repeat("p", 100) + `"}`
	for _, mode := range []shadow.Mode{shadow.ModePreview, shadow.ModeLive} {
		for _, chunked := range []bool{false, true} {
			for _, target := range []string{"/scim/v2/Users", "/scim/v2/Users/.search"} {
				name := string(mode) + " " + target
				if chunked {
					name += " chunked"
				}
				t.Run(name, func(t *testing.T) {
					f := newFixture(t, mode)
					f.eng.MaxBody = 64
					r := newRequest("POST", target, body)
					if chunked {
						r.Body = io.NopCloser(strings.NewReader(body))
						r.ContentLength = -1
						r.Header.Del("Content-Length")
					}
					w := f.serve(r)
					e := assertSCIMError(t, w, http.StatusRequestEntityTooLarge)
					if !strings.Contains(e.Detail, "64") {
						t.Errorf("detail %q does not name the limit", e.Detail)
					}
					if n := len(f.next.calls()); n != 0 {
						t.Errorf("next called %d times", n)
					}
					if n := len(f.records()); n != 0 {
						t.Errorf("%d records stored", n)
					}
					if d := f.obs.last(t); d.Outcome != shadow.OutcomeRejected || d.Err == nil {
						t.Errorf("decision %+v, want rejected with an error", d)
					}
				})
			}
		}
	}
	t.Run("exactly max_body is accepted", func(t *testing.T) {
		f := newFixture(t, shadow.ModePreview)
		f.eng.MaxBody = int64(len(body))
		f.assertRecorded(f.serve(newRequest("POST", "/scim/v2/Users", body)))
	})
}

// errReader fails after its data, as a client that hangs up mid-body.
type errReader struct{ data io.Reader }

func (r errReader) Read(p []byte) (int, error) {
	n, err := r.data.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestEngineIncompleteBodyIsNotRecorded(t *testing.T) {
	for _, mode := range []shadow.Mode{shadow.ModePreview, shadow.ModeLive} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode)
			r := newRequest("POST", "/scim/v2/Users", `{"userName":"half`)
			r.Body = io.NopCloser(errReader{strings.NewReader(`{"userName":"half`)})
			assertSCIMError(t, f.serve(r), http.StatusBadRequest)
			if n := len(f.next.calls()); n != 0 {
				t.Errorf("next called %d times", n)
			}
			if n := len(f.records()); n != 0 {
				t.Errorf("%d records stored from an incomplete body", n)
			}
			if d := f.obs.last(t); d.Outcome != shadow.OutcomeRejected {
				t.Errorf("decision %+v, want rejected", d)
			}
		})
	}
}

func TestEngineRunTimeMode(t *testing.T) {
	f := newFixture(t, shadow.ModeLive)
	modes := shadow.NewModeTable(f.store, time.Hour)
	f.eng.Modes = modes
	ctx := context.Background()
	write := func() *httptest.ResponseRecorder {
		return f.serve(newRequest("PATCH", "/scim/v2/Users/u1", `{"Operations":[{"op":"replace","path":"active","value":false}]}`))
	}

	if w := write(); w.Code != http.StatusOK || len(f.next.writes()) != 1 {
		t.Fatalf("live: status %d, %d writes forwarded, want 200 and 1", w.Code, len(f.next.writes()))
	}
	if d := f.obs.last(t); d.Mode != shadow.ModeLive {
		t.Errorf("decision mode %q, want live", d.Mode)
	}

	if err := modes.Set(ctx, testConn, shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	f.assertRecorded(write())
	if n := len(f.next.writes()); n != 1 {
		t.Fatalf("after switching to preview, %d writes reached next, want still 1", n)
	}
	if d := f.obs.last(t); d.Mode != shadow.ModePreview || d.Outcome != shadow.OutcomeRecorded {
		t.Errorf("decision %+v, want recorded in preview", d)
	}
	// Reads still pass in preview.
	if w := f.serve(newRequest("GET", "/scim/v2/Users/u1", "")); w.Code != http.StatusOK {
		t.Errorf("read in preview: %d", w.Code)
	}

	if err := modes.Set(ctx, testConn, shadow.ModeLive); err != nil {
		t.Fatal(err)
	}
	if w := write(); w.Code != http.StatusOK || len(f.next.writes()) != 2 {
		t.Fatalf("back to live: status %d, %d writes forwarded, want 200 and 2", w.Code, len(f.next.writes()))
	}
	// Another connection keeps the default.
	other := newFixture(t, shadow.ModeLive)
	other.eng.Modes = modes
	other.eng.Connection = func(*http.Request) string { return "globex" }
	if err := modes.Set(ctx, testConn, shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	if w := other.serve(newRequest("DELETE", "/scim/v2/Users/u1", "")); w.Code != http.StatusOK || len(other.next.writes()) != 1 {
		t.Errorf("connection without an override: status %d, want forwarded", w.Code)
	}
}

func TestEngineDefaults(t *testing.T) {
	// A zero Engine is live, connection "default", no rules.
	e := &shadow.Engine{}
	next := &recordingNext{}
	body := `{"userName":"bjensen","favorite_color":"red"}`
	w := httptest.NewRecorder()
	e.ServeHTTP(w, newRequest("POST", "/Users", body), next)
	if calls := next.calls(); w.Code != 200 || len(calls) != 1 || string(calls[0].Body) != body {
		t.Fatalf("zero engine: %d, next got %+v", w.Code, calls)
	}
	// An empty connection name is "default".
	f := newFixture(t, shadow.ModePreview)
	f.eng.Connection = func(*http.Request) string { return "" }
	w = f.serve(newRequest("DELETE", "/Users/u1", ""))
	assertSCIMError(t, w, http.StatusTooManyRequests)
	if d := f.obs.last(t); d.Connection != "default" || d.Outcome != shadow.OutcomeRecorded {
		t.Errorf("decision %+v, want recorded under connection default", d)
	}
	recs, _, err := f.store.Records(context.Background(), "default", shadow.RecordQuery{})
	if err != nil || len(recs) != 1 {
		t.Errorf("records of default: %d, %v", len(recs), err)
	}
}

func TestEngineOtherRequestsPassWithoutDecision(t *testing.T) {
	for _, tc := range []struct{ method, target string }{
		{"GET", "/healthz"},
		{"OPTIONS", "/scim/v2/Users"},
		{"GET", "/scim/v2/.search"},
		{"GET", "/scim/v2/Bulk"},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			f := newFixture(t, shadow.ModePreview)
			w := f.serve(newRequest(tc.method, tc.target, ""))
			if calls := f.next.calls(); w.Code != 200 || len(calls) != 1 || calls[0].Method != tc.method || calls[0].URI != tc.target {
				t.Errorf("status %d, next got %+v", w.Code, calls)
			}
			if ds := f.obs.all(); len(ds) != 0 {
				t.Errorf("decisions %+v for a request the engine does not handle", ds)
			}
		})
	}
}

// TestEnginePreviewNeverForwardsWritesOnOddPaths checks invariant 1 for writes whose path
// the backend would still route to a resource: a tenant segment named like an endpoint in
// the base path, and an id with an encoded slash. The backend must not get the write.
func TestEnginePreviewNeverForwardsWritesOnOddPaths(t *testing.T) {
	for _, tc := range []struct{ method, target, body string }{
		{"POST", "/tenants/me/scim/v2/Users", `{"userName":"bjensen"}`},
		{"POST", "/tenants/users/scim/v2/Groups", `{"displayName":"g"}`},
		{"PATCH", "/orgs/groups/scim/v2/Users/u1", `{"Operations":[{"op":"replace","path":"active","value":false}]}`},
		{"DELETE", "/tenants/schemas/scim/v2/Users/u1", ""},
		{"DELETE", "/scim/v2/Users/ab%2Fcd", ""},
		{"PUT", "/scim/v2/Groups/x%2Fy", `{"displayName":"g"}`},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			f := newFixture(t, shadow.ModePreview)
			w := f.serve(newRequest(tc.method, tc.target, tc.body))
			if got := f.next.writes(); len(got) != 0 {
				t.Errorf("preview %s %s reached the backend as %s %s (invariant 1); answer %d", tc.method, tc.target, got[0].Method, got[0].URI, w.Code)
			}
			if w.Code < 400 {
				t.Errorf("status %d, want a rejection", w.Code)
			}
		})
	}
}

// liveBackend answers GETs like a SCIM backend holding one user u1 and one group g1, and
// records every request; it stands in for reverse_proxy when predictions read live state.
type liveBackend struct{ recordingNext }

func (b *liveBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		b.recordingNext.ServeHTTP(w, r)
		return
	}
	b.mu.Lock()
	b.got = append(b.got, received{Method: r.Method, URI: r.URL.RequestURI(), Header: r.Header.Clone()})
	b.mu.Unlock()
	w.Header().Set("Content-Type", shadow.ContentType)
	switch {
	case strings.HasSuffix(r.URL.Path, "/Users/u1"):
		_, _ = io.WriteString(w, `{"schemas":["`+userSchema+`"],"id":"u1","userName":"bjensen","name":{"givenName":"Barbara"},"active":true,`+
			`"urn:example:params:scim:schemas:extension:custom:2.0:User":{"badge":"b1"}}`)
	case strings.HasSuffix(r.URL.Path, "/Groups/g1"):
		_, _ = io.WriteString(w, `{"schemas":["`+groupSchema+`"],"id":"g1","displayName":"Ops","members":[]}`)
	case strings.HasSuffix(r.URL.Path, "/Users") || strings.HasSuffix(r.URL.Path, "/Groups"):
		_, _ = io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"schemas":["`+shadow.ErrorSchema+`"],"status":"404"}`)
	}
}

// TestEngineSecretsNeverStoredInPredictions: what a preview record predicts (live state,
// projected state, changes) is stored too, so a password must not reach it either, under
// whatever name the request gives it.
func TestEngineSecretsNeverStoredInPredictions(t *testing.T) {
	const ext = "urn:example:params:scim:schemas:extension:custom:2.0:User"
	tests := []struct {
		name, method, path, body, secret string
	}{
		{"create", "POST", "/scim/v2/Users",
			`{"schemas":["` + userSchema + `"],"userName":"new","password":"create-Secret1"}`, "create-Secret1"},
		{"create, URN-qualified", "POST", "/scim/v2/Users",
			`{"schemas":["` + userSchema + `"],"userName":"new","` + userSchema + `:password":"urn-Secret1"}`, "urn-Secret1"},
		{"create, in an extension", "POST", "/scim/v2/Users",
			`{"schemas":["` + userSchema + `","` + ext + `"],"userName":"new","` + ext + `":{"password":"ext-Secret1"}}`, "ext-Secret1"},
		{"create, as a sub-attribute", "POST", "/scim/v2/Users",
			`{"schemas":["` + userSchema + `"],"userName":"new","name":{"givenName":"N","password":"sub-Secret1"}}`, "sub-Secret1"},
		{"replace", "PUT", "/scim/v2/Users/u1",
			`{"schemas":["` + userSchema + `"],"id":"u1","userName":"bjensen","Password":"put-Secret1"}`, "put-Secret1"},
		{"patch path", "PATCH", "/scim/v2/Users/u1",
			`{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"password","value":"patch-Secret1"}]}`, "patch-Secret1"},
		{"patch URN path", "PATCH", "/scim/v2/Users/u1",
			`{"schemas":["` + patchSchema + `"],"Operations":[{"op":"Replace","path":"` + userSchema + `:password","value":"patchurn-Secret1"}]}`, "patchurn-Secret1"},
		{"patch path-less", "PATCH", "/scim/v2/Users/u1",
			`{"schemas":["` + patchSchema + `"],"Operations":[{"op":"Replace","value":{"PASSWORD":"pathless-Secret1","active":false}}]}`, "pathless-Secret1"},
		{"patch extension path", "PATCH", "/scim/v2/Users/u1",
			`{"schemas":["` + patchSchema + `"],"Operations":[{"op":"add","path":"` + ext + `:password","value":"extpath-Secret1"}]}`, "extpath-Secret1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, shadow.ModePreview)
			backend := &liveBackend{}
			w := httptest.NewRecorder()
			f.eng.ServeHTTP(w, newRequest(tc.method, tc.path, tc.body), backend)
			rec := f.assertRecorded(w)
			if got := backend.writes(); len(got) != 0 {
				t.Fatalf("a preview write reached the backend: %+v", got)
			}
			raw, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte(tc.secret)) {
				t.Errorf("secret %q stored (invariant 5):\n%s", tc.secret, raw)
			}
		})
	}
}

// TestEnginePreviewChainsPredictions: a preview write to a resource with a pending record
// predicts from that record's projection, not from the backend, which still holds the
// resource as it was (ARCHITECTURE: predictions chain). A write predicted to fail leaves no
// projection to chain from; the next write reads the backend again.
func TestEnginePreviewChainsPredictions(t *testing.T) {
	f := newFixture(t, shadow.ModePreview)
	backend := &liveBackend{}
	send := func(method, body string) shadow.Record {
		t.Helper()
		w := httptest.NewRecorder()
		f.eng.ServeHTTP(w, newRequest(method, "/scim/v2/Users/u1", body), backend)
		return f.assertRecorded(w)
	}
	fetches := func() int {
		n := 0
		for _, c := range backend.calls() {
			if c.Method == http.MethodGet && c.URI == "/scim/v2/Users/u1" {
				n++
			}
		}
		return n
	}
	patch := func(path, value string) string {
		return `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"` + path + `","value":` + value + `}]}`
	}

	first := send("PATCH", patch("name.givenName", `"Babs"`))
	if fetches() != 1 || gjson.GetBytes(first.Live, "name.givenName").String() != "Barbara" ||
		gjson.GetBytes(first.Projected, "name.givenName").String() != "Babs" {
		t.Fatalf("first PATCH: %d fetches, live %s, projected %s", fetches(), first.Live, first.Projected)
	}
	second := send("PATCH", patch("active", "false"))
	if fetches() != 1 {
		t.Errorf("the second PATCH read the backend (%d fetches) instead of the pending projection", fetches())
	}
	jsonEqual(t, "second PATCH's live state", second.Live, string(first.Projected))
	if gjson.GetBytes(second.Projected, "name.givenName").String() != "Babs" || gjson.GetBytes(second.Projected, "active").Bool() {
		t.Errorf("second PATCH's projection lost the first's change or its own: %s", second.Projected)
	}
	// A DELETE chains too, and projects nothing.
	deleted := send("DELETE", "")
	jsonEqual(t, "DELETE's live state", deleted.Live, string(second.Projected))
	if len(deleted.Projected) != 0 && string(deleted.Projected) != "null" {
		t.Errorf("DELETE projected %s", deleted.Projected)
	}
	// Nothing left to chain from: the next write reads the backend again.
	send("PATCH", patch("displayName", `"B"`))
	if fetches() != 2 {
		t.Errorf("a PATCH after a pending DELETE made %d fetches, want 2", fetches())
	}
}
