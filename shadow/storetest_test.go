package shadow

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runStoreSuite is the conformance suite every Store implementation passes. open returns
// a Store over the database of test t: the first call in a test gets an empty database,
// a later call in the same test reopens the same database. open closes what it opened
// in t.Cleanup; closing earlier must be harmless.
func runStoreSuite(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) Store)
	}{
		{"Roundtrip", suiteRoundtrip},
		{"Defaults", suiteDefaults},
		{"Sanitising", suiteSanitising},
		{"Dedupe", suiteDedupe},
		{"EmptyHashNeverDedupes", suiteEmptyHash},
		{"Concurrent", suiteConcurrent},
		{"ConcurrentDuplicates", suiteConcurrentDuplicates},
		{"CancelledSaves", suiteCancelledSaves},
		{"BatchSaveMatchesOneByOne", suiteBatchSave},
		{"LongIdentity", suiteLongIdentity},
		{"Documents", suiteDocuments}, // storetest_documents_test.go
		{"Isolation", suiteIsolation},
		{"Filters", suiteFilters},
		{"Paging", suitePaging},
		{"BadCursor", suiteBadCursor},
		{"DeleteRecords", suiteDeleteRecords},
		{"ModesAndConnections", suiteModes},
		{"Purge", suitePurge},
		{"Reopen", suiteReopen},
		{"Subjects", suiteSubjects},
		{"SubjectFilters", suiteSubjectFilters},
		{"FilteredPaging", suiteFilteredPaging},
		{"Counts", suiteCounts},
		{"PendingResources", suitePendingResources}, // storetest_resources_test.go
		{"CountsKept", suiteCountsKept},             // storetest_resources_test.go
		{"PendingProjection", suitePendingProjection},
		{"CascadeDelete", suiteCascade},
		{"Warnings", suiteWarnings},
		{"WarningsOutOfOrder", suiteWarningsOutOfOrder},
		{"WarningFallbacks", suiteWarningFallbacks},
		{"WarningUsers", suiteWarningUsers},
		{"WarningExamples", suiteWarningExamples},
		{"WarningsByResourceID", suiteWarningsByResourceID},
		{"WarningsIsolation", suiteWarningsIsolation},
		{"WarningsPurge", suiteWarningsPurge},
		{"Holds", suiteHolds},                         // storetest_hold_test.go
		{"HoldDecisions", suiteHoldDecisions},         // storetest_hold_test.go
		{"CountDeprovisions", suiteCountDeprovisions}, // storetest_hold_test.go
		{"Credentials", suiteCredentials},             // storetest_hold_test.go
		{"Stages", suiteStages},                       // storetest_hold_test.go
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// suiteT0 has nanoseconds and a zone on purpose: stores keep UTC microseconds.
var suiteT0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))

// want0 is suiteT0 as a store returns it.
var want0 = us(suiteT0)

// us is t as a store returns it: UTC, microseconds.
func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// testRecord is a small pending User record of connection conn.
func testRecord(conn string, n int) *Record {
	return &Record{
		Connection:   conn,
		CreatedAt:    suiteT0.Add(time.Duration(n) * time.Second),
		LastSeenAt:   suiteT0.Add(time.Duration(n) * time.Second),
		Attempts:     1,
		Method:       "POST",
		Path:         "/scim/v2/Users",
		ResourceType: "User",
		Key:          fmt.Sprintf("user%d@example.com", n),
		Operation:    "create",
		Status:       StatusPending,
		DedupeHash:   fmt.Sprintf("%s-hash-%d", conn, n),
		Original:     StoredRequest{Method: "POST", URL: "/scim/v2/Users", Body: json.RawMessage(fmt.Sprintf(`{"userName":"user%d@example.com"}`, n))},
		Effective:    StoredRequest{Method: "POST", URL: "/scim/v2/Users", Body: json.RawMessage(fmt.Sprintf(`{"userName":"user%d@example.com"}`, n))},
	}
}

func mustSave(t *testing.T, s Store, rec *Record) Record {
	t.Helper()
	got, err := s.SaveRecord(t.Context(), rec)
	if err != nil {
		t.Fatalf("SaveRecord(%s %s): %v", rec.Connection, rec.DedupeHash, err)
	}
	return got
}

// withoutDocuments is r as SaveRecord returns it: without its documents.
func withoutDocuments(r Record) Record {
	r.Original, r.Effective = StoredRequest{}, StoredRequest{}
	r.Changes, r.Findings, r.Live, r.Projected = nil, nil, nil, nil
	return r
}

func mustRecords(t *testing.T, s Store, conn string, q RecordQuery) ([]Record, string) {
	t.Helper()
	recs, next, err := s.Records(t.Context(), conn, q)
	if err != nil {
		t.Fatalf("Records(%q, %+v): %v", conn, q, err)
	}
	return recs, next
}

// allRecords is every record of conn, through every page.
func allRecords(t *testing.T, s Store, conn string) []Record {
	t.Helper()
	var all []Record
	q := RecordQuery{Limit: 1000}
	for {
		page, next := mustRecords(t, s, conn, q)
		all = append(all, page...)
		if next == "" {
			return all
		}
		q.Cursor = next
	}
}

