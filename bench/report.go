package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// RunStats summarises one load run.
type RunStats struct {
	Requests, Errors int64
	RPS              float64
	P50, P95, P99    time.Duration
	Unsent           int64 `json:",omitempty"` // fixed rate: scheduled but not sent in time
	PeakInFlight     int64 `json:",omitempty"` // fixed rate: the most requests in flight at once
}

func statsOf(r Result) RunStats {
	return RunStats{Requests: r.Requests, Errors: r.Errors, RPS: r.RPS(), P50: r.Pct(0.50), P95: r.Pct(0.95), P99: r.Pct(0.99),
		Unsent: r.Unsent, PeakInFlight: r.PeakInFlight}
}

func sortDur(d []time.Duration) []time.Duration { slices.Sort(d); return d }

func sumDur(d []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return max(t, 1)
}

// LiveRound is one interleaved pair of scenario 1.
type LiveRound struct{ A, B RunStats }

// LiveResult is scenario 1: medians over the rounds of per-round ratios and differences.
type LiveResult struct {
	Concurrency        int
	Duration           time.Duration
	Normalize          string
	Rounds             []LiveRound // closed loop at Concurrency: saturation
	Ratio              float64     // median of b/a throughput
	RatioMin, RatioMax float64
	AddedP50, AddedP99 time.Duration // medians of b−a
	A, B               RunStats      // medians of each side
	// CPUPerRequestA and B are each Caddy's CPU time (user and system, from /proc) over all
	// the closed-loop rounds divided by the requests it answered in them; 0: not measured.
	CPUPerRequestA, CPUPerRequestB time.Duration  `json:",omitempty"`
	FixedRate                      *LiveFixedRate `json:",omitempty"` // nil: not run
}

// LiveFixedRate is the open-loop part of scenario 1: both Caddies loaded alternately at
// one fixed rate below saturation, each request's latency counted from its scheduled
// send time (see FixedRate).
type LiveFixedRate struct {
	Rate               float64 // scheduled requests per second
	RateFrom           string  // how Rate was chosen
	Duration           time.Duration
	Workers            int           // the most requests in flight
	Rounds             []LiveRound   // RunStats.RPS is the achieved rate
	AddedP50, AddedP99 time.Duration // medians of b−a
	A, B               RunStats      // medians of each side
	// Saturated lists the runs whose achieved rate fell short of Rate by more than
	// RateShortfall (or that left requests unsent): that side queued.
	Saturated []string
}

// RateShortfall is how far below the fixed rate a run may fall before it counts as
// saturated.
const RateShortfall = 0.02

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// roundMedians are the medians over rounds of each side's throughput, p50 and p99, and
// of the per-round differences b − a of p50 and p99.
func roundMedians(rounds []LiveRound) (a, b RunStats, addedP50, addedP99 time.Duration) {
	var aRPS, bRPS []float64
	var d50, d99, a50, a99, b50, b99 []time.Duration
	for _, r := range rounds {
		aRPS, bRPS = append(aRPS, r.A.RPS), append(bRPS, r.B.RPS)
		d50, d99 = append(d50, r.B.P50-r.A.P50), append(d99, r.B.P99-r.A.P99)
		a50, a99, b50, b99 = append(a50, r.A.P50), append(a99, r.A.P99), append(b50, r.B.P50), append(b99, r.B.P99)
	}
	a = RunStats{RPS: median(aRPS), P50: median(a50), P99: median(a99)}
	b = RunStats{RPS: median(bRPS), P50: median(b50), P99: median(b99)}
	return a, b, median(d50), median(d99)
}

func (l *LiveResult) summarize() {
	var ratio []float64
	for _, r := range l.Rounds {
		ratio = append(ratio, r.B.RPS/r.A.RPS)
	}
	l.Ratio, l.RatioMin, l.RatioMax = median(ratio), slices.Min(ratio), slices.Max(ratio)
	l.A, l.B, l.AddedP50, l.AddedP99 = roundMedians(l.Rounds)
}

