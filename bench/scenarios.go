package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Runner runs the scenarios of a Config and fills a Report.
type Runner struct {
	Cfg    Config
	Log    io.Writer
	Report *Report
	seq    atomic.Int64 // makes every write of a run unique (no dedupe)
}

func (r *Runner) logf(format string, args ...any) {
	fmt.Fprintf(r.Log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// skip records a scenario (or store) that did not run.
func (r *Runner) skip(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Report.Skipped = append(r.Report.Skipped, msg)
	r.logf("skipped: %s", msg)
}

// limit records a bound of the harness that cut a measurement short (not an error).
func (r *Runner) limit(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Report.Limits = append(r.Report.Limits, msg)
	r.logf("limit: %s", msg)
}

// note records a problem (an error or a count that does not match) in the report and the log.
func (r *Runner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Report.Problems = append(r.Report.Problems, msg)
	r.logf("PROBLEM: %s", msg)
}

// siteBare is configuration (a): reverse_proxy only.
const siteBare = `http://127.0.0.1:{{PORT}} {
	bind 127.0.0.1
	route /scim/v2/* {
		reverse_proxy {{BACKEND}}
	}
}
`

// siteShadow is configuration (b): scim_shadow with five rules, then reverse_proxy, and
// the review API on /review/.
const siteShadow = `http://127.0.0.1:{{PORT}} {
	bind 127.0.0.1
	route /scim/v2/* {
		scim_shadow {
			connection bench
			mode {{MODE}}
			{{NORMALIZE}}
		` + rulesBlock + `
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
}
`

// storeApp is the scim_shadow app block for a store: "sqlite <path>" or "postgres <dsn>".
func storeApp(store string) string {
	return "scim_shadow {\n\t\tstore " + store + "\n\t}"
}

// caddyfile assembles a Caddyfile from the global head and a site.
func (r *Runner) caddyfile(app, site, mode string) string {
	logLevel := ""
	if r.Cfg.LogLevel != "" {
		logLevel = "log default {\n\t\tlevel " + r.Cfg.LogLevel + "\n\t}"
	}
	return strings.NewReplacer("{{APP}}", app, "{{MODE}}", mode, "{{NORMALIZE}}", r.Cfg.Normalize,
		"{{LOG}}", logLevel, "{{BACKEND}}", r.Cfg.BackendAddr).Replace(caddyGlobal + site)
}

// liveMix is the workload of scenario 1: 70% GET lookups with filters (40% by userName,
// 20% by externalId, 10% on an attribute a rule renames, with attributes=), 20% PATCH,
// 10% POST/PUT of ~2 KB users.
func (r *Runner) liveMix() Gen {
	return func(i int) Req {
		n := int(r.seq.Add(1))
		switch i % 10 {
		case 0, 1, 2, 3:
			return Req{Method: http.MethodGet, Path: "/scim/v2/Users?filter=" + url.QueryEscape(fmt.Sprintf(`userName eq "existing%d@example.org"`, n))}
		case 4, 5:
			return Req{Method: http.MethodGet, Path: "/scim/v2/Users?filter=" + url.QueryEscape(fmt.Sprintf(`externalId eq "00u%d"`, n))}
		case 6:
			return Req{Method: http.MethodGet, Path: "/scim/v2/Users?filter=" + url.QueryEscape(fmt.Sprintf(`favorite_color eq "c%d" and active eq true`, n)) + "&attributes=userName,favorite_color"}
		case 7, 8:
			return Req{Method: http.MethodPatch, Path: fmt.Sprintf("/scim/v2/Users/u%d", n), Body: []byte(PatchBody(n))}
		default:
			if (i/10)%2 == 0 {
				return Req{Method: http.MethodPost, Path: "/scim/v2/Users", Body: []byte(UserBody(n))}
			}
			return Req{Method: http.MethodPut, Path: fmt.Sprintf("/scim/v2/Users/u%d", n), Body: []byte(UserBody(n))}
		}
	}
}

// RunLive is scenario 1: the same mix through (a) reverse_proxy only and (b) scim_shadow
// live + reverse_proxy, interleaved over rounds (the order alternates).
func (r *Runner) RunLive(ctx context.Context) error {
	c := r.Cfg
	a, err := StartCaddy(ctx, c.CaddyBin, c.WorkDir, "live-a-bare", r.caddyfile("", siteBare, ""))
	if err != nil {
		return err
	}
	defer a.Stop()
	b, err := StartCaddy(ctx, c.CaddyBin, c.WorkDir, "live-b-shadow",
		r.caddyfile(storeApp("sqlite "+filepath.Join(c.WorkDir, "live-b-shadow", "shadow.db")), siteShadow, "live"))
	if err != nil {
		return err
	}
	defer b.Stop()
	res := &LiveResult{Concurrency: c.LiveConcurrency, Duration: c.LiveDuration, Normalize: c.Normalize}
	r.Report.Live = res
	// With profiles on, each Caddy's first measured round is profiled (live-a.cpu.pprof,
	// live-b.cpu.pprof) and its request count noted, for CPU per request.
	profiled := map[*Caddy]bool{a: !c.Profile, b: !c.Profile}
	run := func(p *Caddy, d time.Duration) RunStats {
		profiling := !profiled[p] && d == c.LiveDuration
		if profiling {
			profiled[p] = true
			name := "live-a"
			if p == b {
				name = "live-b"
			}
			go func() {
				_ = p.Profile(ctx, int(max(d/time.Second, 1)), filepath.Join(c.WorkDir, name+".cpu.pprof"))
			}()
		}
		out := Load{Base: p.URL, Concurrency: c.LiveConcurrency, Duration: d, Gen: r.liveMix()}.Run(ctx)
		if profiling {
			r.logf("live %s: profiled round, %d requests", p.Name, out.Requests)
		}
		if out.Errors > 0 {
			r.note("live %s: %d errors, first: %s", p.Name, out.Errors, out.FirstErr)
		}
		return statsOf(out)
	}
	warm := min(c.LiveDuration, 2*time.Second)
	r.logf("live: warming up both (%s each)", warm)
	run(a, warm)
	run(b, warm)
	cpuA, cpuB := a.CPUMeter(), b.CPUMeter()
	var reqA, reqB int64
	for round := 0; round < c.LiveRounds; round++ {
		var ra, rb RunStats
		if round%2 == 0 {
			ra, rb = run(a, c.LiveDuration), run(b, c.LiveDuration)
		} else {
			rb, ra = run(b, c.LiveDuration), run(a, c.LiveDuration)
		}
		res.Rounds = append(res.Rounds, LiveRound{A: ra, B: rb})
		reqA, reqB = reqA+ra.Requests, reqB+rb.Requests
		r.logf("live round %d: a %.0f req/s p50 %s p99 %s | b %.0f req/s p50 %s p99 %s | b/a %.3f",
			round+1, ra.RPS, ra.P50, ra.P99, rb.RPS, rb.P50, rb.P99, rb.RPS/ra.RPS)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	res.summarize()
	var errA, errB error
	res.CPUPerRequestA, errA = cpuA(reqA)
	res.CPUPerRequestB, errB = cpuB(reqB)
	if err := errors.Join(errA, errB); err != nil {
		r.note("live: CPU per request not measured: %v", err)
	} else {
		r.logf("live: CPU per request over the closed-loop rounds: a %s, b %s", res.CPUPerRequestA, res.CPUPerRequestB)
	}
	if c.LiveRateRounds > 0 {
		return r.runLiveFixedRate(ctx, a, b, res)
	}
	return nil
}

// runLiveFixedRate is the open-loop part of scenario 1: the same mix through a and b at
// one fixed rate (BENCH_LIVE_RATE, else half a's median closed-loop throughput, below
// saturation), in alternating rounds, each request's latency counted from its scheduled
// send time.
func (r *Runner) runLiveFixedRate(ctx context.Context, a, b *Caddy, res *LiveResult) error {
	c := r.Cfg
	fixed := &LiveFixedRate{Rate: c.LiveRate, RateFrom: "BENCH_LIVE_RATE", Duration: c.LiveDuration, Workers: c.LiveRateWorkers}
	if fixed.Rate <= 0 {
		fixed.Rate = math.Round(res.A.RPS / 2)
		fixed.RateFrom = fmt.Sprintf("half of the bare Caddy's median closed-loop throughput in this run, %.0f req/s", res.A.RPS)
	}
	if fixed.Rate <= 0 {
		return fmt.Errorf("live fixed rate: no rate (the closed-loop rounds measured %.0f req/s)", res.A.RPS)
	}
	res.FixedRate = fixed
	r.logf("live fixed rate: %.0f req/s (%s), %d workers", fixed.Rate, fixed.RateFrom, fixed.Workers)
	run := func(p *Caddy) RunStats {
		out := FixedRate{Base: p.URL, Rate: fixed.Rate, Duration: c.LiveDuration, Workers: c.LiveRateWorkers, Gen: r.liveMix()}.Run(ctx)
		if out.Errors > 0 {
			r.note("live fixed rate %s: %d errors, first: %s", p.Name, out.Errors, out.FirstErr)
		}
		return statsOf(out)
	}
	for round := 0; round < c.LiveRateRounds; round++ {
		var ra, rb RunStats
		if round%2 == 0 {
			ra, rb = run(a), run(b)
		} else {
			rb, ra = run(b), run(a)
		}
		fixed.Rounds = append(fixed.Rounds, LiveRound{A: ra, B: rb})
		r.logf("live fixed-rate round %d: a %.0f req/s p50 %s p99 %s | b %.0f req/s p50 %s p99 %s | added p50 %s p99 %s",
			round+1, ra.RPS, ra.P50, ra.P99, rb.RPS, rb.P50, rb.P99, rb.P50-ra.P50, rb.P99-ra.P99)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fixed.summarize()
	for _, s := range fixed.Saturated {
		r.logf("live fixed rate saturated: %s", s)
	}
	return nil
}

// recorded is the check of a preview write: the retryable rejection of a committed record.
func recorded(_ Req, status int, h http.Header) bool {
	return status == http.StatusTooManyRequests && h.Get("X-Scim-Shadow-Record") != ""
}

// ingestMix is the write mix of scenarios 2: 50% POST of a ~2 KB user (a conflict lookup
// through next), 40% PATCH and 10% PUT of users the store has no pending record of (a
// live-state GET through next, PATCH application and diff).
func (r *Runner) ingestMix() Gen {
	return func(i int) Req {
		n := int(r.seq.Add(1))
		switch i % 10 {
		case 0, 1, 2, 3, 4:
			return Req{Method: http.MethodPost, Path: "/scim/v2/Users", Body: []byte(UserBody(n))}
		case 5, 6, 7, 8:
			return Req{Method: http.MethodPatch, Path: fmt.Sprintf("/scim/v2/Users/u%d", n), Body: []byte(PatchBody(n))}
		default:
			return Req{Method: http.MethodPut, Path: fmt.Sprintf("/scim/v2/Users/u%d", n), Body: []byte(UserBody(n))}
		}
	}
}

// storeHandle is a fresh store of one scenario.
type storeHandle struct {
	Directive string    // after "store": "sqlite <path>" or "postgres <dsn>"
	Path      string    // the SQLite file
	PG        *pgSchema // the PostgreSQL schema
}

// storeFor makes a fresh store of kind ("sqlite" in dir, or "postgres": a new schema).
func (r *Runner) storeFor(ctx context.Context, kind, dir string) (*storeHandle, error) {
	switch kind {
	case "sqlite":
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "shadow.db")
		return &storeHandle{Directive: "sqlite " + path, Path: path}, nil
	case "postgres":
		if r.Cfg.PostgresDSN == "" {
			return nil, errSkip
		}
		pg, err := newPGSchema(ctx, r.Cfg.PostgresDSN)
		if err != nil {
			return nil, err
		}
		return &storeHandle{Directive: "postgres " + pg.DSN, PG: pg}, nil
	}
	return nil, fmt.Errorf("unknown store %q", kind)
}

// Size is the store's size on disk.
func (h *storeHandle) Size() (int64, error) {
	if h.PG != nil {
		return h.PG.Size()
	}
	return sqliteSize(h.Path)
}

// Drop removes a PostgreSQL schema (SQLite files stay in the work directory).
func (h *storeHandle) Drop() {
	if h.PG != nil {
		h.PG.Drop()
	}
}

// eachStore runs fn on a fresh store of each kind, named <scenario>-<kind>; PostgreSQL
// without a DSN is skipped.
func (r *Runner) eachStore(ctx context.Context, scenario string, kinds []string, fn func(name, kind string, st *storeHandle) error) error {
	for _, kind := range kinds {
		name := scenario + "-" + kind
		st, err := r.storeFor(ctx, kind, filepath.Join(r.Cfg.WorkDir, name))
		if err == errSkip {
			r.skip("%s on %s: no PostgreSQL (BENCH_POSTGRES_DSN unset or unreachable)", scenario, kind)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", scenario, kind, err)
		}
		err = fn(name, kind, st)
		st.Drop()
		if err != nil {
			return fmt.Errorf("%s %s: %w", scenario, kind, err)
		}
	}
	return nil
}

// errSkip says a scenario was skipped (no PostgreSQL DSN).
var errSkip = fmt.Errorf("skipped")

// sqliteSize is the size of a SQLite database with its -wal and -shm files.
func sqliteSize(path string) (int64, error) {
	var total int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		st, err := os.Stat(path + suffix)
		if err != nil {
			if suffix != "" && os.IsNotExist(err) {
				continue
			}
			return 0, fmt.Errorf("store size: %w", err)
		}
		total += st.Size()
	}
	return total, nil
}

// pending reads the pending count of connection bench through the review API.
func pending(ctx context.Context, p *Caddy) (int64, error) {
	var out struct {
		Connections []struct {
			Name    string `json:"name"`
			Pending int64  `json:"pending"`
		} `json:"connections"`
	}
	if err := getJSON(ctx, p.URL+"/review/connections", &out); err != nil {
		return 0, err
	}
	for _, c := range out.Connections {
		if c.Name == "bench" {
			return c.Pending, nil
		}
	}
	return 0, nil
}

// getJSON GETs u and decodes a 200 answer into v.
func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %.300s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// RunIngest is scenario 2: preview writes per second at each concurrency, per store.
func (r *Runner) RunIngest(ctx context.Context) error {
	c := r.Cfg
	return r.eachStore(ctx, "ingest", []string{"sqlite", "postgres"}, func(name, kind string, st *storeHandle) error {
		p, err := StartCaddy(ctx, c.CaddyBin, c.WorkDir, name, r.caddyfile(storeApp(st.Directive), siteShadow, "preview"))
		if err != nil {
			return err
		}
		defer p.Stop()
		// Warm up: the /Schemas cache, connections of the pool.
		Load{Base: p.URL, Concurrency: 4, Total: 40, Gen: r.ingestMix(), Check: recorded}.Run(ctx)
		for _, conc := range c.IngestConcurrency {
			before, err := pending(ctx, p)
			if err != nil {
				return err
			}
			writesBefore, err := r.backendWrites(ctx)
			if err != nil {
				return err
			}
			if c.Profile && conc == slices.Max(c.IngestConcurrency) {
				go func() {
					_ = p.Profile(ctx, int(max(c.IngestDuration/time.Second, 1)), filepath.Join(c.WorkDir, name+".cpu.pprof"))
				}()
			}
			cpu := p.CPUMeter()
			out := Load{Base: p.URL, Concurrency: conc, Duration: c.IngestDuration, Gen: r.ingestMix(), Check: recorded}.Run(ctx)
			cpuPerWrite, errCPU := cpu(out.Requests - out.Errors)
			after, err := pending(ctx, p)
			if err != nil {
				return err
			}
			res := IngestResult{Store: kind, Concurrency: conc, Stats: statsOf(out), Recorded: after - before}
			res.Stats.RPS = float64(out.Requests-out.Errors) / out.Elapsed.Seconds()
			res.CaddyCPUPerWrite = cpuPerWrite
			if errCPU != nil {
				r.note("ingest %s c=%d: Caddy's CPU not measured: %v", kind, conc, errCPU)
			}
			r.Report.Ingest = append(r.Report.Ingest, res)
			r.logf("ingest %s c=%d: %d writes, %.0f recorded/s, p50 %s p99 %s, store +%d, Caddy CPU per write %s", kind, conc, out.Requests, res.Stats.RPS, res.Stats.P50, res.Stats.P99, res.Recorded, cpuPer(res.CaddyCPUPerWrite))
			if out.Errors > 0 {
				r.note("ingest %s c=%d: %d errors, first: %s", kind, conc, out.Errors, out.FirstErr)
			}
			if res.Recorded != out.Requests-out.Errors {
				r.note("ingest %s c=%d: %d answered recorded but the pending count grew by %d", kind, conc, out.Requests-out.Errors, res.Recorded)
			}
			if w, err := r.backendWrites(ctx); err != nil {
				return err
			} else if w != writesBefore {
				r.note("ingest %s c=%d: the backend received %d writes in preview", kind, conc, w-writesBefore)
			}
		}
		return nil
	})
}

// RunSync is scenario 3: an initial sync (user creates, then group pushes with members)
// in preview: wall time, Caddy's peak RSS and the store size.
func (r *Runner) RunSync(ctx context.Context) error {
	c := r.Cfg
	return r.eachStore(ctx, "sync", c.SyncStores, func(name, kind string, st *storeHandle) error {
		p, err := StartCaddy(ctx, c.CaddyBin, c.WorkDir, name, r.caddyfile(storeApp(st.Directive), siteShadow, "preview"))
		if err != nil {
			return err
		}
		defer p.Stop()
		base := int(r.seq.Add(int64(c.SyncUsers))) - c.SyncUsers
		began := time.Now()
		cpu := p.CPUMeter()
		users := Load{Base: p.URL, Concurrency: c.SyncConcurrency, Total: c.SyncUsers, Duration: c.SyncLimit, Check: recorded, Gen: func(i int) Req {
			return Req{Method: http.MethodPost, Path: "/scim/v2/Users", Body: []byte(UserBody(base + i))}
		}}.Run(ctx)
		usersTook := time.Since(began)
		cpuPerUser, errCPU := cpu(users.Requests - users.Errors)
		var groups Result
		if c.SyncGroups > 0 { // a Load of Total 0 has no limit
			groups = Load{Base: p.URL, Concurrency: min(c.SyncConcurrency, c.SyncGroups), Total: c.SyncGroups, Check: recorded, Gen: func(i int) Req {
				return Req{Method: http.MethodPost, Path: "/scim/v2/Groups", Body: []byte(groupBody(fmt.Sprintf("group-%d-%d", base, i), base+i*c.SyncGroupSize%max(c.SyncUsers, 1), c.SyncGroupSize))}
			}}.Run(ctx)
		}
		wall := time.Since(began)
		res := SyncResult{Store: kind, Users: c.SyncUsers, Groups: c.SyncGroups, GroupSize: c.SyncGroupSize,
			Concurrency: c.SyncConcurrency, Wall: wall, UsersWall: usersTook, UserStats: statsOf(users), GroupStats: statsOf(groups),
			UsersDone: int(users.Requests - users.Errors), CaddyCPUPerUser: cpuPerUser}
		if errCPU != nil {
			r.note("sync on %s: Caddy's CPU not measured: %v", kind, errCPU)
		}
		if res.UsersDone < c.SyncUsers {
			// Cut short by SyncLimit: project the users' part from the rate reached.
			res.Projected = true
			res.UsersWall = time.Duration(float64(usersTook) * float64(c.SyncUsers) / float64(max(res.UsersDone, 1)))
			res.Wall = wall - usersTook + res.UsersWall
			r.limit("sync on %s: cut at %s after %d of %d users (BENCH_SYNC_LIMIT); wall time projected from the rate reached", kind, c.SyncLimit, res.UsersDone, c.SyncUsers)
		}
		if res.PeakRSS, err = p.PeakRSS(); err != nil {
			return err
		}
		if res.Recorded, err = pending(ctx, p); err != nil {
			return err
		}
		if res.StoreBytes, err = st.Size(); err != nil {
			return err
		}
		r.Report.Sync = append(r.Report.Sync, res)
		r.logf("sync %s: %d users + %d groups of %d in %s (users %s, Caddy CPU per user %s), peak RSS %d MiB, store %d MiB, recorded %d",
			kind, c.SyncUsers, c.SyncGroups, c.SyncGroupSize, wall.Round(time.Millisecond), usersTook.Round(time.Millisecond),
			cpuPer(res.CaddyCPUPerUser), res.PeakRSS>>20, res.StoreBytes>>20, res.Recorded)
		for _, l := range []Result{users, groups} {
			if l.Errors > 0 {
				r.note("sync %s: %d errors, first: %s", kind, l.Errors, l.FirstErr)
			}
		}
		if want := int64(res.UsersDone + c.SyncGroups); res.Recorded != want {
			r.note("sync %s: %d pending records, want %d", kind, res.Recorded, want)
		}
		return nil
	})
}
