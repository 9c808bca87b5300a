package shadow

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// heldRecord is testRecord n of conn with status st and a hold reason.
func heldRecord(conn string, n int, st RecordStatus) *Record {
	rec := testRecord(conn, n)
	rec.Status, rec.HoldReason = st, "hold create: test"
	return rec
}

func suiteHolds(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	if _, err := s.RetryHold(ctx, "acme", "acme-hash-1", suiteT0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RetryHold with no hold: %v, want ErrNotFound", err)
	}
	// A pending record of the same hash is no hold.
	mustSave(t, s, testRecord("acme", 1))
	if _, err := s.RetryHold(ctx, "acme", "acme-hash-1", suiteT0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RetryHold finds a pending record: %v", err)
	}
	held := mustSave(t, s, heldRecord("acme", 1, StatusHeld))
	if held.Status != StatusHeld || held.HoldReason != "hold create: test" || held.Attempts != 1 {
		t.Fatalf("saved held record %+v", held)
	}
	got, err := s.RetryHold(ctx, "acme", "acme-hash-1", suiteT0.Add(time.Hour))
	if err != nil || got.ID != held.ID || got.Attempts != 2 || !got.LastSeenAt.Equal(us(suiteT0.Add(time.Hour))) {
		t.Fatalf("RetryHold: %+v, %v", got, err)
	}
	// Another connection does not see it.
	if _, err := s.RetryHold(ctx, "globex", "acme-hash-1", suiteT0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RetryHold across connections: %v", err)
	}
	// A second open hold of the same request is refused by the store.
	if _, err := s.SaveRecord(ctx, heldRecord("acme", 1, StatusHeld)); err == nil {
		t.Error("a second open hold with the same hash was saved")
	}
	// Claim only an approved record, once; finish it with the backend's answer.
	if ok, err := s.ClaimApproved(ctx, "acme", held.ID, claimAt); ok || err != nil {
		t.Fatalf("claimed a held record: %v %v", ok, err)
	}
	if ids, err := s.DecideRecords(ctx, "acme", []int64{held.ID}, StatusApproved); err != nil || !slices.Equal(ids, []int64{held.ID}) {
		t.Fatalf("approve: %v %v", ids, err)
	}
	if ok, err := s.ClaimApproved(ctx, "globex", held.ID, claimAt); ok || err != nil {
		t.Fatalf("claimed across connections: %v %v", ok, err)
	}
	if ok, err := s.ClaimApproved(ctx, "acme", held.ID, claimAt); !ok || err != nil {
		t.Fatalf("claim approved: %v %v", ok, err)
	}
	if ok, _ := s.ClaimApproved(ctx, "acme", held.ID, claimAt); ok {
		t.Fatal("claimed twice")
	}
	// A claim more than ForwardClaimTimeout old (its forwarder crashed) is claimed again,
	// once; a younger one is not.
	if ok, _ := s.ClaimApproved(ctx, "acme", held.ID, claimAt.Add(ForwardClaimTimeout-time.Second)); ok {
		t.Fatal("a claim younger than ForwardClaimTimeout was claimed again")
	}
	later := claimAt.Add(ForwardClaimTimeout + time.Second)
	if ok, err := s.ClaimApproved(ctx, "acme", held.ID, later); !ok || err != nil {
		t.Fatalf("stale claim not claimed again: %v %v", ok, err)
	}
	if ok, _ := s.ClaimApproved(ctx, "acme", held.ID, later); ok {
		t.Fatal("the new claim was claimed again at once")
	}
	if err := s.FinishHold(ctx, "acme", held.ID, StatusFailed, 409, "uniqueness"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishHold(ctx, "acme", held.ID, StatusForwarded, 200, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("finishing a record that is not forwarding: %v", err)
	}
	if err := s.FinishHold(ctx, "acme", held.ID, StatusHeld, 200, ""); err == nil {
		t.Error("FinishHold accepted status held")
	}
	rec, err := s.Record(ctx, "acme", held.ID)
	if err != nil || rec.Status != StatusFailed || rec.BackendStatus != 409 || rec.BackendError != "uniqueness" {
		t.Fatalf("failed record %+v %v", rec, err)
	}
	// A failed record is still open: its retries find it, and it can be approved again.
	if got, err := s.RetryHold(ctx, "acme", "acme-hash-1", suiteT0); err != nil || got.ID != held.ID {
		t.Fatalf("RetryHold of a failed record: %+v %v", got, err)
	}
	if ids, _ := s.DecideRecords(ctx, "acme", []int64{held.ID}, StatusApproved); len(ids) != 1 {
		t.Fatal("a failed record could not be approved again")
	}
	s.ClaimApproved(ctx, "acme", held.ID, claimAt)
	if err := s.FinishHold(ctx, "acme", held.ID, StatusForwarded, 201, ""); err != nil {
		t.Fatal(err)
	}
	// Forwarded is closed: a new hold of the same request can open.
	if _, err := s.RetryHold(ctx, "acme", "acme-hash-1", suiteT0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RetryHold finds a forwarded record: %v", err)
	}
	again := mustSave(t, s, heldRecord("acme", 1, StatusHeld))
	if again.ID == held.ID {
		t.Fatal("new hold reused the forwarded record")
	}
	infos, err := s.Connections(ctx)
	if err != nil || len(infos) != 1 || infos[0].Held != 1 || infos[0].Pending != 1 {
		t.Fatalf("Connections: %+v %v", infos, err)
	}
}

func suiteHoldDecisions(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	a := mustSave(t, s, heldRecord("acme", 1, StatusHeld))
	b := mustSave(t, s, heldRecord("acme", 2, StatusHeld))
	p := mustSave(t, s, testRecord("acme", 3)) // pending: not decided
	other := mustSave(t, s, heldRecord("globex", 4, StatusHeld))

	ids, err := s.DecideRecords(ctx, "acme", []int64{a.ID, p.ID, other.ID, 999999}, StatusApproved)
	if err != nil || !slices.Equal(ids, []int64{a.ID}) {
		t.Fatalf("approve: %v %v", ids, err)
	}
	if _, err := s.DecideRecords(ctx, "acme", []int64{a.ID}, StatusForwarded); err == nil {
		t.Error("DecideRecords accepted status forwarded")
	}
	// Ignore takes held and approved records.
	ids, err = s.DecideRecords(ctx, "acme", []int64{a.ID, b.ID}, StatusIgnored)
	if err != nil || !slices.Equal(ids, []int64{a.ID, b.ID}) {
		t.Fatalf("ignore: %v %v", ids, err)
	}
	// An ignored record is found by its retries (to answer the final error), and cannot
	// be approved any more.
	if got, err := s.RetryHold(ctx, "acme", b.DedupeHash, suiteT0); err != nil || got.Status != StatusIgnored {
		t.Fatalf("RetryHold of an ignored record: %+v %v", got, err)
	}
	if ids, _ := s.DecideRecords(ctx, "acme", []int64{b.ID}, StatusApproved); len(ids) != 0 {
		t.Error("an ignored record was approved")
	}
	if rec, _ := s.Record(ctx, "globex", other.ID); rec.Status != StatusHeld {
		t.Errorf("other connection's record is %s", rec.Status)
	}
	if rec, _ := s.Record(ctx, "acme", p.ID); rec.Status != StatusPending {
		t.Errorf("pending record is %s", rec.Status)
	}
}

func suiteCountDeprovisions(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	add := func(conn string, n int, st RecordStatus, typ string, deprovision bool) {
		rec := testRecord(conn, n)
		rec.Status, rec.ResourceType, rec.Deprovision = st, typ, deprovision
		mustSave(t, s, rec)
	}
	add("acme", 1, StatusForwarded, "User", true)
	add("acme", 2, StatusForwarding, "User", true)
	add("acme", 3, StatusHeld, "User", true)       // held: not forwarded
	add("acme", 4, StatusForwarded, "User", false) // no deprovision
	add("acme", 5, StatusForwarded, "Group", true) // not a user
	add("acme", 6, StatusFailed, "User", true)     // the backend refused it
	add("globex", 7, StatusForwarded, "User", true)
	add("acme", 100, StatusForwarded, "User", true) // 100 s after suiteT0
	n, err := s.CountDeprovisions(ctx, "acme", suiteT0)
	if err != nil || n != 3 {
		t.Fatalf("CountDeprovisions since T0: %d %v, want 3", n, err)
	}
	n, err = s.CountDeprovisions(ctx, "acme", suiteT0.Add(50*time.Second))
	if err != nil || n != 1 {
		t.Fatalf("CountDeprovisions since T0+50s: %d %v, want 1", n, err)
	}
}

func suiteCredentials(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	hashA, hashB := TokenHash("scims_a"), TokenHash("scims_b")
	if _, err := s.CredentialConnection(ctx, hashA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if err := s.SetCredential(ctx, "acme", "not-a-hash", suiteT0); err == nil {
		t.Error("SetCredential accepted a value that is not a SHA-256")
	}
	if err := s.SetCredential(ctx, "acme", hashA, suiteT0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCredential(ctx, "globex", hashB, suiteT0); err != nil {
		t.Fatal(err)
	}
	if c, err := s.CredentialConnection(ctx, hashA); err != nil || c != "acme" {
		t.Fatalf("token A: %q %v", c, err)
	}
	// Rotation replaces the connection's token.
	hashA2 := TokenHash("scims_a2")
	if err := s.SetCredential(ctx, "acme", hashA2, suiteT0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CredentialConnection(ctx, hashA); !errors.Is(err, ErrNotFound) {
		t.Errorf("rotated-out token still valid: %v", err)
	}
	if c, _ := s.CredentialConnection(ctx, hashA2); c != "acme" {
		t.Errorf("rotated token: %q", c)
	}
	// Deleting one connection's token leaves the other's.
	if err := s.DeleteCredential(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCredential(ctx, "acme"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if c, _ := s.CredentialConnection(ctx, hashB); c != "globex" {
		t.Errorf("globex token after deleting acme's: %q", c)
	}
}

func suiteStages(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	if all, err := s.Stages(ctx); err != nil || len(all) != 0 {
		t.Fatalf("no stages: %v %v", all, err)
	}
	st := &Stage{Keys: []string{"ada@example.com"}, Groups: []string{"Pilots"}, Percent: 12.5}
	if err := s.SetStage(ctx, "acme", st); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStage(ctx, "globex", &Stage{Percent: 1}); err != nil {
		t.Fatal(err)
	}
	st.Percent = 25 // widen
	if err := s.SetStage(ctx, "acme", st); err != nil {
		t.Fatal(err)
	}
	all, err := s.Stages(ctx)
	if err != nil || len(all) != 2 || all["acme"].Percent != 25 || all["acme"].Groups[0] != "Pilots" || all["globex"].Percent != 1 {
		t.Fatalf("stages: %+v %v", all, err)
	}
	if err := s.SetStage(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.Stages(ctx); len(all) != 1 {
		t.Fatalf("after removing acme's: %+v", all)
	}

	// MarkPendingForwarded touches the pending records of that request only.
	p := mustSave(t, s, testRecord("acme", 1))
	other := mustSave(t, s, testRecord("acme", 2))
	if n, err := s.MarkPendingForwarded(ctx, "acme", p.DedupeHash, StatusForwarded, 200, ""); err != nil || n != 1 {
		t.Fatalf("mark: %d %v", n, err)
	}
	if n, _ := s.MarkPendingForwarded(ctx, "globex", other.DedupeHash, StatusForwarded, 200, ""); n != 0 {
		t.Error("marked another connection's record")
	}
	if _, err := s.MarkPendingForwarded(ctx, "acme", p.DedupeHash, StatusHeld, 200, ""); err == nil {
		t.Error("MarkPendingForwarded accepted status held")
	}
	got, _ := s.Record(ctx, "acme", p.ID)
	still, _ := s.Record(ctx, "acme", other.ID)
	if got.Status != StatusForwarded || got.BackendStatus != 200 || still.Status != StatusPending {
		t.Errorf("after marking: %s/%d and %s", got.Status, got.BackendStatus, still.Status)
	}
}

// claimAt is when the store tests claim approved records.
var claimAt = suiteT0