func recordIDs(recs []Record) []int64 {
	ids := make([]int64, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

// compactJSON is raw without insignificant white space, for comparisons.
func compactJSON(t *testing.T, raw []byte) string {
	t.Helper()
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("invalid JSON %q: %v", raw, err)
	}
	return buf.String()
}

// assertRecord compares every field of got with want (JSON by content, times exactly and in UTC).
func assertRecord(t *testing.T, want, got Record) {
	t.Helper()
	if got.CreatedAt.Location() != time.UTC || got.LastSeenAt.Location() != time.UTC {
		t.Errorf("times not in UTC: %v, %v", got.CreatedAt.Location(), got.LastSeenAt.Location())
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.LastSeenAt.Equal(want.LastSeenAt) {
		t.Errorf("times = %s, %s; want %s, %s", got.CreatedAt.Format(time.RFC3339Nano), got.LastSeenAt.Format(time.RFC3339Nano),
			want.CreatedAt.Format(time.RFC3339Nano), want.LastSeenAt.Format(time.RFC3339Nano))
	}
	type scalars struct {
		ID                                                       int64
		Connection, Method, Path, ResourceType, ResourceID, Key  string
		Operation, DedupeHash                                    string
		Status                                                   RecordStatus
		Attempts, Errors                                         int
		Deprovision                                              bool
		Changes, Findings, OrigBody, EffBody, Live, Projected    string
		OrigMethod, OrigURL, OrigText, EffMethod, EffURL, EffTxt string
	}
	flat := func(r Record) scalars {
		return scalars{r.ID, r.Connection, r.Method, r.Path, r.ResourceType, r.ResourceID, r.Key,
			r.Operation, r.DedupeHash, r.Status, r.Attempts, r.Errors, r.Deprovision,
			compactJSON(t, r.Changes), compactJSON(t, r.Findings), compactJSON(t, r.Original.Body), compactJSON(t, r.Effective.Body),
			compactJSON(t, r.Live), compactJSON(t, r.Projected),
			r.Original.Method, r.Original.URL, r.Original.Text, r.Effective.Method, r.Effective.URL, r.Effective.Text}
	}
	if w, g := flat(want), flat(got); w != g {
		t.Errorf("record differs:\n got %+v\nwant %+v", g, w)
	}
	if len(want.Subjects) != 0 || len(got.Subjects) != 0 {
		if !reflect.DeepEqual(got.Subjects, want.Subjects) {
			t.Errorf("subjects = %+v\nwant %+v", got.Subjects, want.Subjects)
		}
	}
	if !reflect.DeepEqual(nonNilHeader(got.Original.Header), nonNilHeader(want.Original.Header)) ||
		!reflect.DeepEqual(nonNilHeader(got.Effective.Header), nonNilHeader(want.Effective.Header)) {
		t.Errorf("headers = %v / %v; want %v / %v", got.Original.Header, got.Effective.Header, want.Original.Header, want.Effective.Header)
	}
}

func nonNilHeader(h map[string][]string) map[string][]string {
	if h == nil {
		return map[string][]string{}
	}
	return h
}

func suiteRoundtrip(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	in := &Record{
		Connection:   "acme",
		CreatedAt:    suiteT0,
		LastSeenAt:   suiteT0.Add(1500 * time.Millisecond),
		Attempts:     1,
		Method:       "PATCH",
		Path:         "/scim/v2/Users/2819c223",
		ResourceType: "User",
		ResourceID:   "2819c223",
		Key:          "Alice@Example.com",
		Operation:    "patch",
		Status:       StatusPending,
		DedupeHash:   "0123abcd",
		Original: StoredRequest{
			Method: "PATCH",
			URL:    "/scim/v2/Users/2819c223?attributes=userName",
			Header: map[string][]string{"Content-Type": {"application/scim+json"}, "X-Multi": {"a", "b"}, "Authorization": {"[redacted]"}},
			Body:   json.RawMessage(`{ "Operations": [ {"op": "replace", "path": "name.givenName", "value": "Ålice <&> \"q\""} ], "n": 1.50 }`),
		},
		Effective: StoredRequest{
			Method: "PATCH",
			URL:    "/scim/v2/Users/2819c223",
			Text:   "not JSON: ünïcödé ✓",
		},
		Changes:     json.RawMessage(`[{"path":"name.givenName","old":"Al","new":"Ålice"}]`),
		Findings:    json.RawMessage(`{"warnings":[{"attribute":"department","kind":"missing"}]}`),
		Live:        json.RawMessage(`{"id":"2819c223","userName":"Alice@Example.com","name":{"givenName":"Al"}, "active": true}`),
		Projected:   json.RawMessage(`{"id":"2819c223","userName":"Alice@Example.com","name":{"givenName":"Ålice <&>"},"active":true}`),
		Errors:      2,
		Deprovision: true,
		Subjects: []Subject{
			{Kind: "user", ID: "2819c223", Key: "Alice@Example.com"},
			{Kind: "group", ID: "g-1", Key: "Admins", Change: "added"},
			{Kind: "user", Key: "only-a-key"},
		},
	}
	want := *in
	want.CreatedAt, want.LastSeenAt = want0, us(suiteT0.Add(1500*time.Millisecond))

	saved := mustSave(t, s, in)
	if saved.ID <= 0 {
		t.Fatalf("saved ID = %d", saved.ID)
	}
	want.ID = saved.ID
	assertRecord(t, withoutDocuments(want), saved) // SaveRecord returns no documents

	got, err := s.Record(t.Context(), "acme", saved.ID)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	assertRecord(t, want, got)

	list, next := mustRecords(t, s, "acme", RecordQuery{})
	if len(list) != 1 || next != "" {
		t.Fatalf("Records = %d records, next %q; want 1, \"\"", len(list), next)
	}
	assertRecord(t, want, list[0])

	// A second record gets a larger id.
	second := mustSave(t, s, testRecord("acme", 1))
	if second.ID <= saved.ID {
		t.Errorf("second ID %d not above first %d", second.ID, saved.ID)
	}
}

func suiteDefaults(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	before := time.Now()
	got := mustSave(t, s, &Record{Connection: "c", Method: "DELETE", Path: "/scim/v2/Users/1"})
	if got.Attempts != 1 || got.Status != StatusPending {
		t.Errorf("attempts %d, status %q; want 1, pending", got.Attempts, got.Status)
	}
	if got.CreatedAt.Before(before.Add(-time.Second)) || got.LastSeenAt.Before(got.CreatedAt) {
		t.Errorf("zero times not defaulted to now: %v, %v", got.CreatedAt, got.LastSeenAt)
	}
	if got.DedupeHash != "" || got.Changes != nil || got.Findings != nil || got.Original.Body != nil || got.Original.Header != nil ||
		got.Live != nil || got.Projected != nil || got.Errors != 0 || got.Deprovision || got.Subjects != nil {
		t.Errorf("empty fields came back non-empty: %+v", got)
	}
	if again, err := s.Record(t.Context(), "c", got.ID); err != nil || again.Live != nil || again.Projected != nil || again.Subjects != nil {
		t.Errorf("Record of an empty record: %+v, %v", again, err)
	}
	nullJSON := testRecord("c", 3)
	nullJSON.Live, nullJSON.Projected = json.RawMessage(`null`), json.RawMessage(` null `)
	if got := mustSave(t, s, nullJSON); got.Live != nil || got.Projected != nil {
		t.Errorf("JSON null came back as %q, %q; want nil", got.Live, got.Projected)
	}
	if _, err := s.SaveRecord(t.Context(), &Record{Method: "POST"}); err == nil {
		t.Error("SaveRecord without a connection: no error")
	}
	bad := testRecord("c", 2)
	bad.Changes = json.RawMessage(`{"broken"`)
	if _, err := s.SaveRecord(t.Context(), bad); err == nil {
		t.Error("SaveRecord with invalid Changes JSON: no error")
	}
	for _, field := range []string{"live", "projected"} {
		bad := testRecord("c", 4)
		if field == "live" {
			bad.Live = json.RawMessage(`{"id":`)
		} else {
			bad.Projected = json.RawMessage(`[1,`)
		}
		bad.Subjects = []Subject{{Kind: "user", Key: "nobody-saved"}}
		if _, err := s.SaveRecord(t.Context(), bad); err == nil {
			t.Errorf("SaveRecord with invalid %s JSON: no error", field)
		}
	}
	if recs, _ := mustRecords(t, s, "c", RecordQuery{User: "nobody-saved"}); len(recs) != 0 {
		t.Errorf("a refused record left %d records behind", len(recs))
	}
}

func suiteSanitising(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	rec := testRecord("c", 1)
	rec.Path = "/scim/v2/Users/a\x00b\xff"
	rec.Original.Body = json.RawMessage(`{"not": json`) // a body that is not JSON is kept as text
	rec.Original.Header = map[string][]string{"X-Nul": {"a\x00b"}}
	got, err := s.Record(t.Context(), "c", mustSave(t, s, rec).ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != "/scim/v2/Users/a\uFFFDb\uFFFD" {
		t.Errorf("path = %q", got.Path)
	}
	if got.Original.Body != nil || got.Original.Text != `{"not": json` {
		t.Errorf("invalid JSON body: Body %q, Text %q", got.Original.Body, got.Original.Text)
	}
	if h := got.Original.Header["X-Nul"]; len(h) != 1 || h[0] != "a\x00b" {
		t.Errorf("header = %q", h)
	}
}

func suiteDedupe(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	first := mustSave(t, s, testRecord("acme", 1))
	if first.Attempts != 1 {
		t.Fatalf("first attempts = %d", first.Attempts)
	}

	retry := testRecord("acme", 1)
	retry.CreatedAt = suiteT0.Add(time.Hour)
	retry.LastSeenAt = suiteT0.Add(time.Hour)
	retry.Original.URL = "/changed" // the stored record is kept as first recorded
	got := mustSave(t, s, retry)
	if got.ID != first.ID || got.Attempts != 2 {
		t.Fatalf("retry: id %d attempts %d; want id %d attempts 2", got.ID, got.Attempts, first.ID)
	}
	if stored, err := s.Record(t.Context(), "acme", got.ID); err != nil || stored.Original.URL != "/scim/v2/Users" {
		t.Errorf("retry: stored original %+v, %v; want the first one's", stored.Original, err)
	}
	if !got.LastSeenAt.Equal(us(suiteT0.Add(time.Hour))) || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("retry: created %v last seen %v", got.CreatedAt, got.LastSeenAt)
	}
	// A late, out-of-order retry counts but does not move last_seen_at back.
	late := testRecord("acme", 1)
	late.LastSeenAt = suiteT0.Add(time.Minute)
	got = mustSave(t, s, late)
	if got.Attempts != 3 || !got.LastSeenAt.Equal(us(suiteT0.Add(time.Hour))) {
		t.Errorf("late retry: attempts %d last seen %v; want 3, %v", got.Attempts, got.LastSeenAt, us(suiteT0.Add(time.Hour)))
	}
	stored, err := s.Record(t.Context(), "acme", first.ID)
	if err != nil || stored.Attempts != 3 {
		t.Fatalf("Record after retries: attempts %d, %v", stored.Attempts, err)
	}

	// Same hash, other connection: its own row.
	other := mustSave(t, s, &Record{Connection: "globex", Method: "POST", Path: "/x", DedupeHash: "acme-hash-1", Status: StatusPending})
	if other.ID == first.ID || other.Attempts != 1 {
		t.Errorf("other connection: id %d attempts %d", other.ID, other.Attempts)
	}

	// Records that are not pending never absorb retries…
	approved := testRecord("acme", 2)
	approved.Status = StatusApproved
	a := mustSave(t, s, approved)
	p := mustSave(t, s, testRecord("acme", 2))
	if p.ID == a.ID || p.Attempts != 1 || p.Status != StatusPending {
		t.Errorf("pending after approved: id %d (approved %d) attempts %d status %s", p.ID, a.ID, p.Attempts, p.Status)
	}
	// …and a non-pending record with the hash of a pending one is a row of its own.
	ignored := testRecord("acme", 1)
	ignored.Status = StatusIgnored
	ig := mustSave(t, s, ignored)
	if ig.ID == first.ID || ig.Attempts != 1 || ig.Status != StatusIgnored {
		t.Errorf("ignored with pending hash: id %d attempts %d status %s", ig.ID, ig.Attempts, ig.Status)
	}

	recs, _ := mustRecords(t, s, "acme", RecordQuery{})
	if len(recs) != 4 {
		t.Errorf("acme has %d records, want 4", len(recs))
	}
	recs, _ = mustRecords(t, s, "globex", RecordQuery{})
	if len(recs) != 1 {
		t.Errorf("globex has %d records, want 1", len(recs))
	}
}

func suiteEmptyHash(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	r1 := testRecord("c", 1)
	r1.DedupeHash = ""
	a := mustSave(t, s, r1)
	b := mustSave(t, s, r1)
	if a.ID == b.ID || b.Attempts != 1 {
		t.Errorf("empty hash deduplicated: ids %d %d attempts %d", a.ID, b.ID, b.Attempts)
	}
}

func suiteConcurrent(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	const writers, each = 64, 20
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		ids  = map[int64]bool{}
	)
	done := make(chan struct{})
	// Readers run alongside the writers.
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond): // a busy review page, not a flood
				}
				if _, _, err := s.Records(t.Context(), "load", RecordQuery{Limit: 10}); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if _, err := s.Connections(t.Context()); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec := testRecord("load", g*1000+i)
				saved, err := s.SaveRecord(t.Context(), rec)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ids[saved.ID] = true
				}
				mu.Unlock()
			}
			// Every writer also retries one shared write.
			shared := testRecord("load", -1)
			if _, err := s.SaveRecord(t.Context(), shared); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d errors", len(errs))
	}
	if len(ids) != writers*each {
		t.Errorf("%d distinct ids, want %d", len(ids), writers*each)
	}
	all := allRecords(t, s, "load")
	if len(all) != writers*each+1 {
		t.Fatalf("%d records, want %d", len(all), writers*each+1)
	}
	for _, r := range all {
		if r.DedupeHash == "load-hash--1" {
			if r.Attempts != writers {
				t.Errorf("shared write attempts = %d, want %d", r.Attempts, writers)
			}
		} else if r.Attempts != 1 {
			t.Errorf("record %d attempts = %d", r.ID, r.Attempts)
		}
	}
	infos, err := s.Connections(t.Context())
	if err != nil || len(infos) != 1 || infos[0].Pending != writers*each+1 {
		t.Errorf("Connections = %+v, %v; want load with %d pending", infos, err, writers*each+1)
	}
}

func suiteIsolation(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	var aIDs []int64
	for i := range 3 {
		aIDs = append(aIDs, mustSave(t, s, testRecord("Acme", i)).ID)
	}
	bRec := mustSave(t, s, testRecord("acme", 7)) // differs by case only: another connection
	for _, id := range aIDs {
		if _, err := s.Record(t.Context(), "acme", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Record(acme, %d of Acme) error = %v, want ErrNotFound", id, err)
		}
		if _, err := s.Record(t.Context(), "Acme", id); err != nil {
			t.Errorf("Record(Acme, %d): %v", id, err)
		}
	}
	if _, err := s.Record(t.Context(), "Acme", bRec.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Record(Acme, id of acme) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Record(t.Context(), "Acme", 1<<40); !errors.Is(err, ErrNotFound) {
		t.Errorf("Record of a missing id: %v, want ErrNotFound", err)
	}
	recs, _ := mustRecords(t, s, "acme", RecordQuery{})
	if ids := recordIDs(recs); !slices.Equal(ids, []int64{bRec.ID}) {
		t.Errorf("Records(acme) ids = %v, want [%d]", ids, bRec.ID)
	}
	recs, _ = mustRecords(t, s, "acme", RecordQuery{User: "user1@example.com"})
	if len(recs) != 0 {
		t.Errorf("Records(acme, user of Acme) = %d records", len(recs))
	}
	recs, _ = mustRecords(t, s, "nobody", RecordQuery{})
	if len(recs) != 0 {
		t.Errorf("Records(nobody) = %d records", len(recs))
	}
	recs, _ = mustRecords(t, s, "Acme", RecordQuery{})
	if ids := recordIDs(recs); !slices.Equal(ids, []int64{aIDs[2], aIDs[1], aIDs[0]}) {
		t.Errorf("Records(Acme) ids = %v, want %v reversed", ids, aIDs)
	}
}

func suiteFilters(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	mk := func(typ, key, id, method string, st RecordStatus) int64 {
		r := &Record{Connection: "f", Method: method, Path: "/scim/v2/x", ResourceType: typ, Key: key, ResourceID: id,
			Status: st, CreatedAt: suiteT0, LastSeenAt: suiteT0}
		return mustSave(t, s, r).ID
	}
	r1 := mk("User", "Alice@Example.COM", "u-alice", "POST", StatusPending)
	r2 := mk("User", "", "u-alice", "PATCH", StatusPending)
	r3 := mk("User", "bob@example.com", "u-bob", "DELETE", StatusIgnored)
	r4 := mk("Group", "Admins", "g-1", "PATCH", StatusPending)
	r5 := mk("User", "carol", "u-carol", "PUT", StatusForwarded)
	other := &Record{Connection: "g", Method: "POST", Path: "/x", ResourceType: "User", Key: "alice@example.com", ResourceID: "u-alice"}
	mustSave(t, s, other)

	cases := []struct {
		q    RecordQuery
		want []int64
	}{
		{RecordQuery{}, []int64{r5, r4, r3, r2, r1}},
		{RecordQuery{User: "alice@example.com"}, []int64{r1}},
		{RecordQuery{User: "ALICE@EXAMPLE.com"}, []int64{r1}},
		{RecordQuery{User: "u-alice"}, []int64{r2, r1}},
		{RecordQuery{User: "U-ALICE"}, nil}, // ids are exact
		{RecordQuery{User: "nobody"}, nil},
		{RecordQuery{ResourceType: "group"}, []int64{r4}},
		{RecordQuery{ResourceType: "USER"}, []int64{r5, r3, r2, r1}},
		{RecordQuery{Method: "PATCH"}, []int64{r4, r2}},
		{RecordQuery{Method: "patch"}, []int64{r4, r2}},
		{RecordQuery{Status: StatusIgnored}, []int64{r3}},
		{RecordQuery{Status: StatusPending}, []int64{r4, r2, r1}},
		{RecordQuery{Status: StatusApproved}, nil},
		{RecordQuery{ResourceType: "User", Method: "PATCH", Status: StatusPending}, []int64{r2}},
		{RecordQuery{User: "u-alice", Method: "POST"}, []int64{r1}},
		{RecordQuery{User: "carol", Status: StatusForwarded, ResourceType: "user", Method: "put"}, []int64{r5}},
		{RecordQuery{User: "carol", Status: StatusPending}, nil},
	}
	for _, c := range cases {
		recs, next := mustRecords(t, s, "f", c.q)
		if got := recordIDs(recs); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("Records(%+v) = %v, want %v", c.q, got, c.want)
		}
		if next != "" {
			t.Errorf("Records(%+v) next = %q, want none", c.q, next)
		}
		for _, r := range recs {
			if r.Connection != "f" {
				t.Errorf("Records(f) returned a record of %q", r.Connection)
			}
		}
	}
}

