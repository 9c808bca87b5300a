package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs every load scenario at tiny scale against a real Caddy (built from
// ../cmd/caddy, or $SCIM_SHADOW_CADDY) and checks that the harness produced sane results:
// counts that match and no errors. It asserts no timing. PostgreSQL runs when
// SCIM_SHADOW_TEST_POSTGRES holds a DSN.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := os.Getenv("SCIM_SHADOW_CADDY")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "caddy")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/caddy")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building caddy: %v\n%s", err, out)
		}
	}
	be := httptest.NewServer(&Backend{})
	defer be.Close()
	cfg := Smoke()
	cfg.CaddyBin = bin
	cfg.WorkDir = t.TempDir()
	cfg.BackendAddr = strings.TrimPrefix(be.URL, "http://")
	cfg.PostgresDSN = os.Getenv("SCIM_SHADOW_TEST_POSTGRES")
	if cfg.PostgresDSN == "" {
		cfg.ReviewStores = []string{"sqlite"}
	}
	var log bytes.Buffer
	rep := &Report{Started: time.Now(), Cfg: cfg}
	r := &Runner{Cfg: cfg, Log: &log, Report: rep}
	if err := r.All(ctx); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	rep.Finished = time.Now()
	t.Logf("harness log:\n%s", log.String())
	for _, p := range rep.Problems {
		t.Errorf("problem: %s", p)
	}
	if cfg.PostgresDSN != "" && len(rep.Skipped) > 0 {
		t.Errorf("skipped with a DSN: %v", rep.Skipped)
	}

	if l := rep.Live; l == nil || len(l.Rounds) != cfg.LiveRounds {
		t.Fatalf("live: %+v", l)
	}
	for i, round := range rep.Live.Rounds {
		for name, s := range map[string]RunStats{"a": round.A, "b": round.B} {
			if s.Requests == 0 || s.Errors != 0 || s.P99 < s.P50 {
				t.Errorf("live round %d %s: %+v", i, name, s)
			}
		}
	}
	if rep.Live.Ratio <= 0 {
		t.Errorf("live ratio %v", rep.Live.Ratio)
	}
	if rep.Live.CPUPerRequestA <= 0 || rep.Live.CPUPerRequestB <= 0 {
		t.Errorf("live CPU per request: a %s, b %s", rep.Live.CPUPerRequestA, rep.Live.CPUPerRequestB)
	}
	if f := rep.Live.FixedRate; f == nil || len(f.Rounds) != cfg.LiveRateRounds || f.Rate <= 0 {
		t.Fatalf("live fixed rate: %+v", f)
	}
	for i, round := range rep.Live.FixedRate.Rounds {
		for name, s := range map[string]RunStats{"a": round.A, "b": round.B} {
			if s.Requests == 0 || s.Errors != 0 || s.P99 < s.P50 || s.PeakInFlight == 0 {
				t.Errorf("live fixed-rate round %d %s: %+v", i, name, s)
			}
		}
	}

	stores := 1
	if cfg.PostgresDSN != "" {
		stores = 2
	}
	if want := stores * len(cfg.IngestConcurrency); len(rep.Ingest) != want {
		t.Errorf("ingest: %d results, want %d", len(rep.Ingest), want)
	}
	var ingestCPU time.Duration
	for _, in := range rep.Ingest {
		if in.Stats.Requests == 0 || in.Stats.Errors != 0 || in.Recorded != in.Stats.Requests {
			t.Errorf("ingest %s c=%d: %+v", in.Store, in.Concurrency, in)
		}
		ingestCPU += in.CaddyCPUPerWrite
	}
	if ingestCPU <= 0 { // a single short run may fall within one 10 ms tick; all of them cannot
		t.Errorf("ingest: no run measured Caddy's CPU per write")
	}

	if len(rep.Sync) != 1 {
		t.Fatalf("sync: %+v", rep.Sync)
	}
	s := rep.Sync[0]
	if s.Recorded != int64(cfg.SyncUsers+cfg.SyncGroups) || s.UserStats.Errors+s.GroupStats.Errors != 0 || s.PeakRSS == 0 || s.StoreBytes == 0 || s.CaddyCPUPerUser <= 0 {
		t.Errorf("sync: %+v", s)
	}

	if len(rep.Review) != len(cfg.ReviewStores) {
		t.Fatalf("review: %d results, want %d", len(rep.Review), len(cfg.ReviewStores))
	}
	for _, rv := range rep.Review {
		if len(rv.Queries) != len(reviewQueries(shapeOf(cfg.ReviewRecords))) || rv.StoreBytes == 0 {
			t.Errorf("review %s: %+v", rv.Store, rv)
		}
		for _, q := range rv.Queries {
			if q.Stats.Requests != int64(cfg.ReviewSamples) {
				t.Errorf("review %s %s: %d samples", rv.Store, q.Name, q.Stats.Requests)
			}
		}
	}

	var md bytes.Buffer
	rep.Markdown(&md, "## Findings\n")
	for _, want := range []string{"## Targets", "## 1. Live overhead", "### Fixed rate (open loop)", "## 2. Preview ingest", "## 3. Initial sync", "## 4. Review at scale", "## How to rerun", "## Findings"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", want, md.String())
		}
	}
}

// TestParseBench checks the reading of go test -bench output (scenario 5, which the smoke
// test does not run: it would compile two test binaries).
func TestParseBench(t *testing.T) {
	out := "goos: linux\npkg: github.com/scim-shadow/caddy-scim-shadow/rules\n" +
		"BenchmarkRewriteResource-2   \t  2000\t     18000 ns/op\t  41.30 MB/s\t    6208 B/op\t       7 allocs/op\n" +
		"BenchmarkLiveMixRules/filter-2 \t 2000\t 290955 ns/op\t 138961 B/op\t 3098 allocs/op\nPASS\n"
	got := parseBench(out)
	want := []MicroResult{
		{Pkg: "rules", Name: "BenchmarkRewriteResource", N: 2000, NsOp: 18000, MBs: 41.3, BytesOp: 6208, AllocsOp: 7},
		{Pkg: "rules", Name: "BenchmarkLiveMixRules/filter", N: 2000, NsOp: 290955, BytesOp: 138961, AllocsOp: 3098},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseBench:\n got %+v\nwant %+v", got, want)
	}
}