// saturated says whether a run fell short of the fixed rate: the side could not keep up.
func (f *LiveFixedRate) saturated(s RunStats) bool {
	return s.RPS < f.Rate*(1-RateShortfall) || s.Unsent > 0
}

// keptRate are the rounds in which neither side was saturated.
func (f *LiveFixedRate) keptRate() []LiveRound {
	var kept []LiveRound
	for _, r := range f.Rounds {
		if !f.saturated(r.A) && !f.saturated(r.B) {
			kept = append(kept, r)
		}
	}
	return kept
}

func (f *LiveFixedRate) summarize() {
	f.A, f.B, f.AddedP50, f.AddedP99 = roundMedians(f.Rounds)
	f.Saturated = nil
	for i, r := range f.Rounds {
		for _, side := range []struct {
			name string
			s    RunStats
		}{{"(a) bare", r.A}, {"(b) scim_shadow", r.B}} {
			if f.saturated(side.s) {
				f.Saturated = append(f.Saturated, fmt.Sprintf("round %d %s: %.0f req/s achieved of %.0f scheduled (%.1f%% short), %d requests not sent",
					i+1, side.name, side.s.RPS, f.Rate, 100*(1-side.s.RPS/f.Rate), side.s.Unsent))
			}
		}
	}
}

// IngestResult is one run of scenario 2.
type IngestResult struct {
	Store       string
	Concurrency int
	Stats       RunStats // RPS: recorded writes per second
	Recorded    int64    // growth of the pending count
	// CaddyCPUPerWrite is Caddy's CPU time (user and system, from /proc) during the load
	// divided by the writes it answered; PostgreSQL's own CPU is not in it. 0: not measured.
	CaddyCPUPerWrite time.Duration `json:",omitempty"`
}

// SyncResult is scenario 3.
type SyncResult struct {
	Store                    string
	Users, Groups, GroupSize int
	Concurrency              int
	Wall, UsersWall          time.Duration
	UserStats, GroupStats    RunStats
	PeakRSS, StoreBytes      int64
	Recorded                 int64
	UsersDone                int  // users created before SyncLimit
	Projected                bool // Wall and UsersWall are projected from UsersDone
	// CaddyCPUPerUser is Caddy's CPU time during the user creates divided by the users
	// done; 0: not measured.
	CaddyCPUPerUser time.Duration `json:",omitempty"`
}

// ReviewResult is scenario 4 on one store.
type ReviewResult struct {
	Store      string
	Records    int
	SeedTime   time.Duration
	StoreBytes int64
	Queries    []ReviewQueryResult
}

// ReviewQueryResult is one endpoint of scenario 4.
type ReviewQueryResult struct {
	Name, Kind string
	Stats      RunStats
	Censored   bool // a request hit the timeout: the numbers are lower bounds
}

// MicroResult is one line of go test -bench.
type MicroResult struct {
	Pkg, Name         string
	N                 int64
	NsOp, MBs         float64
	BytesOp, AllocsOp int64
}

// Report is everything a run measured.
type Report struct {
	Started, Finished time.Time
	Machine           []string
	LoadBefore        string
	LoadAfter         string
	Cfg               Config
	Live              *LiveResult
	Ingest            []IngestResult
	Sync              []SyncResult
	Review            []ReviewResult
	Micro             []MicroResult
	Problems          []string // errors and counts that do not match: the run fails
	Skipped           []string // scenarios or stores not run
	Limits            []string // measurements the harness's bounds cut short
}

