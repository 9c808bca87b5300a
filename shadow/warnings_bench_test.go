package shadow_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// countingStore counts the store calls of the warning bookkeeping (each is a
// transaction).
type countingStore struct {
	shadow.Store
	calls atomic.Int64
}

func (s *countingStore) NoteWarnings(ctx context.Context, n shadow.WarningNote) (shadow.NoteResult, error) {
	s.calls.Add(1)
	return s.Store.NoteWarnings(ctx, n)
}

func (s *countingStore) NoteFallbacks(ctx context.Context, d []shadow.FallbackDelta) error {
	s.calls.Add(1)
	return s.Store.NoteFallbacks(ctx, d)
}

// BenchmarkWarningsLiveFallbacks: live writes that use a fallback (no warn_if_missing
// target), as in the bench's live mix, through the recorder to a SQLite store.
// store_calls/op is the number of store transactions per write.
func BenchmarkWarningsLiveFallbacks(b *testing.B) {
	set, err := rules.Compile(map[string]rules.ResourceRules{"User": {Rules: []rules.Rule{
		{Target: "favoriteColor", From: []string{"favorite_color"}},
		{Target: "nickName", From: []string{"preferences.nickname"}},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	st := &countingStore{Store: openStore(b)}
	rec := shadow.NewWarningRecorder(0)
	rec.Start(st)
	defer rec.Close(5 * time.Second)
	eng := &shadow.Engine{Rules: set, Connection: func(*http.Request) string { return testConn },
		DefaultMode: shadow.ModeLive, Store: st, Warnings: rec}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := user("u"+strconv.Itoa(i)+"@example.com", `"favorite_color":"blue","preferences":{"nickname":"x"}`)
		eng.ServeHTTP(&statusRecorder{header: http.Header{}}, newRequest("POST", "/scim/v2/Users", body), next)
		if i%256 == 255 {
			_ = rec.Flush(context.Background()) // keep the queue from dropping
		}
	}
	if err := rec.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(st.calls.Load())/float64(b.N), "store_calls/op")
	if d := rec.Dropped(); d > 0 {
		b.Fatalf("dropped %d", d)
	}
}

// TestWarningsFallbacksBatched: fallback uses are summed in memory and reach the store
// on Flush and on Close.
func TestWarningsFallbacksBatched(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close bool
	}{{"flush", false}, {"close", true}} {
		t.Run(tc.name, func(t *testing.T) {
			base := openStore(t)
			st := base
			f := newWarningsFixture(t, shadow.ModeLive, st)
			for i := range 7 {
				// nick → nickName is a fallback without a warning; the warn targets are there.
				if s := f.send("POST", "/scim/v2/Users", user("u"+strconv.Itoa(i%3)+"@example.com",
					`"favoriteColor":"b",`+dept+`,"nick":"n"`)); s != 200 && s != 201 {
					t.Fatalf("status %d", s)
				}
			}
			if tc.close {
				if !f.rec.Close(5 * time.Second) {
					t.Fatal("Close timed out")
				}
			} else {
				f.flush()
			}
			sum, err := base.WarningSummary(context.Background(), testConn)
			if err != nil {
				t.Fatal(err)
			}
			var got int64
			for _, a := range sum {
				for _, fb := range a.Fallbacks {
					if a.Attribute == "nickName" && fb.Source == "nick" {
						got += fb.Count
					}
				}
			}
			if got != 7 {
				t.Fatalf("nickName from nick counted %d times, want 7: %+v", got, sum)
			}
			if len(f.errs) > 0 {
				t.Fatal(f.errs)
			}
		})
	}
}
