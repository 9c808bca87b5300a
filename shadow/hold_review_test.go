package shadow

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReviewDecisions(t *testing.T) {
	st, err := OpenSQLite(t.Context(), t.TempDir()+"/r.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := mustSave(t, st, heldRecord("acme", 1, StatusHeld))
	b := mustSave(t, st, heldRecord("acme", 2, StatusHeld))
	p := mustSave(t, st, testRecord("acme", 3))
	g := mustSave(t, st, heldRecord("globex", 4, StatusHeld))
	var decided []int64
	api := &ReviewAPI{Store: st, OnDecide: func(_ string, ids []int64, _ RecordStatus) { decided = append(decided, ids...) }}
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	id := func(n int64) string { return strings.TrimSpace(string(mustJSON(n))) }
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/connections/acme/records/" + id(g.ID) + "/approve", "", http.StatusNotFound}, // another connection's record
		{"POST", "/connections/acme/records/999999/approve", "", http.StatusNotFound},
		{"POST", "/connections/acme/records/-1/ignore", "", http.StatusBadRequest},
		{"POST", "/connections/acme/records/" + id(p.ID) + "/approve", "", http.StatusConflict}, // pending: not held
		{"POST", "/connections/acme/records/approve", "", http.StatusBadRequest},
		{"POST", "/connections/acme/records/approve", "{}", http.StatusBadRequest},
		{"POST", "/connections/acme/records/approve", `{"everything":true}`, http.StatusBadRequest},
		{"POST", "/connections/acme/records/approve", `{"ids":"1"}`, http.StatusBadRequest},
		{"GET", "/connections/acme/records/approve", "", http.StatusBadRequest}, // GET …/records/{id}: not an id
	} {
		if status, body := call(tc.method, tc.path, tc.body); status != tc.status || body["error"] == nil {
			t.Errorf("%s %s %s: %d %v, want %d with an error", tc.method, tc.path, tc.body, status, body, tc.status)
		}
	}
	if len(decided) != 0 {
		t.Fatalf("decided %v on bad requests", decided)
	}
	status, body := call("POST", "/connections/acme/records/"+id(a.ID)+"/approve", "")
	if status != http.StatusOK || len(body["approved"].([]any)) != 1 {
		t.Fatalf("approve one: %d %v", status, body)
	}
	status, body = call("POST", "/connections/acme/records/ignore", `{"all":true}`)
	if status != http.StatusOK || len(body["ignored"].([]any)) != 2 { // a (approved) and b (held)
		t.Fatalf("ignore all: %d %v", status, body)
	}
	if len(decided) != 3 {
		t.Errorf("OnDecide saw %v", decided)
	}
	for _, rec := range []Record{a, b} {
		if got, _ := st.Record(t.Context(), "acme", rec.ID); got.Status != StatusIgnored {
			t.Errorf("record %d: %s", rec.ID, got.Status)
		}
	}
	if got, _ := st.Record(t.Context(), "globex", g.ID); got.Status != StatusHeld {
		t.Errorf("globex's record was decided: %s", got.Status)
	}
	_, list := call("GET", "/connections/acme/records?status=ignored", "")
	if recs, _ := list["records"].([]any); len(recs) != 2 {
		t.Errorf("?status=ignored: %v", list)
	}
}