// Describe fills the machine description.
func (rep *Report) Describe(ctx context.Context, c Config) {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:")), "%d", &kb); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	rep.Machine = append(rep.Machine,
		fmt.Sprintf("CPU: %s, %d logical CPUs (GOMAXPROCS of the load client %d)", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		"memory: "+mem,
		fmt.Sprintf("OS: %s %s", runtime.GOOS, strings.TrimSpace(string(kernel))),
		"Go: "+runtime.Version())
	if out, err := exec.CommandContext(ctx, c.CaddyBin, "version").Output(); err == nil {
		rep.Machine = append(rep.Machine, "Caddy: "+strings.TrimSpace(string(out)))
	}
	if c.PostgresDSN != "" {
		if conn, err := pgx.Connect(ctx, c.PostgresDSN); err == nil {
			var v string
			if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
				rep.Machine = append(rep.Machine, "PostgreSQL: "+v+" (same machine, loopback)")
			}
			conn.Close(ctx)
		}
	}
	env := "Caddy's Go runtime: GOGC=" + cmp.Or(os.Getenv("GOGC"), "100 (default)") +
		", GOMEMLIMIT=" + cmp.Or(os.Getenv("GOMEMLIMIT"), "none (default)")
	if e := CaddyEnv(); len(e) > 0 {
		env = "Caddy's environment adds (BENCH_CADDY_ENV): " + strings.Join(e, " ")
	}
	rep.Machine = append(rep.Machine, env)
	if c.LogLevel != "" {
		rep.Machine = append(rep.Machine, "Caddy's default log level (BENCH_LOG_LEVEL): "+c.LogLevel)
	}
	rep.LoadBefore = LoadAvg()
}

