package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config sets the scale of every scenario. Zero or empty values skip a scenario where
// noted; FromEnv reads them from BENCH_* variables.
type Config struct {
	CaddyBin    string // the Caddy binary with the module
	WorkDir     string // stores, Caddyfiles, logs, profiles
	BackendAddr string // host:port of the fast backend
	PostgresDSN string // "" skips the PostgreSQL runs
	RepoDir     string // the module's directory, for go test -bench
	Profile     bool   // save CPU profiles of Caddy under load into WorkDir
	// Normalize is a line added to the live scim_shadow block ("normalize …"): issue H
	// measures live mode with normalisation on, so it defaults to DefaultNormalize;
	// BENCH_NORMALIZE= (empty) runs without it.
	Normalize string
	// LogLevel, when set, is the level of Caddy's default logger (BENCH_LOG_LEVEL, e.g.
	// WARN: without scim_shadow's line per write); "" keeps Caddy's INFO.
	LogLevel string

	LiveRounds      int           // interleaved a/b closed-loop rounds; 0 skips scenario 1
	LiveDuration    time.Duration // per run, closed loop and fixed rate
	LiveConcurrency int           // closed-loop workers
	// LiveRateRounds are the interleaved a/b fixed-rate (open-loop) rounds after the
	// closed-loop ones; 0 skips them. FromEnv makes them LiveRounds unless
	// BENCH_LIVE_RATE_ROUNDS is set.
	LiveRateRounds int
	// LiveRate is the fixed rate in requests/s; 0: half the bare Caddy's median
	// closed-loop throughput in the same run.
	LiveRate float64
	// LiveRateWorkers bounds the requests in flight at the fixed rate.
	LiveRateWorkers int

	IngestDuration    time.Duration // per concurrency; 0 skips scenario 2
	IngestConcurrency []int

	SyncUsers       int // 0 skips scenario 3
	SyncGroups      int
	SyncGroupSize   int
	SyncConcurrency int
	SyncStores      []string // "sqlite", "postgres"
	// SyncLimit caps the user creates' time; a sync cut short reports the rate it
	// reached and the wall time projected from it.
	SyncLimit time.Duration

	ReviewRecords int      // 0 skips scenario 4
	ReviewSamples int      // requests per endpoint
	ReviewStores  []string // "sqlite", "postgres"

	MicroBenchtime string // go test -benchtime; "" skips scenario 5
}

// DefaultNormalize is the normalisation line of the live run: every switch on.
const DefaultNormalize = "normalize all"

// Defaults is the full run of make bench (about 10 minutes on 2 cores, plus the build).
func Defaults() Config {
	return Config{
		LiveRounds:        5,
		LiveDuration:      8 * time.Second,
		LiveConcurrency:   16,
		LiveRateRounds:    5,
		LiveRateWorkers:   64,
		IngestDuration:    6 * time.Second,
		IngestConcurrency: []int{1, 8, 64},
		SyncUsers:         100000,
		SyncGroups:        20,
		SyncGroupSize:     1000,
		SyncConcurrency:   16,
		SyncStores:        []string{"sqlite"},
		SyncLimit:         120 * time.Second,
		ReviewRecords:     1000000,
		ReviewSamples:     40,
		ReviewStores:      []string{"sqlite", "postgres"},
		MicroBenchtime:    "1s",
		Normalize:         DefaultNormalize,
	}
}

