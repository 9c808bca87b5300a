package shadow_test

import (
	"net/url"
	"time"

	"fmt"
	"github.com/tidwall/gjson"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// holdFixture is a live engine with holds in front of the example backend.
type holdFixture struct {
	t     *testing.T
	be    *ptBackend
	store *faultStore
	e     *shadow.Engine
	log   *decisionLog
}

func newHoldFixture(t *testing.T, holds *shadow.Holds) *holdFixture {
	t.Helper()
	f := &holdFixture{t: t, be: newPTBackend(t), store: &faultStore{Store: openStore(t)}, log: &decisionLog{}}
	f.e = &shadow.Engine{Connection: func(*http.Request) string { return testConn }, Store: f.store, Holds: holds, Observer: f.log}
	return f
}

func (f *holdFixture) serve(method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(method, ptBase+path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", shadow.ContentType)
	}
	w := httptest.NewRecorder()
	f.e.ServeHTTP(w, r, f.be.h)
	return w
}

func (f *holdFixture) user(name string) string {
	return f.be.create("/Users", fmt.Sprintf(`{"schemas":[%q],"userName":%q,"active":true}`, userSchema, name))
}

const deactivateBody = `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"active","value":false}]}`

func TestHoldDeprovisionGuardPercent(t *testing.T) {
	f := newHoldFixture(t, &shadow.Holds{Guards: shadow.Guards{Deprovision: &shadow.DeprovisionGuard{Percent: 20}}})
	var ids []string
	for i := range 10 {
		ids = append(ids, f.user(fmt.Sprintf("u%d@example.com", i)))
	}
	var codes []int
	for _, id := range ids[:4] {
		codes = append(codes, f.serve("PATCH", "/Users/"+id, deactivateBody).Code)
	}
	// 20% of 10 users is 2: the third deactivation trips.
	if fmt.Sprint(codes) != "[200 200 429 429]" {
		t.Fatalf("codes %v", codes)
	}
	d := f.log.last(t)
	if d.Outcome != shadow.OutcomeHeld || d.Guard != shadow.GuardDeprovision || !strings.Contains(d.HoldReason, "of 10 users") {
		t.Fatalf("decision %+v", d)
	}
	// Deactivating an inactive user deprovisions nobody: it flows.
	if w := f.serve("PATCH", "/Users/"+ids[0], deactivateBody); w.Code != http.StatusOK {
		t.Errorf("repeated deactivation: %d", w.Code)
	}
}

func TestHoldFailsClosedOnStoreError(t *testing.T) {
	f := newHoldFixture(t, &shadow.Holds{Rules: []shadow.HoldRule{{ResourceType: "User", Ops: []shadow.HoldOp{shadow.HoldDelete}}}})
	id := f.user("ada@example.com")
	f.store.failSave.Store(true)
	w := f.serve("DELETE", "/Users/"+id, "")
	assertSCIMError(t, w, http.StatusTooManyRequests)
	if status, _ := f.be.do("GET", "/Users/"+id, ""); status != http.StatusOK {
		t.Fatal("a DELETE that had to be held reached the backend while the store failed")
	}
	if d := f.log.last(t); d.Outcome != shadow.OutcomeError {
		t.Errorf("outcome %s", d.Outcome)
	}
	// Writes that are no candidates never touch the store.
	saves := f.store.saves.Load()
	if w := f.serve("PATCH", "/Users/"+id, `{"schemas":["`+patchSchema+`"],"Operations":[{"op":"replace","path":"displayName","value":"A"}]}`); w.Code != http.StatusOK {
		t.Fatalf("unrelated PATCH: %d %s", w.Code, w.Body)
	}
	if f.store.saves.Load() != saves {
		t.Error("an unrelated live write was saved")
	}
}

func TestHoldApprovedForwardFailsAndIsApprovedAgain(t *testing.T) {
	f := newHoldFixture(t, &shadow.Holds{Rules: []shadow.HoldRule{{Ops: []shadow.HoldOp{shadow.HoldCreate}}}})
	f.user("taken@example.com")
	create := fmt.Sprintf(`{"schemas":[%q],"userName":"taken@example.com"}`, userSchema)
	w := f.serve("POST", "/Users", create)
	assertSCIMError(t, w, http.StatusTooManyRequests)
	id := f.log.last(t).RecordID
	ctx := t.Context()
	if ids, err := f.store.DecideRecords(ctx, testConn, []int64{id}, shadow.StatusApproved); err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	// The approved retry reaches the backend, which refuses it: the IdP sees the backend's
	// answer and the record keeps it.
	if w := f.serve("POST", "/Users", create); w.Code != http.StatusConflict {
		t.Fatalf("approved retry: %d %s", w.Code, w.Body)
	}
	rec, err := f.store.Record(ctx, testConn, id)
	if err != nil || rec.Status != shadow.StatusFailed || rec.BackendStatus != http.StatusConflict || rec.BackendError == "" {
		t.Fatalf("record after a failed forward: %+v %v", rec, err)
	}
	// A failed record waits again: retries get the retryable rejection until approved.
	w = f.serve("POST", "/Users", create)
	if body := assertSCIMError(t, w, http.StatusTooManyRequests); !strings.Contains(body.Detail, "refused") {
		t.Errorf("retry of a failed record: %s", body.Detail)
	}
	if ids, _ := f.store.DecideRecords(ctx, testConn, []int64{id}, shadow.StatusApproved); len(ids) != 1 {
		t.Fatal("a failed record could not be approved again")
	}
	// Ignored after all: the final answer.
	if ids, _ := f.store.DecideRecords(ctx, testConn, []int64{id}, shadow.StatusIgnored); len(ids) != 1 {
		t.Fatal("an approved record could not be ignored")
	}
	assertSCIMError(t, f.serve("POST", "/Users", create), http.StatusForbidden)
}

func TestHoldDeprovisionGuardUnknownUserCount(t *testing.T) {
	f := newHoldFixture(t, &shadow.Holds{Guards: shadow.Guards{Deprovision: &shadow.DeprovisionGuard{Percent: 50}}})
	id := f.user("ada@example.com")
	// The backend answers every list with 500: the percentage cannot be judged.
	inner := f.be.h
	f.be.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/Users") {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		inner.ServeHTTP(w, r)
	})
	w := f.serve("PATCH", "/Users/"+id, deactivateBody)
	if body := assertSCIMError(t, w, http.StatusTooManyRequests); !strings.Contains(body.Detail, "user count could not be read") {
		t.Fatalf("detail %q", body.Detail)
	}
}