// LoadAvg is the 1, 5 and 15 minute load average.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// verdict says whether a target was met.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Markdown writes BENCHMARKS.md; notes (hand-written findings) are appended as they are.
func (rep *Report) Markdown(w io.Writer, notes string) {
	c := rep.Cfg
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# Benchmarks")
	p("")
	p("Written by `make bench` (bench/cmd/scimbench) on %s; took %s. **Do not edit by hand**: the",
		rep.Started.UTC().Format("2006-01-02 15:04 UTC"), rep.Finished.Sub(rep.Started).Round(time.Second))
	p("findings at the end come from `bench/NOTES.md`.")
	p("")
	p("Absolute numbers depend on the machine and on what else runs on it; the targets are read")
	p("from ratios measured side by side in one run, and no test asserts a timing.")
	p("")
	p("## Machine")
	p("")
	for _, m := range rep.Machine {
		p("* %s", m)
	}
	p("* load average (1, 5, 15 min) before: %s, after: %s", rep.LoadBefore, rep.LoadAfter)
	p("* everything on one host over loopback: the load client, the fast backend (a separate process), Caddy, PostgreSQL")
	p("")
	rep.targets(p)
	rep.live(p)
	rep.ingest(p)
	rep.sync(p)
	rep.review(p)
	rep.micro(p)
	p("## Method")
	p("")
	p("* **Caddy** is the binary `make build` makes (xcaddy, Caddy %s with this module), started per", "v2.11.9")
	p("  scenario on free 127.0.0.1 ports with a generated Caddyfile (kept in the work directory with")
	p("  its log). Caddy logs at its default level (INFO) to a file: scim_shadow logs every write and")
	p("  each finding, and that cost is part of what is measured.")
	p("* **Backend**: `bench.Backend`, a tiny SCIM-ish server that answers canned JSON without")
	p("  parsing or keeping anything, run as its own process, so that the numbers are the proxy's")
	p("  and not those of a real SCIM server (the example backend parses and stores every request).")
	p("* **Load client**: a Go client (`bench/load.go`) with one keep-alive connection per worker;")
	p("  every write is unique (no preview dedupe).")
	p("* The load client and the backend run with GOGC=%d unless GOGC is set: with Go's default,", HarnessGCPercent)
	p("  their small heaps were collected ~40 times a second between them, and each collection's pauses were")
	p("  counted against the Caddy under test. Caddy runs with the runtime's defaults (GOGC=100)")
	p("  unless BENCH_CADDY_ENV sets them.")
	p("* **1. Live overhead**: (a) `route /scim/v2/* { reverse_proxy }` and (b) the same route with")
	p("  `scim_shadow` (live, five rules that fire on every write: a rename, a nested fallback, a")
	p("  move into the enterprise extension, a value-filter fallback, a default; the same rules as")
	p("  rules/bench_test.go) before `reverse_proxy`, both running, loaded alternately: %d rounds of", c.LiveRounds)
	p("  %s each at concurrency %d, the order swapped every round. Mix: 40%% `GET /Users?filter=userName eq …`,", c.LiveDuration, c.LiveConcurrency)
	p("  20%% `…?filter=externalId eq …`, 10%% `…?filter=favorite_color eq … and active eq true&attributes=…`")
	p("  (rewritten by a rule: the filter is parsed), 20%% PATCH")
	p("  (a path a rule renames and a path-less value), 5%% POST and 5%% PUT of a ~2 KB user. Reported:")
	p("  the median over rounds of the per-round ratio b/a and of the per-round p50/p99 differences.")
	p("  The closed loop saturates both Caddies: it measures throughput, and its latencies are mostly")
	if c.LiveRateRounds == 0 {
		p("  queueing. This run had no fixed-rate rounds, which measure the latency added.")
	} else {
		p("  queueing. Then %d more rounds of %s each at a fixed rate below saturation (open loop:", c.LiveRateRounds, c.LiveDuration)
		p("  `BENCH_LIVE_RATE`, else half the bare Caddy's median closed-loop throughput of the same run;")
		p("  at most %d requests in flight), latency counted from each request's scheduled send time:", c.LiveRateWorkers)
		p("  the per-round p50/p99 differences b − a there are the latency scim_shadow adds, the verdict")
		p("  of the p99 target. A run whose achieved rate falls more than %.0f%% short is reported as saturated.", 100*RateShortfall)
	}
	if c.Normalize == "" {
		p("  **TODO(normalize)**: dialect normalisation was not on in this run — the `normalize`")
		p("  subdirective is not in this tree yet; set `BENCH_NORMALIZE='normalize …'` (a line added")
		p("  to the handler block) or the default in bench/config.go once it lands.")
	} else {
		p("  Normalisation line in the handler: `%s`.", c.Normalize)
	}
	p("* **2. Preview ingest**: a fresh Caddy in preview per store; for each concurrency %v, %s of", c.IngestConcurrency, c.IngestDuration)
	p("  writes: 50%% POST of a ~2 KB user (a conflict lookup through `next`), 40%% PATCH and 10%% PUT")
	p("  of users without pending records (a live-state GET through `next`, RFC 7644 application,")
	p("  diff). Counted: answers that are the retryable rejection of a committed record; checked:")
	p("  the pending count grew by as much, and the backend received no write.")
	p("* **3. Initial sync**: a fresh Caddy in preview; %d user creates (~2 KB) at concurrency %d,", c.SyncUsers, c.SyncConcurrency)
	p("  then %d group creates with %d members each (member names are looked up through `next`,", c.SyncGroups, c.SyncGroupSize)
	p("  cached a minute). Wall time of both, Caddy's VmHWM at the end, store size on disk (SQLite:")
	p("  the file with its -wal and -shm; PostgreSQL: the tables with indexes and TOAST).")
	p("* **4. Review at scale**: %d records bulk-inserted by SQL into a store migrated through the", c.ReviewRecords)
	p("  Store API (indexes dropped during the load and rebuilt; PostgreSQL then VACUUM ANALYZEd, as")
	p("  autovacuum would have): 90%% user writes over %d users, 10%% group PATCHes (3 members added, 2", shapeOf(c.ReviewRecords).users)
	p("  removed) over %d groups, 1%% with an error, 2%% deprovisioning, one user in 20 with an open", shapeOf(c.ReviewRecords).groups)
	p("  warning; ~1.3 KB of JSON per row. Then %d sequential requests per endpoint (after 2 warm-up)", c.ReviewSamples)
	p("  through the `scim_shadow_review` route, with random users, groups and ids.")
	p("* **5. Micro-benchmarks**: `go test -run '^$' -bench '%s' -benchmem -benchtime %s ./rules ./shadow`.", microPattern, c.MicroBenchtime)
	p("")
	p("## How to rerun")
	p("")
	p("```sh")
	p("make bench                      # builds ./caddy if missing, runs everything, writes BENCHMARKS.md")
	p("make bench-smoke                 # seconds: every scenario at tiny scale (what CI runs via go test)")
	p("BENCH_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable make bench")
	p("```")
	p("")
	p("Scale (defaults in parentheses): `BENCH_LIVE_ROUNDS` (5), `BENCH_LIVE_DURATION` (8s),")
	p("`BENCH_LIVE_CONCURRENCY` (16), `BENCH_LIVE_RATE_ROUNDS` (as `BENCH_LIVE_ROUNDS`; 0 skips the")
	p("fixed-rate rounds), `BENCH_LIVE_RATE` (requests/s; half the bare Caddy's closed-loop throughput),")
	p("`BENCH_LIVE_RATE_WORKERS` (64), `BENCH_INGEST_DURATION` (6s), `BENCH_INGEST_CONCURRENCY` (1,8,64),")
	p("`BENCH_SYNC_USERS` (100000), `BENCH_SYNC_GROUPS` (20), `BENCH_SYNC_GROUP_SIZE` (1000),")
	p("`BENCH_SYNC_CONCURRENCY` (16), `BENCH_SYNC_STORES` (sqlite), `BENCH_SYNC_LIMIT` (120s), `BENCH_REVIEW_RECORDS` (1000000),")
	p("`BENCH_REVIEW_SAMPLES` (40), `BENCH_REVIEW_STORES` (sqlite,postgres), `BENCH_MICRO_BENCHTIME` (1s),")
	p("`BENCH_NORMALIZE`, `BENCH_LOG_LEVEL` (of Caddy's default logger; INFO), `BENCH_CADDY_ENV` (added to every Caddy's environment only, e.g.")
	p("`GOGC=400 GOMEMLIMIT=200MiB`), `BENCH_PROFILE=1` (CPU profiles of Caddy under load, from its admin")
	p("endpoint, into the work directory), `BENCH_WORKDIR` (kept; else a temporary one, kept with")
	p("`BENCH_KEEP=1`), `BENCH_OUT` (BENCHMARKS.md), `BENCH_TIMEOUT` (14m). The work directory holds")
	p("each Caddy's Caddyfile and log, and report.json: `go run ./bench/cmd/scimbench -render")
	p("<dir>/report.json` writes BENCHMARKS.md again with the current bench/NOTES.md. A scenario")
	p("whose count is 0 is skipped. PostgreSQL runs use a fresh schema (search_path in the DSN),")
	p("dropped afterwards.")
	p("")
	for _, sec := range []struct {
		title string
		items []string
	}{
		{"Skipped in this run", rep.Skipped},
		{"Bounds reached in this run", rep.Limits},
		{"Problems seen during this run", rep.Problems},
	} {
		if len(sec.items) == 0 {
			continue
		}
		p("## %s", sec.title)
		p("")
		for _, it := range sec.items {
			p("* %s", it)
		}
		p("")
	}
	if notes != "" {
		p("%s", strings.TrimRight(notes, "\n"))
	}
}