// FromEnv overrides c with the BENCH_* variables that are set.
func (c Config) FromEnv() (Config, error) {
	var err error
	geti := func(name string, v *int) {
		if s := os.Getenv(name); s != "" && err == nil {
			*v, err = strconv.Atoi(s)
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	getd := func(name string, v *time.Duration) {
		if s := os.Getenv(name); s != "" && err == nil {
			*v, err = time.ParseDuration(s)
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	gets := func(name string, v *string) {
		if s, ok := os.LookupEnv(name); ok {
			*v = s
		}
	}
	geti("BENCH_LIVE_ROUNDS", &c.LiveRounds)
	getd("BENCH_LIVE_DURATION", &c.LiveDuration)
	geti("BENCH_LIVE_CONCURRENCY", &c.LiveConcurrency)
	c.LiveRateRounds = c.LiveRounds
	geti("BENCH_LIVE_RATE_ROUNDS", &c.LiveRateRounds)
	geti("BENCH_LIVE_RATE_WORKERS", &c.LiveRateWorkers)
	if s := os.Getenv("BENCH_LIVE_RATE"); s != "" && err == nil {
		if c.LiveRate, err = strconv.ParseFloat(s, 64); err != nil {
			err = fmt.Errorf("BENCH_LIVE_RATE: %w", err)
		}
	}
	getd("BENCH_INGEST_DURATION", &c.IngestDuration)
	if s := os.Getenv("BENCH_INGEST_CONCURRENCY"); s != "" {
		c.IngestConcurrency = nil
		for _, f := range strings.Split(s, ",") {
			n, e := strconv.Atoi(strings.TrimSpace(f))
			if e != nil {
				return c, fmt.Errorf("BENCH_INGEST_CONCURRENCY: %w", e)
			}
			c.IngestConcurrency = append(c.IngestConcurrency, n)
		}
	}
	geti("BENCH_SYNC_USERS", &c.SyncUsers)
	geti("BENCH_SYNC_GROUPS", &c.SyncGroups)
	geti("BENCH_SYNC_GROUP_SIZE", &c.SyncGroupSize)
	geti("BENCH_SYNC_CONCURRENCY", &c.SyncConcurrency)
	getd("BENCH_SYNC_LIMIT", &c.SyncLimit)
	geti("BENCH_REVIEW_RECORDS", &c.ReviewRecords)
	geti("BENCH_REVIEW_SAMPLES", &c.ReviewSamples)
	getl := func(name string, v *[]string) {
		if s, ok := os.LookupEnv(name); ok {
			*v = nil
			for _, f := range strings.Split(s, ",") {
				if f = strings.TrimSpace(f); f != "" {
					*v = append(*v, f)
				}
			}
		}
	}
	getl("BENCH_REVIEW_STORES", &c.ReviewStores)
	getl("BENCH_SYNC_STORES", &c.SyncStores)
	gets("BENCH_MICRO_BENCHTIME", &c.MicroBenchtime)
	gets("BENCH_POSTGRES_DSN", &c.PostgresDSN)
	gets("BENCH_NORMALIZE", &c.Normalize)
	gets("BENCH_LOG_LEVEL", &c.LogLevel)
	c.Profile = os.Getenv("BENCH_PROFILE") == "1"
	return c, err
}

// Smoke is every scenario at tiny scale: seconds, for CI and make bench-smoke. Its
// numbers mean nothing; it checks that the harness works.
func Smoke() Config {
	return Config{
		LiveRounds:        2,
		LiveDuration:      200 * time.Millisecond,
		LiveConcurrency:   4,
		LiveRateRounds:    2,
		LiveRateWorkers:   8,
		IngestDuration:    200 * time.Millisecond,
		IngestConcurrency: []int{1, 8},
		SyncUsers:         100,
		SyncGroups:        2,
		SyncGroupSize:     20,
		SyncConcurrency:   8,
		SyncStores:        []string{"sqlite"},
		ReviewRecords:     1000,
		ReviewSamples:     3,
		ReviewStores:      []string{"sqlite", "postgres"},
		MicroBenchtime:    "",
		Normalize:         DefaultNormalize,
	}
}

// HarnessGCPercent is the GOGC of the harness's own processes (load client, backend) when
// GOGC is not set: they allocate per request with heaps of a few MB, so Go's default
// collected them ~40 times a second between them, and a pause of the load client delays
// every request it has scheduled. Ten times fewer collections keep that out of the Caddy
// under test's latencies; Caddy itself keeps the runtime's defaults.
const HarnessGCPercent = 1000
