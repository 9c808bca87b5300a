package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// suitePendingResources checks PendingResources (Store.PendingResourceGroups) against
// pendingResourcesScan, the grouping over Records alone, on a varied dataset: resources
// by id and by key (in several spellings), types that share a key, bulk records with
// neither, non-pending records, errors, subjects; every filter and several page sizes,
// paged to the end.
func suitePendingResources(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(7, 11))
	statuses := []RecordStatus{StatusPending, StatusPending, StatusPending, StatusPending, StatusHeld, StatusIgnored, StatusApproved}
	keys := []string{"alice", "ALICE", "Alice", "bob", "Bob", "carol", "admins", "Admins", "dave"}
	for n := range 400 {
		r := testRecord("c", n)
		r.DedupeHash = fmt.Sprintf("h%d", n)
		r.Status = statuses[rng.IntN(len(statuses))]
		r.ResourceType = []string{"User", "User", "user", "Group"}[rng.IntN(4)]
		r.Key, r.ResourceID = "", ""
		switch rng.IntN(5) {
		case 0, 1:
			r.ResourceID = fmt.Sprintf("id%d", rng.IntN(15))
			if rng.IntN(2) == 0 {
				r.Key = keys[rng.IntN(len(keys))]
			}
		case 2, 3:
			r.Key = keys[rng.IntN(len(keys))]
		default: // a bulk request: a resource of its own
			r.ResourceType = ""
		}
		if rng.IntN(6) == 0 {
			r.Errors = 1
			r.Findings = json.RawMessage(`[{"severity":"error","code":"x"},{"severity":"warning","code":"y"}]`)
		}
		r.Deprovision = rng.IntN(8) == 0
		r.Live = json.RawMessage(fmt.Sprintf(`{"n":%d,"members":[{"value":"u1"}]}`, n-1))
		r.Projected = json.RawMessage(fmt.Sprintf(`{"n":%d,"members":[{"value":"u%d"}]}`, n, rng.IntN(3)))
		r.Changes = json.RawMessage(fmt.Sprintf(`[{"op":"add","path":"members","new":{"value":"u%d"},"display":"U %d"}]`, rng.IntN(3), n))
		if n%3 == 0 { // no net change between such records: the store reads no Changes for it
			r.Live, r.Projected = json.RawMessage(`{"members":[{"value":"u1"}]}`), json.RawMessage(`{"members":[{"value":"u1"}]}`)
		}
		r.Attempts = 1 + rng.IntN(3)
		if rng.IntN(3) == 0 {
			r.Subjects = []Subject{{Kind: "user", ID: fmt.Sprintf("id%d", rng.IntN(15)), Key: keys[rng.IntN(len(keys))], Change: "added"}}
		}
		if rng.IntN(5) == 0 {
			r.Subjects = append(r.Subjects, Subject{Kind: "group", ID: "g1", Key: "Admins"})
		}
		mustSave(t, s, r)
	}
	mustSave(t, s, testRecord("other", 1)) // another connection: never shown
	queries := []ResourceQuery{
		{}, {Limit: 1}, {Limit: 7}, {Limit: MaxResourceLimit},
		{ResourceType: "user", Limit: 5}, {ResourceType: "GROUP"}, {ResourceType: "none"},
		{User: "alice", Limit: 3}, {User: "id3"}, {User: "nobody"}, {Group: "admins", Limit: 2}, {Group: "g1"},
		{ErrorsOnly: true, Limit: 4}, {ErrorsOnly: true, User: "bob"}, {ErrorsOnly: true, ResourceType: "User"},
		// ErrorsOnly walks at most as many records as have errors, then maps the rest:
		// a page filled by the walk, one that needs both, and every page size between.
		{ErrorsOnly: true}, {ErrorsOnly: true, Limit: 1}, {ErrorsOnly: true, Limit: 2}, {ErrorsOnly: true, Limit: 13},
		{ErrorsOnly: true, ResourceType: "GROUP", Limit: 3}, {ErrorsOnly: true, Group: "admins"},
	}
	for _, q := range queries {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			want, got := q, q
			for page := 0; ; page++ {
				w, wnext, werr := pendingResourcesScan(ctx, s, "c", want)
				g, gnext, gerr := PendingResources(ctx, s, "c", got)
				if werr != nil || gerr != nil {
					t.Fatalf("page %d: errors %v, %v", page, werr, gerr)
				}
				if len(w) == 0 && len(g) == 0 { // nil or empty: callers answer [] for both
					g, w = nil, nil
				}
				if !reflect.DeepEqual(g, w) || gnext != wnext {
					gj, _ := json.Marshal(g)
					wj, _ := json.Marshal(w)
					t.Fatalf("page %d:\n got %s next %q\nwant %s next %q", page, gj, gnext, wj, wnext)
				}
				if wnext == "" {
					if page == 0 && q.User != "nobody" && q.ResourceType != "none" && len(w) == 0 {
						t.Errorf("no resources: the dataset misses this case")
					}
					break
				}
				want.Cursor, got.Cursor = wnext, gnext
			}
		})
	}
	if _, _, err := PendingResources(ctx, s, "c", ResourceQuery{Cursor: "bad"}); err == nil {
		t.Errorf("bad cursor accepted")
	}
}

