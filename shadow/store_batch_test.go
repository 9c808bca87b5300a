package shadow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBatch is a groupCommit over a fake database: save appends the record's hash to
// committed (even in a batch that fails later). block, when set, holds the first
// transaction until closed.
type fakeBatch struct {
	mu        sync.Mutex
	committed []string
	fail      map[string]bool // DedupeHash → save fails
	block     chan struct{}
	started   chan struct{}
}

func (f *fakeBatch) groupCommit() *groupCommit {
	return newGroupCommit(1, func(ctx context.Context, fn func(tx sqlBackend) error) error {
		if f.block != nil {
			close(f.started)
			<-f.block
			f.block = nil
		}
		return fn(nil)
	}, func(ctx context.Context, _ sqlBackend, call *saveCall) (Record, error) {
		if f.fail[call.rec.DedupeHash] {
			return Record{}, errors.New("bad record " + call.rec.DedupeHash)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.committed = append(f.committed, call.rec.DedupeHash)
		return Record{DedupeHash: call.rec.DedupeHash}, nil
	})
}

// TestGroupCommitFallback: a batch with one bad record is saved again record by record,
// so the others succeed and only the bad one's caller gets an error.
func TestGroupCommitFallback(t *testing.T) {
	f := &fakeBatch{fail: map[string]bool{"bad": true}, block: make(chan struct{}), started: make(chan struct{})}
	g := f.groupCommit()
	// The first call holds the flusher, so the next ones queue up into one batch.
	firstDone := make(chan error, 1)
	go func() {
		_, err := g.do(t.Context(), &saveCall{rec: &Record{DedupeHash: "first"}})
		firstDone <- err
	}()
	<-f.started
	hashes := []string{"a", "bad", "b", "c"}
	errs := make([]error, len(hashes))
	var wg sync.WaitGroup
	for i, h := range hashes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := g.do(t.Context(), &saveCall{rec: &Record{DedupeHash: h}})
			if err == nil && out.DedupeHash != h {
				err = fmt.Errorf("answered with %q", out.DedupeHash)
			}
			errs[i] = err
		}()
	}
	waitQueued(t, g, len(hashes))
	close(f.block)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatalf("first: %v", err)
	}
	for i, h := range hashes {
		if (errs[i] != nil) != (h == "bad") {
			t.Errorf("%s: %v", h, errs[i])
		}
	}
	batches, records := g.batches.Load(), g.records.Load()
	if records != 4 || batches != 4 { // first; then a, b, c one by one after the failed batch
		t.Errorf("%d transactions, %d records; want 4, 4", batches, records)
	}
}

// waitQueued waits until the queue of g holds n calls.
func waitQueued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.queues[0].mu.Lock()
		got := len(g.queues[0].calls)
		g.queues[0].mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitCancel: a call whose context ends while it is queued gets the context's
// error and is never saved; a call taken into a transaction waits for its outcome even
// when its context ends meanwhile.
func TestGroupCommitCancel(t *testing.T) {
	f := &fakeBatch{block: make(chan struct{}), started: make(chan struct{})}
	g := f.groupCommit()
	takenCtx, cancelTaken := context.WithCancel(t.Context())
	takenDone := make(chan error, 1)
	go func() {
		_, err := g.do(takenCtx, &saveCall{rec: &Record{DedupeHash: "taken"}})
		takenDone <- err
	}()
	<-f.started // "taken" is in the running (blocked) transaction
	queuedCtx, cancelQueued := context.WithCancel(t.Context())
	queuedDone := make(chan error, 1)
	go func() {
		_, err := g.do(queuedCtx, &saveCall{rec: &Record{DedupeHash: "queued"}})
		queuedDone <- err
	}()
	waitQueued(t, g, 1)
	cancelQueued()
	if err := <-queuedDone; !errors.Is(err, context.Canceled) {
		t.Errorf("queued call: %v, want context.Canceled", err)
	}
	cancelTaken()
	select {
	case err := <-takenDone:
		t.Fatalf("taken call answered before its commit: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(f.block)
	if err := <-takenDone; err != nil {
		t.Errorf("taken call: %v, want success (it was committed)", err)
	}
	// A call whose context already ended is refused at once.
	if _, err := g.do(queuedCtx, &saveCall{rec: &Record{DedupeHash: "late"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("call with an ended context: %v", err)
	}
	// Let the flusher drain (it skips the withdrawn call).
	if _, err := g.do(t.Context(), &saveCall{rec: &Record{DedupeHash: "after"}}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.committed) != "[taken after]" {
		t.Errorf("committed %v, want [taken after]", f.committed)
	}
}

// TestSaveRecordThroughput measures SaveRecord with and without group commit at
// concurrency 1, 8 and 64 (SCIM_SHADOW_SAVE_BENCH=3s, say; PostgreSQL too when
// SCIM_SHADOW_TEST_POSTGRES is set): records/s, commits/s and records per commit.
func TestSaveRecordThroughput(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SCIM_SHADOW_SAVE_BENCH"))
	if err != nil || d <= 0 {
		t.Skip("set SCIM_SHADOW_SAVE_BENCH to a duration to measure")
	}
	stores := map[string]func(t *testing.T) Store{"sqlite": sqliteOpener()}
	if dsn := os.Getenv("SCIM_SHADOW_TEST_POSTGRES"); dsn != "" {
		stores["postgres"] = postgresOpener(t, dsn)
	}
	for _, name := range []string{"sqlite", "postgres"} {
		open := stores[name]
		if open == nil {
			continue
		}
		for _, grouped := range []bool{false, true} {
			for _, conc := range []int{1, 8, 64} {
				t.Run(name+"/grouped="+strconv.FormatBool(grouped)+"/c="+strconv.Itoa(conc), func(t *testing.T) {
					s := open(t)
					core := storeCore(s)
					if !grouped {
						core.saver = nil
					}
					var n, txs atomic.Int64
					stop := time.Now().Add(d)
					var wg sync.WaitGroup
					for g := range conc {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := 0; time.Now().Before(stop); i++ {
								rec := testRecord("bench", g*1_000_000+i)
								rec.Subjects = []Subject{{Kind: "user", Key: rec.Key}}
								if _, err := s.SaveRecord(t.Context(), rec); err != nil {
									t.Error(err)
									return
								}
								n.Add(1)
								if !grouped {
									txs.Add(1)
								}
							}
						}()
					}
					wg.Wait()
					if grouped {
						b, _ := core.saveStats()
						txs.Store(b)
					}
					t.Logf("%s grouped=%v c=%d: %.0f records/s, %.0f commits/s, %.1f records per commit",
						name, grouped, conc, float64(n.Load())/d.Seconds(), float64(txs.Load())/d.Seconds(),
						float64(n.Load())/float64(max(txs.Load(), 1)))
				})
			}
		}
	}
}

// storeCore is the sqlCore of a SQLite or PostgreSQL store.
func storeCore(s Store) *sqlCore {
	switch s := s.(type) {
	case *SQLiteStore:
		return &s.sqlCore
	case *PostgresStore:
		return &s.sqlCore
	}
	panic(fmt.Sprintf("%T", s))
}