func (rep *Report) targets(p func(string, ...any)) {
	p("## Targets")
	p("")
	p("| target | measured | verdict |")
	p("|---|---|---|")
	if l := rep.Live; l != nil && len(l.Rounds) > 0 {
		p("| live throughput ≥ 0.95× bare reverse_proxy | %.3f× (median of %d rounds; min %.3f, max %.3f) | %s |", l.Ratio, len(l.Rounds), l.RatioMin, l.RatioMax, verdict(l.Ratio >= 0.95))
		if f := l.FixedRate; f != nil && len(f.Rounds) > 0 {
			measured, v := fmt.Sprintf("%s (p50 added %s; median of %d rounds)", ms(f.AddedP99), ms(f.AddedP50), len(f.Rounds)), verdict(f.AddedP99 <= time.Millisecond)
			if len(f.Saturated) > 0 {
				measured, v = measured+"; a side fell short of the rate (saturated), see §1", "not read: saturated"
			}
			p("| live p99 added ≤ 1 ms, at a fixed %.0f req/s (open loop, latency from each request's scheduled send time) | %s | %s |", f.Rate, measured, v)
		} else {
			p("| live p99 added ≤ 1 ms | not measured at a fixed rate in this run | — |")
		}
		p("| *not the target:* live p99 added at saturation (closed loop, concurrency %d), a throughput effect | %s (p50 added %s) | — |", l.Concurrency, ms(l.AddedP99), ms(l.AddedP50))
	}
	for _, in := range rep.Ingest {
		if in.Concurrency == 64 {
			p("| preview ingest ≥ 2,000 writes/s at concurrency 64 (%s) | %.0f writes/s | %s |", in.Store, in.Stats.RPS, verdict(in.Stats.RPS >= 2000))
		}
	}
	for _, s := range rep.Sync {
		proj := ""
		if s.Projected {
			proj = fmt.Sprintf(" (projected: %d users done in the time limit)", s.UsersDone)
		}
		p("| %d-user initial sync ≤ 60 s (%s, + %d groups of %d) | %.1f s%s | %s |", s.Users, s.Store, s.Groups, s.GroupSize, s.Wall.Seconds(), proj, verdict(s.Wall <= time.Minute))
		p("| initial sync Caddy peak RSS ≤ 256 MB (%s) | %d MiB | %s |", s.Store, s.PeakRSS>>20, verdict(s.PeakRSS <= 256<<20))
	}
	for _, rv := range rep.Review {
		var worstList, worstView ReviewQueryResult
		for _, q := range rv.Queries {
			if q.Kind == "list" && q.Stats.P95 >= worstList.Stats.P95 {
				worstList = q
			}
			if q.Kind == "view" && q.Stats.P95 >= worstView.Stats.P95 {
				worstView = q
			}
		}
		p("| %d records (%s): every list p95 ≤ 50 ms | worst: %s, %s | %s |", rv.Records, rv.Store, worstList.Name, ms(worstList.Stats.P95), verdict(worstList.Stats.P95 <= 50*time.Millisecond))
		ge := ""
		if worstView.Censored {
			ge = "≥ "
		}
		p("| %d records (%s): per-resource view p95 ≤ 200 ms | worst: %s, %s%s | %s |", rv.Records, rv.Store, worstView.Name, ge, ms(worstView.Stats.P95), verdict(worstView.Stats.P95 <= 200*time.Millisecond))
	}
	for _, m := range rep.Micro {
		if m.Name == "BenchmarkRewriteResource" {
			p("| rewrite of a 2 KB user with five rules ≤ 20 µs and ≤ 30 allocs | %.1f µs, %d allocs | %s |", m.NsOp/1000, m.AllocsOp, verdict(m.NsOp <= 20000 && m.AllocsOp <= 30))
		}
	}
	p("")
	if c := rep.Cfg; c.SyncUsers != 100000 || c.ReviewRecords != 1000000 {
		p("*This run was scaled down (%d sync users, %d review records): the verdicts are not the targets'.*", c.SyncUsers, c.ReviewRecords)
		p("")
	}
}