// TestHoldForwardingClaimTakenAgainAfterACrash: an approved write whose forwarder died
// after claiming it (status forwarding, never finished) is not stuck: while the claim is
// fresh a retry hears "being forwarded", once it is older than ForwardClaimTimeout the
// next identical retry claims and forwards it.
func TestHoldForwardingClaimTakenAgainAfterACrash(t *testing.T) {
	f := newHoldFixture(t, &shadow.Holds{Rules: []shadow.HoldRule{{Ops: []shadow.HoldOp{shadow.HoldCreate}}}})
	create := fmt.Sprintf(`{"schemas":[%q],"userName":"crash@example.com"}`, userSchema)
	assertSCIMError(t, f.serve("POST", "/Users", create), http.StatusTooManyRequests)
	id := f.log.last(t).RecordID
	ctx := t.Context()
	if ids, err := f.store.DecideRecords(ctx, testConn, []int64{id}, shadow.StatusApproved); err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	// The forwarder that claims it crashes before it forwards or finishes.
	if ok, err := f.store.ClaimApproved(ctx, testConn, id, time.Now()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	w := f.serve("POST", "/Users", create)
	if body := assertSCIMError(t, w, http.StatusTooManyRequests); !strings.Contains(body.Detail, "being forwarded") {
		t.Errorf("retry during a fresh claim: %s", body.Detail)
	}
	if n := backendUsers(t, f.be, "crash@example.com"); n != 0 {
		t.Fatalf("forwarded during a fresh claim: %d users", n)
	}
	// Later than the claim timeout: the next retry forwards it.
	f.e.Now = func() time.Time { return time.Now().Add(shadow.ForwardClaimTimeout + time.Minute) }
	if w := f.serve("POST", "/Users", create); w.Code != http.StatusCreated {
		t.Fatalf("retry after the claim went stale: %d %s", w.Code, w.Body)
	}
	rec, err := f.store.Record(ctx, testConn, id)
	if err != nil || rec.Status != shadow.StatusForwarded || rec.BackendStatus != http.StatusCreated {
		t.Fatalf("record after the second claim: %+v %v", rec, err)
	}
	if n := backendUsers(t, f.be, "crash@example.com"); n != 1 {
		t.Errorf("%d users in the backend, want 1", n)
	}
}

// backendUsers counts the backend's users named userName.
func backendUsers(t *testing.T, be *ptBackend, userName string) int64 {
	t.Helper()
	status, body := be.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+userName+`"`), "")
	if status != http.StatusOK {
		t.Fatalf("backend lookup of %s: %d %s", userName, status, body)
	}
	return gjson.GetBytes(body, "totalResults").Int()
}