func suitePaging(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	var want, wantIgnored []int64
	for i := range 250 {
		r := testRecord("p", i)
		if i%3 == 0 {
			r.Status = StatusIgnored
		}
		id := mustSave(t, s, r).ID
		want = append(want, id)
		if i%3 == 0 {
			wantIgnored = append(wantIgnored, id)
		}
		if i%25 == 0 {
			mustSave(t, s, testRecord("other", i)) // interleaved ids of another connection
		}
	}
	slices.Reverse(want)
	slices.Reverse(wantIgnored)

	collect := func(q RecordQuery, pageSizes []int) []int64 {
		t.Helper()
		var ids []int64
		seen := map[string]bool{}
		for page := 0; ; page++ {
			recs, next := mustRecords(t, s, "p", q)
			if page < len(pageSizes) && len(recs) != pageSizes[page] {
				t.Errorf("%+v page %d has %d records, want %d", q, page, len(recs), pageSizes[page])
			}
			ids = append(ids, recordIDs(recs)...)
			if next == "" {
				if pageSizes != nil && page != len(pageSizes)-1 {
					t.Errorf("%+v: %d pages, want %d", q, page+1, len(pageSizes))
				}
				return ids
			}
			if seen[next] || page > 300 {
				t.Fatalf("cursor %q repeats", next)
			}
			seen[next] = true
			q.Cursor = next
		}
	}
	if got := collect(RecordQuery{Limit: 100}, []int{100, 100, 50}); !slices.Equal(got, want) {
		t.Errorf("pages of 100 = %v…, want %d ids newest first without gaps", got[:min(5, len(got))], len(want))
	}
	if got := collect(RecordQuery{}, []int{100, 100, 50}); !slices.Equal(got, want) {
		t.Errorf("default pages differ")
	}
	if got := collect(RecordQuery{Limit: 7}, nil); !slices.Equal(got, want) {
		t.Errorf("pages of 7 differ: %d ids", len(got))
	}
	if got := collect(RecordQuery{Limit: 5000}, []int{250}); !slices.Equal(got, want) {
		t.Errorf("one large page differs")
	}
	if got := collect(RecordQuery{Limit: 250}, []int{250}); !slices.Equal(got, want) {
		t.Errorf("an exact page differs") // no cursor to an empty page
	}
	if got := collect(RecordQuery{Limit: 30, Status: StatusIgnored}, []int{30, 30, 24}); !slices.Equal(got, wantIgnored) {
		t.Errorf("filtered pages = %d ids, want %d", len(got), len(wantIgnored))
	}
}

func suiteBadCursor(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	mustSave(t, s, testRecord("c", 1))
	for _, c := range []string{"!!!", "MTIz", "cjA", "cmFiYw", "' OR 1=1 --"} {
		if _, _, err := s.Records(t.Context(), "c", RecordQuery{Cursor: c}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("Records(cursor %q) error = %v, want ErrBadCursor", c, err)
		}
	}
}

func suiteDeleteRecords(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	if err := s.SetMode(t.Context(), "a", ModePreview); err != nil {
		t.Fatal(err)
	}
	var aID int64
	for i := range 3 {
		aID = mustSave(t, s, testRecord("a", i)).ID
	}
	for i := range 2 {
		mustSave(t, s, testRecord("b", i))
	}
	n, err := s.DeleteRecords(t.Context(), "a")
	if err != nil || n != 3 {
		t.Fatalf("DeleteRecords(a) = %d, %v; want 3", n, err)
	}
	if recs, _ := mustRecords(t, s, "a", RecordQuery{}); len(recs) != 0 {
		t.Errorf("a still has %d records", len(recs))
	}
	if recs, _ := mustRecords(t, s, "b", RecordQuery{}); len(recs) != 2 {
		t.Errorf("b has %d records, want 2", len(recs))
	}
	if _, err := s.Record(t.Context(), "a", aID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted record: %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteRecords(t.Context(), "a"); err != nil || n != 0 {
		t.Errorf("second DeleteRecords(a) = %d, %v", n, err)
	}
	modes, err := s.Modes(t.Context())
	if err != nil || modes["a"] != ModePreview {
		t.Errorf("mode of a after delete = %q, %v", modes["a"], err)
	}
	// A new retry after the delete is a new record again.
	if got := mustSave(t, s, testRecord("a", 0)); got.Attempts != 1 {
		t.Errorf("attempts after delete = %d", got.Attempts)
	}
}

func suiteModes(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	if m, err := s.Modes(ctx); err != nil || len(m) != 0 {
		t.Fatalf("Modes of an empty store = %v, %v", m, err)
	}
	if infos, err := s.Connections(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("Connections of an empty store = %v, %v", infos, err)
	}
	for _, c := range []struct {
		name string
		mode Mode
	}{{"beta", ModePreview}, {"alpha", ModeLive}, {"beta", ModeLive}} {
		if err := s.SetMode(ctx, c.name, c.mode); err != nil {
			t.Fatalf("SetMode(%s, %s): %v", c.name, c.mode, err)
		}
	}
	if err := s.SetMode(ctx, "alpha", Mode("bogus")); err == nil {
		t.Error("SetMode(bogus): no error")
	}
	if err := s.SetMode(ctx, "", ModeLive); err == nil {
		t.Error("SetMode of an empty name: no error")
	}
	m, err := s.Modes(ctx)
	if err != nil || !reflect.DeepEqual(m, map[string]Mode{"alpha": ModeLive, "beta": ModeLive}) {
		t.Errorf("Modes = %v, %v", m, err)
	}
	mustSave(t, s, testRecord("Zeta", 1))
	mustSave(t, s, testRecord("Zeta", 2))
	approved := testRecord("Zeta", 3)
	approved.Status = StatusApproved
	mustSave(t, s, approved)
	mustSave(t, s, testRecord("beta", 1))
	ignored := testRecord("gamma", 1)
	ignored.Status = StatusIgnored
	mustSave(t, s, ignored)

	infos, err := s.Connections(ctx)
	want := []ConnectionInfo{
		{Name: "Zeta", Pending: 2}, // byte order: upper case first
		{Name: "alpha", Mode: ModeLive},
		{Name: "beta", Mode: ModeLive, Pending: 1},
		{Name: "gamma"},
	}
	if err != nil || !reflect.DeepEqual(infos, want) {
		t.Errorf("Connections = %+v, %v;\nwant %+v", infos, err, want)
	}
	if err := s.SetMode(ctx, "Zeta", ModePreview); err != nil {
		t.Fatal(err)
	}
	infos, _ = s.Connections(ctx)
	if len(infos) != 4 || infos[0] != (ConnectionInfo{Name: "Zeta", Mode: ModePreview, Pending: 2}) {
		t.Errorf("Connections after SetMode(Zeta) = %+v", infos)
	}
}

func suitePurge(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	at := func(conn string, n int, seen time.Time) int64 {
		r := testRecord(conn, n)
		r.CreatedAt, r.LastSeenAt = seen, seen
		return mustSave(t, s, r).ID
	}
	t0 := suiteT0
	r1 := at("a", 1, t0.Add(-2*time.Hour))
	at("a", 2, t0.Add(-time.Hour))
	r3 := at("a", 3, t0)
	r5 := at("a", 5, t0.Add(-30*time.Minute)) // exactly at the boundary: kept
	at("b", 4, t0.Add(-3*time.Hour))
	// A retry keeps r1 alive.
	retry := testRecord("a", 1)
	retry.LastSeenAt = t0
	mustSave(t, s, retry)

	before := t0.Add(-30 * time.Minute).In(time.FixedZone("PST", -8*3600)) // the zone must not matter
	n, err := s.Purge(t.Context(), before)
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	recs, _ := mustRecords(t, s, "a", RecordQuery{})
	if got := recordIDs(recs); !slices.Equal(got, []int64{r5, r3, r1}) {
		t.Errorf("left after purge: %v, want %v", got, []int64{r5, r3, r1})
	}
	if recs, _ := mustRecords(t, s, "b", RecordQuery{}); len(recs) != 0 {
		t.Errorf("b has %d records after purge", len(recs))
	}
	if n, err := s.Purge(t.Context(), before); err != nil || n != 0 {
		t.Errorf("second Purge = %d, %v", n, err)
	}
	if n, err := s.Purge(t.Context(), t0.Add(time.Nanosecond*1000)); err != nil || n != 3 {
		t.Errorf("Purge(all) = %d, %v; want 3", n, err)
	}
}

func suiteReopen(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	first, err := s.Record(t.Context(), "r", mustSave(t, s, testRecord("r", 1)).ID)
	if err != nil {
		t.Fatal(err)
	}
	second := mustSave(t, s, testRecord("r", 2))
	if err := s.SetMode(t.Context(), "r", ModePreview); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t)
	recs, _ := mustRecords(t, s, "r", RecordQuery{})
	if ids := recordIDs(recs); !slices.Equal(ids, []int64{second.ID, first.ID}) {
		t.Fatalf("after reopen: ids %v, want [%d %d]", ids, second.ID, first.ID)
	}
	assertRecord(t, first, recs[1])
	if m, err := s.Modes(t.Context()); err != nil || m["r"] != ModePreview {
		t.Errorf("mode after reopen = %v, %v", m, err)
	}
	// The dedupe index survived.
	if got := mustSave(t, s, testRecord("r", 1)); got.ID != first.ID || got.Attempts != 2 {
		t.Errorf("retry after reopen: id %d attempts %d", got.ID, got.Attempts)
	}
	if got := mustSave(t, s, testRecord("r", 3)); got.ID <= second.ID {
		t.Errorf("new id %d after reopen not above %d", got.ID, second.ID)
	}
}

