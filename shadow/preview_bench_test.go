package shadow_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/bench"
	"github.com/scim-shadow/caddy-scim-shadow/rules"
	. "github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// BenchmarkEnginePreview is the whole per-request work of a preview Engine on a real
// SQLite store with the five rules and normalisation of the load harness: classification,
// rewrite, the live-state fetch (from the harness's canned backend, in process), the
// projection, diff and predicted errors, redaction and the group-committed save. It runs
// the ingest mix of scenario 2 (5 creates, 4 PATCHes, 1 PUT in 10) on parallel
// goroutines, so that its CPU profile is the module's share of make bench's ingest
// without the HTTP server, the proxy and the load client.
func BenchmarkEnginePreview(b *testing.B) { benchmarkEnginePreview(b, 10) }

// BenchmarkEnginePreviewCreates is BenchmarkEnginePreview with creates only: the user part
// of scenario 3's initial sync.
func BenchmarkEnginePreviewCreates(b *testing.B) { benchmarkEnginePreview(b, 5) }

// benchmarkEnginePreview runs request n of the ingest mix as request n % cycle of it (5:
// creates only).
func benchmarkEnginePreview(b *testing.B, cycle int) {
	set, err := rules.Compile(bench.Rules())
	if err != nil {
		b.Fatal(err)
	}
	st, err := OpenSQLite(b.Context(), filepath.Join(b.TempDir(), "shadow.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	norm, err := rules.ParseNormalization([]string{"all"})
	if err != nil {
		b.Fatal(err)
	}
	e := &Engine{Rules: set, DefaultMode: ModePreview, Store: st, Normalize: norm}
	backend := &bench.Backend{}
	var seq, recorded atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8) // × GOMAXPROCS goroutines, as the harness's concurrency 64 on 8 cores
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			n := int(seq.Add(1))
			var r *http.Request
			switch n % cycle {
			case 0, 1, 2, 3, 4:
				r = httptest.NewRequest(http.MethodPost, "/scim/v2/Users", bytes.NewReader([]byte(bench.UserBody(n))))
			case 5, 6, 7, 8:
				r = httptest.NewRequest(http.MethodPatch, fmt.Sprintf("/scim/v2/Users/u%d", n), bytes.NewReader([]byte(bench.PatchBody(n))))
			default:
				r = httptest.NewRequest(http.MethodPut, fmt.Sprintf("/scim/v2/Users/u%d", n), bytes.NewReader([]byte(bench.UserBody(n))))
			}
			r.Header.Set("Content-Type", "application/scim+json")
			clear(w.h)
			e.ServeHTTP(w, r, backend)
			if w.h.Get("X-Scim-Shadow-Record") != "" {
				recorded.Add(1)
			}
		}
	})
	if got := recorded.Load(); got != int64(b.N) {
		b.Fatalf("%d of %d writes recorded", got, b.N)
	}
	if w := backend.Writes.Load(); w != 0 {
		b.Fatalf("the backend received %d writes in preview", w)
	}
}