func (rep *Report) live(p func(string, ...any)) {
	l := rep.Live
	if l == nil || len(l.Rounds) == 0 {
		return
	}
	p("## 1. Live overhead")
	p("")
	p("| round | (a) bare req/s | (a) p50 | (a) p99 | (b) scim_shadow req/s | (b) p50 | (b) p99 | b/a |")
	p("|---|---|---|---|---|---|---|---|")
	for i, r := range l.Rounds {
		p("| %d | %.0f | %s | %s | %.0f | %s | %s | %.3f |", i+1, r.A.RPS, ms(r.A.P50), ms(r.A.P99), r.B.RPS, ms(r.B.P50), ms(r.B.P99), r.B.RPS/r.A.RPS)
	}
	p("| **median** | %.0f | %s | %s | %.0f | %s | %s | **%.3f** |", l.A.RPS, ms(l.A.P50), ms(l.A.P99), l.B.RPS, ms(l.B.P50), ms(l.B.P99), l.Ratio)
	p("")
	if l.CPUPerRequestA > 0 && l.CPUPerRequestB > 0 {
		a, b := l.CPUPerRequestA.Seconds()*1e6, l.CPUPerRequestB.Seconds()*1e6
		p("CPU per request over all %d closed-loop rounds (each Caddy's user and system time from", len(l.Rounds))
		p("/proc, divided by the requests it answered): (a) %.1f µs, (b) %.1f µs, b − a %.1f µs, a/b %.3f.", a, b, b-a, a/b)
		p("Were Caddy the only process on its cores, the throughput ratio would be a/b; here the load")
		p("client and the backend share the two cores with it, and the ratio moves with them.")
		p("")
	}
	p("Closed loop: %d workers, each sending its next request when the last is answered, so both", l.Concurrency)
	p("Caddies run as fast as the machine lets them (saturation), and a request's latency is about")
	p("%d / throughput. The differences b − a (median over rounds: p50 %s, p99 %s) therefore", l.Concurrency, ms(l.AddedP50), ms(l.AddedP99))
	p("mostly restate the throughput deficit as queueing; they are not the time scim_shadow adds to")
	if f := l.FixedRate; f != nil && len(f.Rounds) > 0 {
		p("a request. That is measured below, at a fixed rate.")
		p("")
		rep.liveFixedRate(p, f)
	} else {
		p("a request. A fixed-rate run measures that; this run had none (`BENCH_LIVE_RATE_ROUNDS`).")
		p("")
	}
}