// subjectRecord is a pending record of conn targeting typ id/key, touching subjects.
func subjectRecord(conn, typ, id, key string, subjects ...Subject) *Record {
	n := subjectSeq.Add(1)
	return &Record{
		Connection: conn, CreatedAt: suiteT0, LastSeenAt: suiteT0, Method: "PATCH",
		Path: "/scim/v2/" + typ + "s/" + id, ResourceType: typ, ResourceID: id, Key: key, Operation: "patch",
		Status: StatusPending, DedupeHash: fmt.Sprintf("subject-%d", n), Subjects: subjects,
	}
}

var subjectSeq atomic.Int64

func suiteSubjects(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	in := subjectRecord("c", "Group", "g-1", "Admins",
		Subject{Kind: "Group", ID: "g-1", Key: "Admins"},
		Subject{Kind: "USER", ID: "u-1", Key: "Alice@Example.com", Change: "Added"},
		Subject{Kind: "user", ID: "u-2", Change: "removed"},
		Subject{Kind: "user", Key: "nul\x00and\xffbad"},
	)
	want := []Subject{
		{Kind: "group", ID: "g-1", Key: "Admins"},
		{Kind: "user", ID: "u-1", Key: "Alice@Example.com", Change: "added"},
		{Kind: "user", ID: "u-2", Change: "removed"},
		{Kind: "user", Key: "nul\uFFFDand\uFFFDbad"},
	}
	saved := mustSave(t, s, in)
	if !reflect.DeepEqual(saved.Subjects, want) {
		t.Errorf("saved subjects = %+v\nwant %+v", saved.Subjects, want)
	}
	got, err := s.Record(t.Context(), "c", saved.ID)
	if err != nil || !reflect.DeepEqual(got.Subjects, want) {
		t.Errorf("Record subjects = %+v, %v\nwant %+v", got.Subjects, err, want)
	}

	// A retry keeps the first record's subjects, whatever it carries.
	retry := *in
	retry.Subjects = []Subject{{Kind: "user", ID: "u-9", Key: "someone-else"}}
	again := mustSave(t, s, &retry)
	if again.ID != saved.ID || again.Attempts != 2 || !reflect.DeepEqual(again.Subjects, want) {
		t.Errorf("retry: id %d attempts %d subjects %+v", again.ID, again.Attempts, again.Subjects)
	}
	if recs, _ := mustRecords(t, s, "c", RecordQuery{User: "someone-else"}); len(recs) != 0 {
		t.Errorf("a retry's subjects were stored: %v", recordIDs(recs))
	}
	// Also when the first had none.
	bare := subjectRecord("c", "User", "u-3", "carol")
	first := mustSave(t, s, bare)
	withSubjects := *bare
	withSubjects.Subjects = []Subject{{Kind: "user", ID: "u-3", Key: "carol"}}
	if got := mustSave(t, s, &withSubjects); got.ID != first.ID || got.Subjects != nil {
		t.Errorf("retry of a record without subjects: id %d subjects %+v", got.ID, got.Subjects)
	}

	// Many subjects (more than one INSERT's worth), in order.
	var many []Subject
	for i := range 1234 {
		many = append(many, Subject{Kind: "user", ID: fmt.Sprintf("m-%04d", i), Key: fmt.Sprintf("member%d", i), Change: "added"})
	}
	big := mustSave(t, s, subjectRecord("c", "Group", "g-big", "Everyone", many...))
	got, err = s.Record(t.Context(), "c", big.ID)
	if err != nil || !reflect.DeepEqual(got.Subjects, many) {
		t.Errorf("Record of a record with %d subjects: %d subjects, %v", len(many), len(got.Subjects), err)
	}

	// A list carries each record's own subjects.
	recs, _ := mustRecords(t, s, "c", RecordQuery{})
	if ids := recordIDs(recs); !slices.Equal(ids, []int64{big.ID, first.ID, saved.ID}) {
		t.Fatalf("Records = %v", ids)
	}
	if len(recs[0].Subjects) != len(many) || recs[1].Subjects != nil || !reflect.DeepEqual(recs[2].Subjects, want) {
		t.Errorf("list subjects: %d, %+v, %+v", len(recs[0].Subjects), recs[1].Subjects, recs[2].Subjects)
	}
	if recs, _ := mustRecords(t, s, "c", RecordQuery{User: "member1000"}); !slices.Equal(recordIDs(recs), []int64{big.ID}) {
		t.Errorf("Records(user member1000) = %v", recordIDs(recs))
	}
}

func suiteSubjectFilters(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	save := func(r *Record, errs int, deprov bool, st RecordStatus) int64 {
		r.Errors, r.Deprovision, r.Status = errs, deprov, st
		return mustSave(t, s, r).ID
	}
	u1 := save(subjectRecord("f", "User", "u-alice", "Alice@Example.COM", Subject{Kind: "user", ID: "u-alice", Key: "Alice@Example.COM"}), 0, false, StatusPending)
	u2 := save(subjectRecord("f", "User", "u-alice", ""), 1, false, StatusPending) // the target alone
	g1 := save(subjectRecord("f", "Group", "g-admins", "Admins",
		Subject{Kind: "group", ID: "g-admins", Key: "Admins"},
		Subject{Kind: "user", ID: "u-alice", Key: "alice@example.com", Change: "added"},
		Subject{Kind: "user", ID: "u-bob", Key: "bob", Change: "removed"}), 0, true, StatusPending)
	g2 := save(subjectRecord("f", "Group", "g-staff", "Staff",
		Subject{Kind: "group", ID: "g-staff", Key: "Staff"},
		Subject{Kind: "user", ID: "u-carol", Key: "Carol", Change: "added"}), 2, false, StatusIgnored)
	u3 := save(subjectRecord("f", "User", "u-bob", "bob", Subject{Kind: "user", ID: "u-bob", Key: "bob"}), 0, true, StatusPending)
	u4 := save(subjectRecord("f", "User", "u-admins-person", "admins"), 0, false, StatusPending) // a user named like a group
	gAll := save(subjectRecord("f", "Group", "g-all", "All",
		Subject{Kind: "group", ID: "g-all", Key: "All"},
		Subject{Kind: "group", ID: "g-admins", Key: "Admins", Change: "added"}), 0, false, StatusPending)
	save(subjectRecord("g", "Group", "g-x", "X", Subject{Kind: "user", ID: "u-alice", Key: "alice@example.com", Change: "added"}), 3, true, StatusPending)

	cases := []struct {
		q    RecordQuery
		want []int64
	}{
		{RecordQuery{User: "alice@example.com"}, []int64{g1, u1}},
		{RecordQuery{User: "u-alice"}, []int64{g1, u2, u1}},
		{RecordQuery{User: "U-ALICE"}, nil}, // ids are exact
		{RecordQuery{User: "BOB"}, []int64{u3, g1}},
		{RecordQuery{User: "admins"}, []int64{u4}}, // not the group Admins
		{RecordQuery{User: "g-admins"}, nil},
		{RecordQuery{Group: "admins"}, []int64{gAll, g1}},
		{RecordQuery{Group: "g-admins"}, []int64{gAll, g1}},
		{RecordQuery{Group: "u-admins-person"}, nil},
		{RecordQuery{Group: "STAFF"}, []int64{g2}},
		{RecordQuery{User: "u-alice", Group: "g-admins"}, []int64{g1}},
		{RecordQuery{ErrorsOnly: true}, []int64{g2, u2}},
		{RecordQuery{Deprovisions: true}, []int64{u3, g1}},
		{RecordQuery{ErrorsOnly: true, Deprovisions: true}, nil},
		{RecordQuery{ErrorsOnly: true, Status: StatusPending}, []int64{u2}},
		{RecordQuery{User: "u-alice", ErrorsOnly: true}, []int64{u2}},
		{RecordQuery{User: "bob", Deprovisions: true, ResourceType: "user"}, []int64{u3}},
		{RecordQuery{Group: "admins", ResourceType: "User"}, nil},
		{RecordQuery{User: "carol", Status: StatusIgnored}, []int64{g2}},
		{RecordQuery{User: "carol", Status: StatusPending}, nil},
		{RecordQuery{Group: "g-admins", Method: "patch", Limit: 1}, []int64{gAll}},
	}
	for _, c := range cases {
		recs, _ := mustRecords(t, s, "f", c.q)
		if got := recordIDs(recs); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("Records(%+v) = %v, want %v", c.q, got, c.want)
		}
	}
	// Other connections' subjects never match.
	recs, _ := mustRecords(t, s, "g", RecordQuery{User: "u-alice"})
	if len(recs) != 1 || recs[0].Connection != "g" {
		t.Errorf("Records(g, user u-alice) = %v", recordIDs(recs))
	}
	if recs, _ := mustRecords(t, s, "f", RecordQuery{User: "u-alice", Deprovisions: true, ErrorsOnly: true}); len(recs) != 0 {
		t.Errorf("f matched g's record: %v", recordIDs(recs))
	}
}

func suiteFilteredPaging(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	var wantUser, wantErrors []int64
	for i := range 150 {
		r := testRecord("p", i)
		if i%3 == 0 {
			r.ResourceType = "Group"
			r.Subjects = []Subject{{Kind: "user", ID: fmt.Sprintf("u-%d", i), Key: []string{"Target", "TARGET", "target"}[i%9/3], Change: "added"}}
		}
		if i%5 == 0 {
			r.Errors = 1
		}
		id := mustSave(t, s, r).ID
		if i%3 == 0 {
			wantUser = append(wantUser, id)
		}
		if i%5 == 0 {
			wantErrors = append(wantErrors, id)
		}
	}
	slices.Reverse(wantUser)
	slices.Reverse(wantErrors)
	collect := func(q RecordQuery) []int64 {
		var ids []int64
		for range 100 {
			recs, next := mustRecords(t, s, "p", q)
			ids = append(ids, recordIDs(recs)...)
			if next == "" {
				return ids
			}
			q.Cursor = next
		}
		t.Fatal("paging does not end")
		return nil
	}
	if got := collect(RecordQuery{User: "target", Limit: 7}); !slices.Equal(got, wantUser) {
		t.Errorf("user pages = %v\nwant %v", got, wantUser)
	}
	if got := collect(RecordQuery{ErrorsOnly: true, Limit: 4}); !slices.Equal(got, wantErrors) {
		t.Errorf("errors pages = %v\nwant %v", got, wantErrors)
	}
}

func suiteCounts(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	add := func(conn string, n, errs int, deprov bool, st RecordStatus) {
		r := testRecord(conn, n)
		r.Errors, r.Deprovision, r.Status = errs, deprov, st
		mustSave(t, s, r)
	}
	add("a", 1, 0, false, StatusPending)
	add("a", 2, 3, false, StatusPending)
	add("a", 3, 0, true, StatusPending)
	add("a", 4, 1, true, StatusPending)
	add("a", 5, 1, true, StatusIgnored) // not pending: not counted
	add("a", 6, 2, true, StatusForwarded)
	add("b", 1, 0, true, StatusApproved)
	if err := s.SetMode(ctx, "c", ModePreview); err != nil {
		t.Fatal(err)
	}
	infos, err := s.Connections(ctx)
	want := []ConnectionInfo{
		{Name: "a", Pending: 4, Errors: 2, Deprovisions: 2},
		{Name: "b"},
		{Name: "c", Mode: ModePreview},
	}
	if err != nil || !reflect.DeepEqual(infos, want) {
		t.Errorf("Connections = %+v, %v\nwant %+v", infos, err, want)
	}
}

