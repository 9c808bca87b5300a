package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// TestSeededReviewTimes seeds a store as scenario 4 does (BENCH_SEEDTIME_RECORDS records,
// unset: skipped) and times the review store calls directly, without Caddy: the quick
// way to measure a store change (go test ./bench/ -run SeededReviewTimes -v). With
// BENCH_POSTGRES_DSN set it does the same on a fresh PostgreSQL schema. A store kept by
// BENCH_SEEDTIME_KEEP is timed again without seeding with BENCH_SEEDTIME_SQLITE (its
// path) or BENCH_SEEDTIME_SCHEMA; BENCH_SEEDTIME_ONLY times only the calls whose name
// contains it.
func TestSeededReviewTimes(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BENCH_SEEDTIME_RECORDS"))
	if n <= 0 {
		t.Skip("BENCH_SEEDTIME_RECORDS not set")
	}
	ctx := t.Context()
	shape := shapeOf(n)
	t.Run("sqlite", func(t *testing.T) {
		if os.Getenv("BENCH_SEEDTIME_SCHEMA") != "" {
			t.Skip("BENCH_SEEDTIME_SCHEMA: PostgreSQL only")
		}
		if path := os.Getenv("BENCH_SEEDTIME_SQLITE"); path != "" { // a kept store, seeded
			st, err := shadow.OpenSQLite(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			timeReviewCalls(t, st, shape)
			return
		}
		path := filepath.Join(t.TempDir(), "seed.db")
		if keep := os.Getenv("BENCH_SEEDTIME_KEEP"); keep != "" {
			path = filepath.Join(keep, "seed.db")
			t.Logf("kept store %s", path)
		}
		start := time.Now()
		if err := seedSQLite(ctx, path, shape); err != nil {
			t.Fatal(err)
		}
		t.Logf("seeded %d records in %s", n, time.Since(start).Round(time.Millisecond))
		st, err := shadow.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		timeReviewCalls(t, st, shape)
	})
	if dsn := os.Getenv("BENCH_POSTGRES_DSN"); dsn != "" {
		t.Run("postgres", func(t *testing.T) {
			if name := os.Getenv("BENCH_SEEDTIME_SCHEMA"); name != "" { // a kept schema, seeded
				st, err := shadow.OpenPostgres(ctx, dsn+"&search_path="+name)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				timeReviewCalls(t, st, shape)
				return
			}
			pg, err := newPGSchema(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if os.Getenv("BENCH_SEEDTIME_KEEP") == "" {
				defer pg.Drop()
			} else {
				t.Logf("kept schema %s", pg.Name)
			}
			start := time.Now()
			if err := seedPostgres(ctx, pg, shape); err != nil {
				t.Fatal(err)
			}
			t.Logf("seeded %d records in %s", n, time.Since(start).Round(time.Millisecond))
			st, err := shadow.OpenPostgres(ctx, pg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			timeReviewCalls(t, st, shape)
		})
	}
}

func timeReviewCalls(t *testing.T, st shadow.Store, s seedShape) {
	ctx := t.Context()
	calls := []struct {
		name string
		fn   func(i int) error
	}{
		{"Connections", func(int) error { _, err := st.Connections(ctx); return err }},
		{"resources", func(int) error {
			_, _, err := shadow.PendingResources(ctx, st, "bench", shadow.ResourceQuery{})
			return err
		}},
		{"resources page 3", func(int) error {
			q := shadow.ResourceQuery{}
			for range 3 {
				_, next, err := shadow.PendingResources(ctx, st, "bench", q)
				if err != nil {
					return err
				}
				q.Cursor = next
			}
			return nil
		}},
		{"resources ?type=Group", func(int) error {
			_, _, err := shadow.PendingResources(ctx, st, "bench", shadow.ResourceQuery{ResourceType: "Group"})
			return err
		}},
		{"resources ?type=User", func(int) error {
			_, _, err := shadow.PendingResources(ctx, st, "bench", shadow.ResourceQuery{ResourceType: "User"})
			return err
		}},
		{"resources ?user=", func(i int) error {
			_, _, err := shadow.PendingResources(ctx, st, "bench", shadow.ResourceQuery{User: fmt.Sprintf("user%d@example.org", (i*7919)%s.users)})
			return err
		}},
		{"resources ?group=", func(i int) error {
			_, _, err := shadow.PendingResources(ctx, st, "bench", shadow.ResourceQuery{Group: fmt.Sprintf("group-%d", (i*31)%s.groups)})
			return err
		}},
		{"resources ?errors=1", func(int) error {
			_, _, err := shadow.PendingResources(ctx, st, "bench", shadow.ResourceQuery{ErrorsOnly: true})
			return err
		}},
	}
	only := os.Getenv("BENCH_SEEDTIME_ONLY")
	for _, c := range calls {
		if only != "" && !strings.Contains(c.name, only) {
			continue
		}
		var times []time.Duration
		for i := range 20 {
			start := time.Now()
			if err := c.fn(i); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		t.Logf("%-24s p50 %10s  p95 %10s", c.name, ms(times[len(times)/2]), ms(times[len(times)*95/100]))
	}
}