func (rep *Report) liveFixedRate(p func(string, ...any), f *LiveFixedRate) {
	p("### Fixed rate (open loop)")
	p("")
	p("| round | (a) bare achieved req/s | (a) p50 | (a) p99 | (b) scim_shadow achieved req/s | (b) p50 | (b) p99 | p50 added | p99 added |")
	p("|---|---|---|---|---|---|---|---|---|")
	var peakA, peakB int64
	for i, r := range f.Rounds {
		p("| %d | %.0f | %s | %s | %.0f | %s | %s | %s | %s |", i+1, r.A.RPS, ms(r.A.P50), ms(r.A.P99), r.B.RPS, ms(r.B.P50), ms(r.B.P99), ms(r.B.P50-r.A.P50), ms(r.B.P99-r.A.P99))
		peakA, peakB = max(peakA, r.A.PeakInFlight), max(peakB, r.B.PeakInFlight)
	}
	p("| **median** | %.0f | %s | %s | %.0f | %s | %s | %s | **%s** |", f.A.RPS, ms(f.A.P50), ms(f.A.P99), f.B.RPS, ms(f.B.P50), ms(f.B.P99), ms(f.AddedP50), ms(f.AddedP99))
	p("")
	p("%.0f requests/s scheduled for %s per run", f.Rate, f.Duration)
	p("(%s),", f.RateFrom)
	p("the same mix, the order swapped every round; at most %d requests in flight (the most seen at", f.Workers)
	p("once: (a) %d, (b) %d; all %d means a stall filled the pool and requests waited for a worker).", peakA, peakB, f.Workers)
	p("Each request's latency runs from its scheduled send time to the end of its answer, not from")
	p("when it was sent (coordinated-omission-correct, as wrk2 measures): a stall of Caddy, the")
	p("backend or the load client counts against every request scheduled during it. The added")
	p("latency is the median over rounds of the per-round b − a; the medians of the a and b columns")
	p("are taken separately, so they need not differ by it exactly.")
	p("")
	if len(f.Saturated) == 0 {
		p("Both sides achieved the scheduled rate within %.0f%% in every round: neither was saturated.", 100*RateShortfall)
	} else {
		p("**Saturated**: these runs fell more than %.0f%% short of the scheduled rate, so requests queued", 100*RateShortfall)
		p("and their latencies include the wait; an added latency from such a round is not scim_shadow's alone:")
		p("")
		for _, s := range f.Saturated {
			p("* %s", s)
		}
		if kept := f.keptRate(); len(kept) > 0 {
			_, _, added50, added99 := roundMedians(kept)
			p("")
			p("Over the %d of %d rounds in which both sides kept the rate, the added latency (median of b − a)", len(kept), len(f.Rounds))
			p("was p50 %s, p99 %s: for information, not the verdict, which reads every round.", ms(added50), ms(added99))
		}
	}
	p("")
}