func suitePendingProjection(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	save := func(r *Record, st RecordStatus, projected string) {
		r.Status = st
		if projected != "" {
			r.Projected = json.RawMessage(projected)
		}
		mustSave(t, s, r)
	}
	save(subjectRecord("c", "User", "u1", "Alice"), StatusPending, `{"v":1}`)
	save(subjectRecord("c", "User", "u1", "", Subject{Kind: "user", ID: "u1", Key: "Alice"}), StatusPending, `{"v":2}`)
	save(subjectRecord("c", "User", "u1", "Alice"), StatusIgnored, `{"v":3}`)  // newest, not pending
	save(subjectRecord("c", "Group", "u1", "Alice"), StatusPending, `{"v":4}`) // same id, other type
	save(subjectRecord("other", "User", "u1", "Alice"), StatusPending, `{"v":5}`)
	save(subjectRecord("c", "User", "", "bob@example.com"), StatusPending, `{"v":6}`) // a key, no id
	save(subjectRecord("c", "User", "u7", "failed"), StatusPending, ` null `)         // JSON null: none
	save(subjectRecord("c", "User", "u8", "deleted"), StatusPending, "")              // no projection
	save(subjectRecord("c", "User", "u9", "approved-only"), StatusApproved, `{"v":9}`)

	cases := []struct {
		typ, id string
		want    string // "": ErrNotFound; "none": found, without a projection
	}{
		{"User", "u1", `{"v":2}`},
		{"user", "u1", `{"v":2}`},
		{"Group", "u1", `{"v":4}`},
		{"GROUP", "u1", `{"v":4}`},
		{"User", "U1", ""}, // ids are exact
		{"User", "u7", "none"},
		{"User", "u8", "none"},
		{"User", "u9", ""},
		{"User", "u-none", ""},
		{"User", "", ""},
		{"User", "bob@example.com", ""},
		{"Thing", "u1", ""},
	}
	for _, c := range cases {
		got, err := s.PendingProjection(ctx, "c", c.typ, c.id)
		switch {
		case c.want == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("PendingProjection(%q, %q) = %s, %v; want ErrNotFound", c.typ, c.id, got, err)
		case c.want == "none" && (err != nil || got != nil):
			t.Errorf("PendingProjection(%q, %q) = %s, %v; want nil, found", c.typ, c.id, got, err)
		case c.want != "" && c.want != "none" && (err != nil || string(got) != c.want):
			t.Errorf("PendingProjection(%q, %q) = %s, %v; want %s", c.typ, c.id, got, err, c.want)
		}
	}
	if got, err := s.PendingProjection(ctx, "nobody", "User", "u1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingProjection of an unknown connection: %s, %v", got, err)
	}
}

// subjectRows counts the rows of record_subjects of a connection, through the database.
func subjectRows(t *testing.T, s Store, conn string) int64 {
	t.Helper()
	const q = `SELECT count(*) FROM record_subjects WHERE connection = $1`
	var n int64
	var err error
	switch st := s.(type) {
	case *SQLiteStore:
		err = st.db.QueryRowContext(t.Context(), q, conn).Scan(&n)
	case *PostgresStore:
		err = st.pool.QueryRow(t.Context(), q, conn).Scan(&n)
	default:
		t.Fatalf("subjectRows: unknown store %T", s)
	}
	if err != nil {
		t.Fatalf("counting subjects: %v", err)
	}
	return n
}

func suiteCascade(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	two := func(conn, id string, seen time.Time) {
		r := subjectRecord(conn, "Group", id, id, Subject{Kind: "group", ID: id}, Subject{Kind: "user", ID: "u-" + id, Change: "added"})
		r.CreatedAt, r.LastSeenAt = seen, seen
		mustSave(t, s, r)
	}
	two("a", "g1", suiteT0)
	two("a", "g2", suiteT0)
	two("b", "g3", suiteT0.Add(-time.Hour))
	two("b", "g4", suiteT0)
	if a, b := subjectRows(t, s, "a"), subjectRows(t, s, "b"); a != 4 || b != 4 {
		t.Fatalf("subject rows = %d, %d; want 4, 4", a, b)
	}
	if n, err := s.DeleteRecords(ctx, "a"); err != nil || n != 2 {
		t.Fatalf("DeleteRecords(a) = %d, %v; want 2 (records, not subjects)", n, err)
	}
	if a, b := subjectRows(t, s, "a"), subjectRows(t, s, "b"); a != 0 || b != 4 {
		t.Errorf("after DeleteRecords(a): subject rows = %d, %d; want 0, 4", a, b)
	}
	if n, err := s.Purge(ctx, suiteT0.Add(-time.Minute)); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	if b := subjectRows(t, s, "b"); b != 2 {
		t.Errorf("after Purge: subject rows of b = %d, want 2", b)
	}
	if recs, _ := mustRecords(t, s, "b", RecordQuery{User: "u-g3"}); len(recs) != 0 {
		t.Errorf("a purged record's subject still matches: %v", recordIDs(recs))
	}
}

// mustNote applies a warning note.
func mustNote(t *testing.T, s Store, n WarningNote) NoteResult {
	t.Helper()
	res, err := s.NoteWarnings(t.Context(), n)
	if err != nil {
		t.Fatalf("NoteWarnings(%+v): %v", n, err)
	}
	return res
}

// warningsOf returns the open warnings of key as "attribute:count".
func warningsOf(t *testing.T, s Store, conn, key string) []string {
	t.Helper()
	ws, err := s.UserWarnings(t.Context(), conn, key)
	if err != nil {
		t.Fatalf("UserWarnings(%s, %s): %v", conn, key, err)
	}
	out := []string{}
	for _, w := range ws {
		out = append(out, fmt.Sprintf("%s:%d", w.Attribute, w.Count))
	}
	return out
}

// openWarningCount is the Warnings count Connections gives conn (-1: not listed).
func openWarningCount(t *testing.T, s Store, conn string) int64 {
	t.Helper()
	infos, err := s.Connections(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.Name == conn {
			return info.Warnings
		}
	}
	return -1
}

func suiteWarnings(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ex1 := mustSave(t, s, testRecord("w", 1)).ID
	ex2 := mustSave(t, s, testRecord("w", 2)).ID
	t0 := suiteT0
	if n := openWarningCount(t, s, "w"); n != 0 {
		t.Errorf("Warnings before any = %d", n)
	}
	res := mustNote(t, s, WarningNote{Connection: "w", ResourceType: "User", Key: "Alice@Example.com",
		Missing: []string{"favoriteColor", "department", "favoriteColor", ""}, ExampleRecordID: ex1, At: t0})
	if !slices.Equal(res.Opened, []string{"favoriteColor", "department"}) || res.ExampleRecordID != ex1 || res.Resolved != nil {
		t.Errorf("first note = %+v", res)
	}
	// The same user, another spelling of the key: a bump, no new warning, first example kept.
	res = mustNote(t, s, WarningNote{Connection: "w", ResourceType: "User", Key: "alice@example.com",
		Missing: []string{"favoriteColor"}, ExampleRecordID: ex2, At: t0.Add(time.Minute)})
	if res.Opened != nil || res.ExampleRecordID != 0 {
		t.Errorf("second note = %+v", res)
	}
	ws, err := s.UserWarnings(t.Context(), "w", "ALICE@EXAMPLE.COM")
	if err != nil || len(ws) != 2 {
		t.Fatalf("UserWarnings = %+v, %v", ws, err)
	}
	want := []Warning{
		{ResourceType: "User", Key: "Alice@Example.com", Attribute: "department", Count: 1, FirstSeenAt: want0, LastSeenAt: want0, ExampleRecordID: ex1},
		{ResourceType: "User", Key: "alice@example.com", Attribute: "favoriteColor", Count: 2, FirstSeenAt: want0, LastSeenAt: us(t0.Add(time.Minute)), ExampleRecordID: ex1},
	}
	for i := range want {
		got := ws[i]
		if got.FirstSeenAt.Location() != time.UTC {
			t.Errorf("times not in UTC")
		}
		if got.ResourceType != want[i].ResourceType || got.Attribute != want[i].Attribute || got.Count != want[i].Count ||
			!got.FirstSeenAt.Equal(want[i].FirstSeenAt) || !got.LastSeenAt.Equal(want[i].LastSeenAt) || got.ExampleRecordID != want[i].ExampleRecordID {
			t.Errorf("warning %d = %+v, want %+v", i, got, want[i])
		}
	}
	if ws[1].Key != "alice@example.com" {
		t.Errorf("key as last seen = %q", ws[1].Key)
	}
	if n := openWarningCount(t, s, "w"); n != 2 {
		t.Errorf("Warnings = %d, want 2", n)
	}
	// Pending counts stay pending-only.
	if infos, _ := s.Connections(t.Context()); len(infos) != 1 || infos[0].Pending != 2 {
		t.Errorf("Connections = %+v", infos)
	}

	// A write carrying favoriteColor resolves it; department stays open.
	res = mustNote(t, s, WarningNote{Connection: "w", ResourceType: "User", Key: "ALICE@example.com",
		Present: []string{"favoriteColor", "nickName"}, At: t0.Add(2 * time.Minute)})
	if !slices.Equal(res.Resolved, []string{"favoriteColor"}) || res.Opened != nil {
		t.Errorf("resolving note = %+v", res)
	}
	if got := warningsOf(t, s, "w", "alice@example.com"); !slices.Equal(got, []string{"department:1"}) {
		t.Errorf("after resolve: %v", got)
	}
	if n := openWarningCount(t, s, "w"); n != 1 {
		t.Errorf("Warnings after resolve = %d, want 1", n)
	}
	// Resolving again does nothing.
	if res := mustNote(t, s, WarningNote{Connection: "w", ResourceType: "User", Key: "alice@example.com",
		Present: []string{"favoriteColor"}, At: t0.Add(3 * time.Minute)}); res.Resolved != nil {
		t.Errorf("second resolve = %+v", res)
	}
	// A miss after the resolution reopens it: a new warning, counted from 1, with the new example.
	t4 := t0.Add(4 * time.Minute)
	res = mustNote(t, s, WarningNote{Connection: "w", ResourceType: "User", Key: "alice@example.com",
		Missing: []string{"favoriteColor", "department"}, ExampleRecordID: ex2, At: t4})
	if !slices.Equal(res.Opened, []string{"favoriteColor"}) || res.ExampleRecordID != ex2 {
		t.Errorf("reopening note = %+v", res)
	}
	ws, _ = s.UserWarnings(t.Context(), "w", "alice@example.com")
	if len(ws) != 2 || ws[1].Attribute != "favoriteColor" || ws[1].Count != 1 || !ws[1].FirstSeenAt.Equal(us(t4)) ||
		ws[1].ExampleRecordID != ex2 || ws[0].Count != 2 || ws[0].ExampleRecordID != ex1 {
		t.Errorf("after reopen: %+v", ws)
	}
	// Missing and present at once: missing wins. Another resource type is another warning.
	res = mustNote(t, s, WarningNote{Connection: "w", ResourceType: "Group", Key: "alice@example.com",
		Missing: []string{"favoriteColor"}, Present: []string{"favoriteColor"}, At: t4})
	if !slices.Equal(res.Opened, []string{"favoriteColor"}) || res.Resolved != nil {
		t.Errorf("group note = %+v", res)
	}
	if n := openWarningCount(t, s, "w"); n != 3 {
		t.Errorf("Warnings = %d, want 3", n)
	}
	// Notes without a key cannot hold misses; an empty note does nothing.
	if res := mustNote(t, s, WarningNote{Connection: "w", ResourceType: "User", Missing: []string{"x"}}); res.Opened != nil {
		t.Errorf("keyless miss opened %v", res.Opened)
	}
	if _, err := s.NoteWarnings(t.Context(), WarningNote{ResourceType: "User", Key: "k", Missing: []string{"x"}}); err == nil {
		t.Error("a note without connection: no error")
	}
	if got := warningsOf(t, s, "w", "nobody"); len(got) != 0 {
		t.Errorf("warnings of nobody: %v", got)
	}
}