// suiteCountsKept checks the counts of Connections (kept by the store as records change,
// migration 007) against a count of the records themselves after every kind of change:
// saves of every status, deduplicated retries, hold decisions and outcomes, stage marks,
// observed examples of warnings, Purge and DeleteRecords.
func suiteCountsKept(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	check := func(step string) {
		t.Helper()
		want := map[string]ConnectionInfo{}
		for _, conn := range []string{"a", "b", "c"} {
			info := ConnectionInfo{Name: conn}
			q := RecordQuery{Limit: MaxRecordLimit}
			n := 0
			for {
				recs, next, err := s.Records(ctx, conn, q)
				if err != nil {
					t.Fatalf("%s: Records: %v", step, err)
				}
				for _, r := range recs {
					n++
					switch r.Status {
					case StatusPending:
						info.Pending++
						if r.Errors > 0 {
							info.Errors++
						}
						if r.Deprovision {
							info.Deprovisions++
						}
					case StatusHeld:
						info.Held++
					}
				}
				if next == "" {
					break
				}
				q.Cursor = next
			}
			if n > 0 {
				want[conn] = info
			}
		}
		infos, err := s.Connections(ctx)
		if err != nil {
			t.Fatalf("%s: Connections: %v", step, err)
		}
		got := map[string]ConnectionInfo{}
		for _, info := range infos {
			info.Mode, info.Warnings = "", 0
			if info != (ConnectionInfo{Name: info.Name}) || want[info.Name] != (ConnectionInfo{}) {
				got[info.Name] = info
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Connections counts %+v, want %+v", step, got, want)
		}
	}
	check("empty")
	statuses := []RecordStatus{StatusPending, StatusHeld, StatusIgnored, StatusApproved, StatusFailed, StatusForwarded}
	var held []int64
	for n := range 60 {
		conn := []string{"a", "b", "c"}[n%3]
		r := testRecord(conn, n)
		r.Status = statuses[(n/3)%len(statuses)]
		r.Errors = n % 4 % 2
		r.Deprovision = n%5 == 0
		saved := mustSave(t, s, r)
		if saved.Status == StatusHeld && conn == "a" {
			held = append(held, saved.ID)
		}
	}
	check("saved")
	for n := range 12 { // identical retries of pending writes: attempts, not rows
		r := testRecord([]string{"a", "b", "c"}[n%3], n)
		r.Status = StatusPending
		mustSave(t, s, r)
	}
	check("deduplicated")
	if _, err := s.NoteWarnings(ctx, WarningNote{Connection: "c", ResourceType: "User", Key: "x@example.com",
		Missing: []string{"title"}, Example: testRecord("c", 999)}); err != nil {
		t.Fatal(err)
	}
	check("observed example")
	if _, err := s.DecideRecords(ctx, "a", held[:len(held)/2], StatusApproved); err != nil {
		t.Fatal(err)
	}
	check("approved")
	if _, err := s.DecideRecords(ctx, "a", held[len(held)/2:], StatusIgnored); err != nil {
		t.Fatal(err)
	}
	check("ignored")
	if ok, err := s.ClaimApproved(ctx, "a", held[0], claimAt); err != nil || !ok {
		t.Fatalf("ClaimApproved = %v, %v", ok, err)
	}
	check("claimed")
	if err := s.FinishHold(ctx, "a", held[0], StatusFailed, 500, "no"); err != nil {
		t.Fatal(err)
	}
	check("failed")
	if _, err := s.RetryHold(ctx, "a", "a-hash-3", suiteT0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("retried hold")
	if _, err := s.MarkPendingForwarded(ctx, "b", "b-hash-1", StatusForwarded, 200, ""); err != nil {
		t.Fatal(err)
	}
	check("staged forward")
	if _, err := s.Purge(ctx, suiteT0.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	check("purged")
	if _, err := s.DeleteRecords(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	check("deleted b")
	s = open(t) // reopened: the counts are stored
	check("reopened")
	mustSave(t, s, testRecord("b", 1000))
	check("b again")
}

// pendingResourcesScan groups the pending records of connection by the resource they target
// (resource type and id, or type and key (case-insensitive) when the record has no id; a
// record with neither, such as a bulk request, is a resource of its own), most recently
// written resource first, and returns one page of them with the cursor of the next page
// ("" on the last). It needs only Store.Records. It was PendingResources until the store
// selected the page (Store.PendingResourceGroups); it stays as the oracle of the tests.
//
// Cost: the records of one resource can lie anywhere in the connection's history, so
// every call reads all pending records of the connection (of the type, when ResourceType
// is set), newest first, in pages of 1000 — and, when User, Group or ErrorsOnly is set,
// the matching pending records once more before that. Only the records of the resources
// of the page are kept in memory (without their request bodies). A page is O(pending
// records) in time; fine for thousands, slow for hundreds of thousands. A resource that
// gets a new record while a client pages moves to the front: the client can miss or
// repeat it.
func pendingResourcesScan(ctx context.Context, st Store, connection string, q ResourceQuery) ([]PendingResource, string, error) {
	limit := resourceLimit(q.Limit)
	var before int64 // resources whose newest record is below this id; 0: all
	if q.Cursor != "" {
		id, err := decodeResourceCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		before = id
	}

	// Which resources the filters select.
	var selected map[string]bool
	if q.User != "" || q.Group != "" || q.ErrorsOnly {
		selected = map[string]bool{}
		err := scanRecords(ctx, st, connection, RecordQuery{
			Status: StatusPending, ResourceType: q.ResourceType, User: q.User, Group: q.Group, ErrorsOnly: q.ErrorsOnly,
		}, func(rec *Record) { selected[resourceIdentity(rec)] = true })
		if err != nil {
			return nil, "", err
		}
		if len(selected) == 0 {
			return nil, "", nil
		}
	}

	// Newest first, a resource is met first at its newest record.
	seen := map[string]bool{}
	byKey := map[string]*PendingResource{}
	var page []*PendingResource
	more := false
	err := scanRecords(ctx, st, connection, RecordQuery{Status: StatusPending, ResourceType: q.ResourceType}, func(rec *Record) {
		key := resourceIdentity(rec)
		if res := byKey[key]; res != nil {
			res.add(rec)
			return
		}
		if seen[key] {
			return
		}
		seen[key] = true
		switch {
		case before > 0 && rec.ID >= before: // on an earlier page
		case selected != nil && !selected[key]:
		case len(page) == limit:
			more = true
		default:
			res := &PendingResource{newest: rec.ID}
			res.add(rec)
			byKey[key] = res
			page = append(page, res)
		}
	})
	if err != nil {
		return nil, "", err
	}
	return finishResources(page, more)
}