func (rep *Report) ingest(p func(string, ...any)) {
	if len(rep.Ingest) == 0 {
		return
	}
	p("## 2. Preview ingest")
	p("")
	p("| store | concurrency | recorded writes/s | p50 | p99 | writes | store grew by | Caddy CPU per write |")
	p("|---|---|---|---|---|---|---|---|")
	for _, in := range rep.Ingest {
		p("| %s | %d | %.0f | %s | %s | %d | %d | %s |", in.Store, in.Concurrency, in.Stats.RPS, ms(in.Stats.P50), ms(in.Stats.P99), in.Stats.Requests, in.Recorded, cpuPer(in.CaddyCPUPerWrite))
	}
	p("")
	p("Caddy's CPU per write is its user and system time during the load (from /proc) divided by")
	p("the writes it answered; PostgreSQL's server processes are not in it. A rate follows the")
	p("machine's speed and what shares its cores, the CPU per write only the speed (and it falls")
	p("with concurrency, as a group commit holds more writes).")
	p("")
}

func (rep *Report) sync(p func(string, ...any)) {
	if len(rep.Sync) == 0 {
		return
	}
	p("## 3. Initial sync")
	p("")
	p("| store | users (done) | groups × members | wall | of which users | users/s | Caddy CPU per user | Caddy peak RSS | store size | records |")
	p("|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range rep.Sync {
		proj := ""
		if s.Projected {
			proj = " (projected)"
		}
		p("| %s | %d (%d) | %d × %d | %.1f s%s | %.1f s | %.0f | %s | %d MiB | %d MiB | %d |", s.Store, s.Users, s.UsersDone, s.Groups, s.GroupSize,
			s.Wall.Seconds(), proj, s.UsersWall.Seconds(), float64(s.Users)/s.UsersWall.Seconds(), cpuPer(s.CaddyCPUPerUser), s.PeakRSS>>20, s.StoreBytes>>20, s.Recorded)
	}
	p("")
	p("Peak RSS and store size are those reached by the users done (all of them unless projected).")
	p("")
}

// cpuPer formats a CPU time per request in microseconds; "—" when not measured.
func cpuPer(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f µs", d.Seconds()*1e6)
}

func (rep *Report) review(p func(string, ...any)) {
	if len(rep.Review) == 0 {
		return
	}
	p("## 4. Review at scale")
	p("")
	for _, rv := range rep.Review {
		p("**%s**, %d records (seeded in %.1f s, %d MiB on disk):", rv.Store, rv.Records, rv.SeedTime.Seconds(), rv.StoreBytes>>20)
		p("")
		p("| endpoint | target | samples | p50 | p95 | p99 |")
		p("|---|---|---|---|---|---|")
		for _, q := range rv.Queries {
			target := "p95 ≤ 50 ms"
			if q.Kind == "view" {
				target = "p95 ≤ 200 ms"
			}
			ge := ""
			if q.Censored {
				ge = "≥ "
			}
			p("| %s | %s | %d | %s%s | %s%s | %s%s |", q.Name, target, q.Stats.Requests, ge, ms(q.Stats.P50), ge, ms(q.Stats.P95), ge, ms(q.Stats.P99))
		}
		p("")
	}
}

func (rep *Report) micro(p func(string, ...any)) {
	if len(rep.Micro) == 0 {
		return
	}
	p("## 5. Micro-benchmarks")
	p("")
	p("| package | benchmark | ns/op | B/op | allocs/op |")
	p("|---|---|---|---|---|")
	for _, m := range rep.Micro {
		p("| %s | %s | %.0f | %d | %d |", m.Pkg, m.Name, m.NsOp, m.BytesOp, m.AllocsOp)
	}
	p("")
}