// suiteWarningsOutOfOrder: notes from several instances can arrive late; an older
// resolution or miss does not undo a newer one.
func suiteWarningsOutOfOrder(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	t0 := suiteT0
	note := func(at time.Duration, missing, present []string) NoteResult {
		return mustNote(t, s, WarningNote{Connection: "o", ResourceType: "User", Key: "bob",
			Missing: missing, Present: present, At: t0.Add(at)})
	}
	note(10*time.Second, []string{"a"}, nil)
	if res := note(5*time.Second, nil, []string{"a"}); res.Resolved != nil {
		t.Errorf("a resolution older than the miss resolved: %+v", res)
	}
	if res := note(20*time.Second, nil, []string{"a"}); !slices.Equal(res.Resolved, []string{"a"}) {
		t.Errorf("resolution = %+v", res)
	}
	if res := note(15*time.Second, []string{"a"}, nil); res.Opened != nil {
		t.Errorf("a miss older than the resolution reopened: %+v", res)
	}
	if got := warningsOf(t, s, "o", "bob"); len(got) != 0 {
		t.Errorf("open: %v", got)
	}
	// A late miss of an open warning counts, and keeps the newest last seen.
	note(30*time.Second, []string{"a"}, nil)
	note(25*time.Second, []string{"a"}, nil)
	ws, _ := s.UserWarnings(t.Context(), "o", "bob")
	if len(ws) != 1 || ws[0].Count != 2 || !ws[0].LastSeenAt.Equal(us(t0.Add(30*time.Second))) {
		t.Errorf("after a late miss: %+v", ws)
	}
}

func suiteWarningFallbacks(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	t0 := suiteT0
	fb := func(attr, src string) FallbackUse { return FallbackUse{Attribute: attr, Source: src} }
	mustNote(t, s, WarningNote{Connection: "f", ResourceType: "User", Key: "u1", At: t0,
		Fallbacks: []FallbackUse{fb("favoriteColor", "favorite_color"), fb("favoriteColor", "favorite_color")}})
	mustNote(t, s, WarningNote{Connection: "f", ResourceType: "User", At: t0.Add(time.Minute), // a PATCH: no key
		Fallbacks: []FallbackUse{fb("favoriteColor", "favorite_color"), fb("favoriteColor", "preferences.favoriteColor")}})
	mustNote(t, s, WarningNote{Connection: "f", ResourceType: "User", Key: "u2", At: t0.Add(-time.Minute),
		Missing: []string{"favoriteColor"}, Fallbacks: []FallbackUse{fb("department", "dept")}})
	mustNote(t, s, WarningNote{Connection: "f", ResourceType: "User", Key: "u3", At: t0,
		Missing: []string{"favoriteColor"}})
	mustNote(t, s, WarningNote{Connection: "f", ResourceType: "User", Key: "u3", At: t0.Add(time.Hour),
		Present: []string{"favoriteColor"}})
	mustNote(t, s, WarningNote{Connection: "f", ResourceType: "Group", Key: "g1", At: t0,
		Missing: []string{"description"}})
	got, err := s.WarningSummary(t.Context(), "f")
	if err != nil {
		t.Fatal(err)
	}
	want := []WarningAttribute{
		{ResourceType: "Group", Attribute: "description", UsersMissing: 1, Fallbacks: []FallbackCount{}},
		{ResourceType: "User", Attribute: "department", Fallbacks: []FallbackCount{{Source: "dept", Count: 1, LastSeenAt: us(t0.Add(-time.Minute))}}},
		{ResourceType: "User", Attribute: "favoriteColor", UsersMissing: 1, Fallbacks: []FallbackCount{
			{Source: "favorite_color", Count: 2, LastSeenAt: us(t0.Add(time.Minute))},
			{Source: "preferences.favoriteColor", Count: 1, LastSeenAt: us(t0.Add(time.Minute))},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WarningSummary =\n%+v\nwant\n%+v", got, want)
	}
	if got, err := s.WarningSummary(t.Context(), "nobody"); err != nil || len(got) != 0 {
		t.Errorf("WarningSummary(nobody) = %+v, %v", got, err)
	}
	// A connection with fallback uses only is listed.
	mustNote(t, s, WarningNote{Connection: "f2", ResourceType: "User", Fallbacks: []FallbackUse{fb("a", "b")}})
	if n := openWarningCount(t, s, "f2"); n != 0 {
		t.Errorf("Warnings of a connection with fallbacks only = %d, want 0 (listed)", n)
	}
}

func suiteWarningUsers(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	t0 := suiteT0
	for i, key := range []string{"erin", "Carol", "alice", "dave", "bob"} {
		missing := []string{"favoriteColor"}
		if i%2 == 0 {
			missing = append(missing, "department")
		}
		for n := 0; n <= i; n++ {
			mustNote(t, s, WarningNote{Connection: "u", ResourceType: "User", Key: key, Missing: missing,
				At: t0.Add(time.Duration(i*10+n) * time.Second)})
		}
	}
	mustNote(t, s, WarningNote{Connection: "u", ResourceType: "Group", Key: "admins", Missing: []string{"description"}, At: t0})
	mustNote(t, s, WarningNote{Connection: "u", ResourceType: "User", Key: "frank", Missing: []string{"favoriteColor"}, At: t0})
	mustNote(t, s, WarningNote{Connection: "u", ResourceType: "User", Key: "frank", Present: []string{"favoriteColor"}, At: t0.Add(time.Second)})

	users, next, err := s.WarningUsers(t.Context(), "u", "", "", 0)
	if err != nil || next != "" {
		t.Fatalf("WarningUsers = %v, %q, %v", users, next, err)
	}
	var keys []string
	for _, u := range users {
		keys = append(keys, u.ResourceType+"/"+u.Key)
	}
	if want := []string{"Group/admins", "User/alice", "User/bob", "User/Carol", "User/dave", "User/erin"}; !slices.Equal(keys, want) {
		t.Errorf("users = %v, want %v", keys, want)
	}
	// erin: 1 write missing both; bob: 5 writes missing both (i=4); Carol: 2 writes missing favoriteColor.
	for _, u := range users {
		switch u.Key {
		case "erin":
			if u.Count != 2 || !slices.Equal(u.Attributes, []string{"department", "favoriteColor"}) || !u.LastSeenAt.Equal(want0) {
				t.Errorf("erin = %+v", u)
			}
		case "bob":
			if u.Count != 10 || !slices.Equal(u.Attributes, []string{"department", "favoriteColor"}) || !u.LastSeenAt.Equal(us(t0.Add(44*time.Second))) {
				t.Errorf("bob = %+v", u)
			}
		case "Carol":
			if u.Count != 2 || !slices.Equal(u.Attributes, []string{"favoriteColor"}) {
				t.Errorf("Carol = %+v", u)
			}
		}
	}
	// By attribute (case-insensitive); attributes still lists all of the user's.
	users, _, err = s.WarningUsers(t.Context(), "u", "DEPARTMENT", "", 0)
	keys = nil
	for _, u := range users {
		keys = append(keys, u.Key+"="+strings.Join(u.Attributes, ","))
	}
	if want := []string{"alice=department,favoriteColor", "bob=department,favoriteColor", "erin=department,favoriteColor"}; err != nil || !slices.Equal(keys, want) {
		t.Errorf("users missing department = %v, %v; want %v", keys, err, want)
	}
	// Pages of two.
	var paged []string
	cursor := ""
	for range 10 {
		page, next, err := s.WarningUsers(t.Context(), "u", "", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 2 {
			t.Fatalf("page of %d", len(page))
		}
		for _, u := range page {
			paged = append(paged, u.Key)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if want := []string{"admins", "alice", "bob", "Carol", "dave", "erin"}; !slices.Equal(paged, want) {
		t.Errorf("paged = %v, want %v", paged, want)
	}
	// Five users miss favoriteColor (frank's is resolved): a page of five is the last.
	if page, next, err := s.WarningUsers(t.Context(), "u", "favoriteColor", "", 5); err != nil || len(page) != 5 || next != "" {
		t.Errorf("a full last page: %d users, next %q, %v", len(page), next, err)
	}
	page, next, err := s.WarningUsers(t.Context(), "u", "favoriteColor", "", 4)
	if err != nil || len(page) != 4 || next == "" {
		t.Fatalf("first of two pages: %d users, next %q, %v", len(page), next, err)
	}
	if page, next, err := s.WarningUsers(t.Context(), "u", "favoriteColor", next, 4); err != nil || len(page) != 1 || page[0].Key != "erin" || next != "" {
		t.Errorf("second page: %+v, %q, %v", page, next, err)
	}
	for _, c := range []string{"!!!", "cjE", encodeCursor(3), "' OR 1=1 --"} {
		if _, _, err := s.WarningUsers(t.Context(), "u", "", c, 0); !errors.Is(err, ErrBadCursor) {
			t.Errorf("WarningUsers(cursor %q) error = %v, want ErrBadCursor", c, err)
		}
	}
}

func suiteWarningExamples(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	t0 := suiteT0
	live := func(n int, missing ...string) NoteResult {
		ex := testRecord("ignored", n) // the note's connection wins
		ex.Status, ex.DedupeHash = StatusPending, "h"
		return mustNote(t, s, WarningNote{Connection: "live", ResourceType: "User", Key: "ada", ResourceID: "u1",
			Missing: missing, Example: ex, At: t0.Add(time.Duration(n) * time.Second)})
	}
	res := live(1, "favoriteColor")
	if !slices.Equal(res.Opened, []string{"favoriteColor"}) || res.ExampleRecordID == 0 {
		t.Fatalf("first live miss = %+v", res)
	}
	first := res.ExampleRecordID
	rec, err := s.Record(t.Context(), "live", first)
	if err != nil || rec.Status != StatusObserved || rec.DedupeHash != "" || rec.Key != "user1@example.com" ||
		compactJSON(t, rec.Original.Body) != `{"userName":"user1@example.com"}` {
		t.Fatalf("example record = %+v, %v", rec, err)
	}
	// The same miss again keeps no record; a new attribute keeps one.
	if res := live(2, "favoriteColor"); res.Opened != nil || res.ExampleRecordID != 0 {
		t.Errorf("repeated live miss = %+v", res)
	}
	res = live(3, "favoriteColor", "department")
	if !slices.Equal(res.Opened, []string{"department"}) || res.ExampleRecordID == 0 || res.ExampleRecordID == first {
		t.Errorf("new attribute = %+v", res)
	}
	second := res.ExampleRecordID
	if recs, _ := mustRecords(t, s, "live", RecordQuery{}); !slices.Equal(recordIDs(recs), []int64{second, first}) {
		t.Errorf("records = %v, want [%d %d]", recordIDs(recs), second, first)
	}
	// Observed records are not pending: not counted, not chained, not deduplicated.
	infos, _ := s.Connections(t.Context())
	if len(infos) != 1 || infos[0] != (ConnectionInfo{Name: "live", Warnings: 2}) {
		t.Errorf("Connections = %+v", infos)
	}
	if got, err := s.PendingProjection(t.Context(), "live", "User", "u1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingProjection found an observed record: %s, %v", got, err)
	}
	obs := testRecord("live", 9)
	obs.Status = StatusObserved
	a, b := mustSave(t, s, obs), mustSave(t, s, obs)
	if a.ID == b.ID || b.Attempts != 1 {
		t.Errorf("observed records deduplicated: %d, %d (attempts %d)", a.ID, b.ID, b.Attempts)
	}
	if recs, _ := mustRecords(t, s, "live", RecordQuery{Status: StatusObserved}); len(recs) != 4 {
		t.Errorf("observed records = %d, want 4", len(recs))
	}

	// Clearing the records keeps the warnings, without examples.
	if _, err := s.DeleteRecords(t.Context(), "live"); err != nil {
		t.Fatal(err)
	}
	ws, err := s.UserWarnings(t.Context(), "live", "ADA")
	if err != nil || len(ws) != 2 || ws[0].ExampleRecordID != 0 || ws[1].ExampleRecordID != 0 || ws[1].Count != 3 {
		t.Fatalf("warnings after DeleteRecords = %+v, %v", ws, err)
	}
	if n := openWarningCount(t, s, "live"); n != 2 {
		t.Errorf("Warnings after DeleteRecords = %d", n)
	}
	// An open warning that lost its example gets a new one, without being new.
	res = live(4, "favoriteColor")
	if res.Opened != nil {
		t.Errorf("miss after DeleteRecords = %+v", res)
	}
	ws, _ = s.UserWarnings(t.Context(), "live", "ada")
	if ws[1].ExampleRecordID == 0 || ws[1].Count != 4 {
		t.Errorf("favoriteColor after a new live miss = %+v", ws[1])
	}
	if _, err := s.Record(t.Context(), "live", ws[1].ExampleRecordID); err != nil {
		t.Errorf("new example: %v", err)
	}
	// A given example id wins over Example; nothing is saved.
	before, _ := mustRecords(t, s, "live", RecordQuery{})
	given := mustSave(t, s, testRecord("live", 20)).ID
	res = mustNote(t, s, WarningNote{Connection: "live", ResourceType: "User", Key: "ada", Missing: []string{"title"},
		ExampleRecordID: given, Example: testRecord("live", 21), At: t0})
	if res.ExampleRecordID != given {
		t.Errorf("given example: %+v", res)
	}
	if after, _ := mustRecords(t, s, "live", RecordQuery{}); len(after) != len(before)+1 {
		t.Errorf("records %d → %d, want one more", len(before), len(after))
	}
}

func suiteWarningsByResourceID(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	t0 := suiteT0
	// A create (no id yet), then a PUT that still lacks it (the id is remembered), then a
	// PATCH (id only) that sets it.
	mustNote(t, s, WarningNote{Connection: "i", ResourceType: "User", Key: "carol", Missing: []string{"a", "b"}, At: t0})
	mustNote(t, s, WarningNote{Connection: "i", ResourceType: "User", Key: "Carol", ResourceID: "u3", Missing: []string{"a"}, At: t0.Add(time.Second)})
	ws, _ := s.UserWarnings(t.Context(), "i", "carol")
	if len(ws) != 2 || ws[0].ResourceID != "u3" || ws[1].ResourceID != "u3" {
		t.Errorf("ids remembered: %+v", ws)
	}
	// Another resource type or id resolves nothing.
	if res := mustNote(t, s, WarningNote{Connection: "i", ResourceType: "Group", ResourceID: "u3", Present: []string{"a"}, At: t0.Add(time.Minute)}); res.Resolved != nil {
		t.Errorf("group id resolved %v", res.Resolved)
	}
	if res := mustNote(t, s, WarningNote{Connection: "i", ResourceType: "User", ResourceID: "u4", Present: []string{"a"}, At: t0.Add(time.Minute)}); res.Resolved != nil {
		t.Errorf("other id resolved %v", res.Resolved)
	}
	res := mustNote(t, s, WarningNote{Connection: "i", ResourceType: "User", ResourceID: "u3", Present: []string{"a"}, At: t0.Add(time.Minute)})
	if !slices.Equal(res.Resolved, []string{"a"}) {
		t.Errorf("PATCH by id = %+v", res)
	}
	if got := warningsOf(t, s, "i", "carol"); !slices.Equal(got, []string{"b:1"}) {
		t.Errorf("open = %v", got)
	}
}

func suiteWarningsIsolation(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ex := mustSave(t, s, testRecord("a", 1)).ID
	mustNote(t, s, WarningNote{Connection: "a", ResourceType: "User", Key: "ada", Missing: []string{"x"}, ExampleRecordID: ex,
		Fallbacks: []FallbackUse{{Attribute: "x", Source: "y"}}, At: suiteT0})
	// The same key in b is another warning, and b's notes do not touch a's.
	res := mustNote(t, s, WarningNote{Connection: "b", ResourceType: "User", Key: "ada", Missing: []string{"x"}, At: suiteT0})
	if !slices.Equal(res.Opened, []string{"x"}) {
		t.Errorf("b's first miss = %+v", res)
	}
	mustNote(t, s, WarningNote{Connection: "b", ResourceType: "User", Key: "ada", Present: []string{"x"}, At: suiteT0.Add(time.Second)})
	if got := warningsOf(t, s, "a", "ada"); !slices.Equal(got, []string{"x:1"}) {
		t.Errorf("a's warnings = %v", got)
	}
	if got := warningsOf(t, s, "b", "ada"); len(got) != 0 {
		t.Errorf("b's warnings = %v", got)
	}
	if users, _, err := s.WarningUsers(t.Context(), "b", "", "", 0); err != nil || len(users) != 0 {
		t.Errorf("b's users = %v, %v", users, err)
	}
	if sum, err := s.WarningSummary(t.Context(), "b"); err != nil || len(sum) != 1 || sum[0].UsersMissing != 0 || len(sum[0].Fallbacks) != 0 {
		t.Errorf("b's summary = %+v, %v", sum, err)
	}
	if n := openWarningCount(t, s, "a"); n != 1 {
		t.Errorf("a's Warnings = %d", n)
	}
	if n := openWarningCount(t, s, "b"); n != 0 {
		t.Errorf("b's Warnings = %d", n)
	}
	// b cannot see a's example through a warning either.
	if _, err := s.Record(t.Context(), "b", ex); !errors.Is(err, ErrNotFound) {
		t.Errorf("a's example under b: %v", err)
	}
}

func suiteWarningsPurge(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	t0 := suiteT0
	old := testRecord("p", 1)
	old.CreatedAt, old.LastSeenAt = t0.Add(-2*time.Hour), t0.Add(-2*time.Hour)
	ex := mustSave(t, s, old).ID
	mustNote(t, s, WarningNote{Connection: "p", ResourceType: "User", Key: "old-open", Missing: []string{"x"}, ExampleRecordID: ex, At: t0.Add(-2 * time.Hour)})
	mustNote(t, s, WarningNote{Connection: "p", ResourceType: "User", Key: "old-resolved", Missing: []string{"x"}, At: t0.Add(-3 * time.Hour)})
	mustNote(t, s, WarningNote{Connection: "p", ResourceType: "User", Key: "old-resolved", Present: []string{"x"}, At: t0.Add(-2 * time.Hour)})
	mustNote(t, s, WarningNote{Connection: "p", ResourceType: "User", Key: "new-resolved", Missing: []string{"x"}, At: t0.Add(-3 * time.Hour)})
	mustNote(t, s, WarningNote{Connection: "p", ResourceType: "User", Key: "new-resolved", Present: []string{"x"}, At: t0})
	if n, err := s.Purge(t.Context(), t0.Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	ws, err := s.UserWarnings(t.Context(), "p", "old-open")
	if err != nil || len(ws) != 1 || ws[0].ExampleRecordID != 0 {
		t.Errorf("an open warning after its example was purged: %+v, %v", ws, err)
	}
	sum, _ := s.WarningSummary(t.Context(), "p")
	if len(sum) != 1 || sum[0].UsersMissing != 1 {
		t.Errorf("summary after purge = %+v", sum)
	}
	// The warning resolved before the purge time is gone: a new miss opens it afresh.
	if res := mustNote(t, s, WarningNote{Connection: "p", ResourceType: "User", Key: "old-resolved", Missing: []string{"x"}, At: t0}); !slices.Equal(res.Opened, []string{"x"}) {
		t.Errorf("miss after purge = %+v", res)
	}
	// The one resolved after it is kept: an older miss does not reopen it.
	if res := mustNote(t, s, WarningNote{Connection: "p", ResourceType: "User", Key: "new-resolved", Missing: []string{"x"}, At: t0.Add(-time.Minute)}); res.Opened != nil {
		t.Errorf("an older miss reopened a kept resolution: %+v", res)
	}
}

// suiteConcurrentDuplicates: 64 writers save records, a third of them retries of writes
// other writers also send (group commit puts identical retries into one transaction):
// every call is answered, every write is stored exactly once, and its attempts are the
// number of calls that sent it.
func suiteConcurrentDuplicates(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	const writers, each, shared = 64, 30, 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		calls   = map[string]int{}   // dedupe hash → calls
		idsOf   = map[string]int64{} // dedupe hash → id answered
		answers atomic.Int64
	)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := g*1000 + i
				if i%3 == 0 {
					n = -1 - (g+i)%shared // a write several writers retry
				}
				rec := testRecord("dup", n)
				rec.Subjects = []Subject{{Kind: "user", Key: rec.Key}}
				saved, err := s.SaveRecord(t.Context(), rec)
				answers.Add(1)
				mu.Lock()
				calls[rec.DedupeHash]++
				switch {
				case err != nil:
					errs = append(errs, err)
				case idsOf[rec.DedupeHash] != 0 && idsOf[rec.DedupeHash] != saved.ID:
					errs = append(errs, fmt.Errorf("%s answered with ids %d and %d", rec.DedupeHash, idsOf[rec.DedupeHash], saved.ID))
				case len(saved.Subjects) != 1 || saved.Subjects[0].Key != rec.Key:
					errs = append(errs, fmt.Errorf("%s answered with subjects %+v", rec.DedupeHash, saved.Subjects))
				default:
					idsOf[rec.DedupeHash] = saved.ID
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d errors", len(errs))
	}
	if answers.Load() != writers*each {
		t.Fatalf("%d answers, want %d", answers.Load(), writers*each)
	}
	all := allRecords(t, s, "dup")
	if len(all) != len(calls) {
		t.Errorf("%d records, want %d (one per distinct write)", len(all), len(calls))
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.DedupeHash] {
			t.Errorf("%s stored twice", r.DedupeHash)
		}
		seen[r.DedupeHash] = true
		if r.Attempts != calls[r.DedupeHash] {
			t.Errorf("%s: attempts %d, want %d", r.DedupeHash, r.Attempts, calls[r.DedupeHash])
		}
		if r.ID != idsOf[r.DedupeHash] {
			t.Errorf("%s: id %d, answered %d", r.DedupeHash, r.ID, idsOf[r.DedupeHash])
		}
		if len(r.Subjects) != 1 {
			t.Errorf("%s: %d subjects", r.DedupeHash, len(r.Subjects))
		}
	}
	if n := subjectRows(t, s, "dup"); n != int64(len(calls)) {
		t.Errorf("%d subject rows, want %d", n, len(calls))
	}
	if st, ok := s.(interface{ saveStats() (int64, int64) }); ok {
		batches, records := st.saveStats()
		t.Logf("%d calls in %d transactions (%.1f records per transaction)", writers*each, batches, float64(records)/float64(max(batches, 1)))
		if records != writers*each {
			t.Errorf("flushers committed %d records, want %d", records, writers*each)
		}
	}
}

// suiteCancelledSaves: contexts that end at random moments while many saves are queued.
// A call that returned an error was not committed; a call that returned a record was.
func suiteCancelledSaves(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	const writers, each = 32, 20
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ok     = map[string]int64{}
		failed = map[string]bool{}
	)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec := testRecord("cancel", g*1000+i)
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration((g*7+i*13)%40)*time.Millisecond)
				if i%5 == 0 {
					cancel() // ended before the call
				}
				saved, err := s.SaveRecord(ctx, rec)
				cancel()
				mu.Lock()
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s: %v, want a context error", rec.DedupeHash, err)
					}
					failed[rec.DedupeHash] = true
				} else {
					ok[rec.DedupeHash] = saved.ID
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	all := allRecords(t, s, "cancel")
	stored := map[string]int64{}
	for _, r := range all {
		stored[r.DedupeHash] = r.ID
	}
	for h := range failed {
		if id, in := stored[h]; in {
			t.Errorf("%s was answered with an error but is stored (id %d)", h, id)
		}
	}
	for h, id := range ok {
		if stored[h] != id {
			t.Errorf("%s was answered with id %d but the store has %d", h, id, stored[h])
		}
	}
	if len(stored) != len(ok) {
		t.Errorf("%d records stored, %d answered as saved", len(stored), len(ok))
	}
	t.Logf("%d saved, %d failed", len(ok), len(failed))
	if len(failed) < writers*each/5 {
		t.Errorf("only %d calls failed; the calls with ended contexts must", len(failed))
	}
}

// suiteBatchSave: a group commit's multi-row save (saveRecordsTx) stores and answers
// exactly what saving its calls one by one (saveRecordTx) does, for a batch that mixes
// new records, a retry of a stored pending record, a retry of a record earlier in the
// batch, records without a dedupe hash, a non-pending record, and subjects; with 11 calls
// it takes chunks of 8, 2 and 1.
func suiteBatchSave(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	core := storeCore(s)
	batch := func(conn string) []*Record {
		rec := func(n int, hash string, subjects ...Subject) *Record {
			r := testRecord(conn, n)
			if hash != "" {
				r.DedupeHash = conn + "-" + hash
			} else {
				r.DedupeHash = ""
			}
			r.Subjects = subjects
			return r
		}
		member := func(k string) Subject { return Subject{Kind: "User", ID: k, Key: k + "@example.com", Change: "Added"} }
		retryA := rec(4, "a", member("other"))
		retryA.LastSeenAt = suiteT0.Add(time.Hour)
		observed := rec(9, "obs")
		observed.Status = StatusObserved
		return []*Record{
			rec(1, "a", member("u1"), member("u2"), member("u3")),
			rec(2, "pre", member("ignored")),
			rec(3, "b"),
			retryA,
			rec(5, ""),
			rec(6, "", member("u6")),
			rec(7, "c", member("u7")),
			observed,
			rec(10, "d"),
			rec(11, "e", member("u11")),
			rec(12, "f"),
		}
	}
	calls := func(recs []*Record) []*saveCall {
		var out []*saveCall
		for _, r := range recs {
			args, err := core.recordArgs(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, &saveCall{rec: r, args: args, subjects: normalizeSubjects(r.Subjects),
				dedupe: r.DedupeHash != "" && (r.Status == "" || r.Status == StatusPending)})
		}
		return out
	}
	run := func(conn string, many bool) ([]Record, []Record) {
		pre := testRecord(conn, 0)
		pre.DedupeHash = conn + "-pre"
		pre.Subjects = []Subject{{Kind: "user", ID: "p", Key: "pre"}}
		mustSave(t, s, pre)
		cs := calls(batch(conn))
		var outs []Record
		err := core.db.inTx(t.Context(), func(tx sqlBackend) error {
			if many {
				var err error
				outs, err = core.saveRecordsTx(t.Context(), tx, cs)
				return err
			}
			for _, c := range cs {
				out, err := core.saveRecordTx(t.Context(), tx, c)
				if err != nil {
					return err
				}
				outs = append(outs, out)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", conn, err)
		}
		return outs, allRecords(t, s, conn)
	}
	// comparable: a record without what differs between the two connections.
	comparable := func(conn string, r Record) Record {
		r.ID, r.Connection = 0, ""
		r.DedupeHash = strings.TrimPrefix(r.DedupeHash, conn+"-")
		r.Original.Header, r.Effective.Header = nil, nil
		return r
	}
	manyOut, manyStored := run("many", true)
	oneOut, oneStored := run("one", false)
	if len(manyOut) != len(oneOut) || len(manyStored) != len(oneStored) {
		t.Fatalf("answers %d vs %d, stored %d vs %d", len(manyOut), len(oneOut), len(manyStored), len(oneStored))
	}
	if len(manyStored) != 10 { // pre + 11 calls − 2 retries
		t.Errorf("%d records stored, want 10", len(manyStored))
	}
	for i := range manyOut {
		if got, want := comparable("many", manyOut[i]), comparable("one", oneOut[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("answer %d:\n batch      %+v\n one by one %+v", i, got, want)
		}
	}
	idOf := map[string]int64{}
	for i := range manyStored {
		if got, want := comparable("many", manyStored[i]), comparable("one", oneStored[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("stored %d:\n batch      %+v\n one by one %+v", i, got, want)
		}
		idOf[manyStored[i].DedupeHash] = manyStored[i].ID
	}
	// The answers carry the ids of the rows they were saved as, and a retry the attempts.
	if manyOut[0].ID != manyOut[3].ID || manyOut[3].Attempts != 2 || manyOut[1].ID != idOf["many-pre"] || manyOut[1].Attempts != 2 {
		t.Errorf("retries answered %+v / %+v", manyOut[3], manyOut[1])
	}
	if n, m := subjectRows(t, s, "many"), subjectRows(t, s, "one"); n != m || n != 7 {
		t.Errorf("subject rows: batch %d, one by one %d, want 7", n, m)
	}
}

// suiteLongIdentity: a write whose resource id, key and type are long (an IdP may send any
// id in the URL; a key comes from the body) is recorded, found again by PendingProjection, and
// listed — no index entry limit (PostgreSQL's is ~2.7 KB) may refuse it.
func suiteLongIdentity(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	// Incompressible: PostgreSQL compresses a long index entry before it measures it.
	random := func(n int) string {
		b := make([]byte, n/2)
		_, _ = crand.Read(b)
		return hex.EncodeToString(b)
	}
	id := random(4000) + "-é"
	key := random(4000) + "@example.com"
	for i, r := range []*Record{
		{ResourceID: id, Key: key, Operation: "patch", Method: "PATCH"},
		{ResourceID: "", Key: key, Operation: "create", Method: "POST"},
		{ResourceID: id, Key: key, Operation: "replace", Method: "PUT", Errors: 1},
	} {
		rec := testRecord("long", i)
		rec.ResourceID, rec.Key, rec.Operation, rec.Method, rec.Errors = r.ResourceID, r.Key, r.Operation, r.Method, r.Errors
		rec.Projected = json.RawMessage(fmt.Sprintf(`{"v":%d}`, i))
		rec.Subjects = []Subject{{Kind: "user", ID: id, Key: key}}
		mustSave(t, s, rec)
	}
	got, err := s.PendingProjection(t.Context(), "long", "User", id)
	if err != nil || string(got) != `{"v":2}` {
		t.Errorf("PendingProjection by the long id: %v %s", err, got)
	}
	all := allRecords(t, s, "long")
	if len(all) != 3 {
		t.Fatalf("%d records listed, want 3", len(all))
	}
	// Kept bounded, and the same long value always maps to the same stored text.
	if k := all[0].Key; len(k) > 512 || k != all[1].Key || !strings.HasPrefix(key, k[:100]) {
		t.Errorf("stored key %d bytes %.40q…, second %.40q…", len(k), k, all[1].Key)
	}
	recs, _, err := s.Records(t.Context(), "long", RecordQuery{User: key})
	if err != nil || len(recs) != 3 {
		t.Errorf("records ?user=<long key>: %d, %v", len(recs), err)
	}
	recs, _, err = s.Records(t.Context(), "long", RecordQuery{User: id})
	if err != nil || len(recs) != 3 {
		t.Errorf("records ?user=<long id>: %d, %v", len(recs), err)
	}
	// A warning keyed by the long key opens, is found by it, and resolves by the long id.
	note := WarningNote{Connection: "long", ResourceType: "User", Key: key, ResourceID: id, Missing: []string{"department"}}
	if _, err := s.NoteWarnings(t.Context(), note); err != nil {
		t.Fatalf("NoteWarnings with a long key: %v", err)
	}
	if ws, err := s.UserWarnings(t.Context(), "long", strings.ToUpper(key)); err != nil || len(ws) != 1 {
		t.Errorf("UserWarnings by the long key: %d, %v", len(ws), err)
	}
	if _, err := s.NoteWarnings(t.Context(), WarningNote{Connection: "long", ResourceType: "User", ResourceID: id, Present: []string{"department"}}); err != nil {
		t.Fatal(err)
	}
	if ws, err := s.UserWarnings(t.Context(), "long", key); err != nil || len(ws) != 0 {
		t.Errorf("after a PATCH with the attribute, by the long id: %d open, %v", len(ws), err)
	}
	groups, _, err := s.PendingResourceGroups(t.Context(), "long", ResourceQuery{})
	if err != nil || len(groups) != 2 {
		t.Errorf("pending resources: %d groups, %v", len(groups), err)
	}
	groups, _, err = s.PendingResourceGroups(t.Context(), "long", ResourceQuery{ErrorsOnly: true})
	if err != nil || len(groups) != 1 {
		t.Errorf("pending resources with errors: %d groups, %v", len(groups), err)
	}
}
