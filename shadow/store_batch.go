package shadow

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit of SaveRecord (issue H, bench/NOTES.md). Each commit costs an fsync
// (~4.6 ms on the bench disk), so one transaction per record caps ingest at ~200 records
// a second. Concurrent SaveRecord calls are queued instead; a flusher goroutine takes
// every queued call (up to maxSaveBatch) and saves them in ONE transaction, in arrival
// order, then answers each caller. No caller is answered before the commit that holds
// its record (invariant: an answered write is durable).
//
// Failure: when the batch transaction fails, the flusher saves each of its calls again in
// a transaction of its own, so one bad record does not fail the others, and every caller
// gets its own error.
//
// Cancellation: a call is queued, then taken by a flusher. A caller whose context ends
// while its call is still queued withdraws it and gets the context's error: it is never
// committed. Once taken, the call is committed or not regardless of the caller's
// context (the batch runs on a context of its own, bounded by saveBatchTimeout), and the caller waits for that outcome, so "failed" is never said of
// a committed record and success never of an uncommitted one.
//
// Dedupe: retries of one pending write (same connection and DedupeHash) always go to the
// same queue; inside a batch they are saved one after the other, so the second finds the
// row of the first and counts an attempt, as it would in separate transactions.

// maxSaveBatch bounds the records of one group commit.
const maxSaveBatch = 128

// saveBatchTimeout bounds one batch transaction and its fallbacks together: how long a
// caller whose call was taken may wait beyond its own deadline (the SQLite busy timeout).
const saveBatchTimeout = 15 * time.Second

// States of a saveCall.
const (
	callQueued    int32 = iota // in a queue, withdrawable
	callTaken                  // in a flusher's batch: the caller waits for the outcome
	callWithdrawn              // the caller gave up before it was taken
)

// saveCall is one queued SaveRecord.
type saveCall struct {
	rec      *Record
	args     []any     // recordArgs(rec)
	subjects []Subject // normalizeSubjects(rec.Subjects)
	dedupe   bool
	state    atomic.Int32
	done     chan struct{} // closed when out and err are set
	out      Record
	err      error
}

// saveQueue is the queue of one flusher.
type saveQueue struct {
	mu      sync.Mutex
	calls   []*saveCall
	running bool // a flusher goroutine owns the queue
}

// groupCommit batches SaveRecord calls over queues, one flusher each at most. SQLite
// has one queue (one writer); PostgreSQL several, so batches commit side by side on
// different connections.
type groupCommit struct {
	save func(ctx context.Context, tx sqlBackend, call *saveCall) (Record, error)
	// saveMany, when set, saves a whole batch in tx as save would one call after the
	// other (sqlCore.saveRecordsTx: one multi-row INSERT instead of a statement per
	// record); nil: save is called for each.
	saveMany func(ctx context.Context, tx sqlBackend, calls []*saveCall) ([]Record, error)
	inTx     func(ctx context.Context, fn func(tx sqlBackend) error) error
	queues   []saveQueue
	seed     maphash.Seed
	next     atomic.Uint64 // round robin for calls without a dedupe hash
	// Stats, for tests and benchmarks: transactions committed by flushers and the
	// records in them.
	batches, records atomic.Int64
}

func newGroupCommit(queues int, inTx func(ctx context.Context, fn func(tx sqlBackend) error) error,
	save func(ctx context.Context, tx sqlBackend, call *saveCall) (Record, error)) *groupCommit {
	return &groupCommit{save: save, inTx: inTx, queues: make([]saveQueue, max(queues, 1)), seed: maphash.MakeSeed()}
}

// queueOf picks the queue of call: by connection and dedupe hash when the call may be
// deduplicated, so that retries of one write never race in two transactions.
func (g *groupCommit) queueOf(call *saveCall) *saveQueue {
	if len(g.queues) == 1 {
		return &g.queues[0]
	}
	var i uint64
	if call.dedupe {
		var h maphash.Hash
		h.SetSeed(g.seed)
		h.WriteString(call.rec.Connection)
		h.WriteByte(0)
		h.WriteString(call.rec.DedupeHash)
		i = h.Sum64()
	} else {
		i = g.next.Add(1)
	}
	return &g.queues[i%uint64(len(g.queues))]
}

// do queues call and waits for its outcome (see the rules above).
func (g *groupCommit) do(ctx context.Context, call *saveCall) (Record, error) {
	if err := context.Cause(ctx); err != nil {
		return Record{}, err
	}
	call.done = make(chan struct{})
	q := g.queueOf(call)
	q.mu.Lock()
	q.calls = append(q.calls, call)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		// The queue was idle: this caller saves its own call (and whatever queued
		// meanwhile) without a hand-off to another goroutine, then leaves the rest to
		// a flusher.
		g.commit(g.take(q))
		q.mu.Lock()
		if len(q.calls) == 0 {
			q.calls, q.running = nil, false
		} else {
			go g.flush(q)
		}
		q.mu.Unlock()
		return call.out, call.err
	}
	select {
	case <-call.done:
		return call.out, call.err
	case <-ctx.Done():
		if call.state.CompareAndSwap(callQueued, callWithdrawn) {
			return Record{}, fmt.Errorf("waiting for the commit: %w", context.Cause(ctx))
		}
		<-call.done // taken: committed or not, say which
		return call.out, call.err
	}
}

// flush saves the calls of q, a batch at a time, until q is empty.
func (g *groupCommit) flush(q *saveQueue) {
	for {
		taken := g.take(q)
		if taken == nil {
			return
		}
		g.commit(taken)
	}
}

// take takes the next batch of q: its first maxSaveBatch calls, less those withdrawn.
// When q is empty it marks q idle and returns nil.
func (g *groupCommit) take(q *saveQueue) []*saveCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.calls) > 0 {
		n := min(len(q.calls), maxSaveBatch)
		taken := make([]*saveCall, 0, n)
		for _, c := range q.calls[:n] {
			if c.state.CompareAndSwap(callQueued, callTaken) {
				taken = append(taken, c)
			}
		}
		clear(q.calls[:n])
		q.calls = q.calls[n:]
		if len(taken) > 0 {
			return taken
		}
	}
	q.calls, q.running = nil, false
	return nil
}

// commit saves calls in one transaction, or, when that fails, each in its own, and
// answers them.
func (g *groupCommit) commit(calls []*saveCall) {
	if len(calls) == 0 {
		return
	}
	// One deadline for the batch and its fallbacks: a batch belongs to no caller.
	ctx, cancel := context.WithTimeout(context.Background(), saveBatchTimeout)
	defer cancel()
	outs := make([]Record, len(calls))
	err := g.inTx(ctx, func(tx sqlBackend) error {
		if g.saveMany != nil && len(calls) > 1 {
			saved, err := g.saveMany(ctx, tx, calls)
			copy(outs, saved)
			return err
		}
		for i, c := range calls {
			out, err := g.save(ctx, tx, c)
			if err != nil {
				return err
			}
			outs[i] = out
		}
		return nil
	})
	if err == nil {
		g.batches.Add(1)
		g.records.Add(int64(len(calls)))
		for i, c := range calls {
			c.out = outs[i]
			close(c.done)
		}
		return
	}
	if len(calls) == 1 {
		calls[0].err = err
		close(calls[0].done)
		return
	}
	for _, c := range calls {
		var out Record
		err := g.inTx(ctx, func(tx sqlBackend) error {
			var err error
			out, err = g.save(ctx, tx, c)
			return err
		})
		if err == nil {
			g.batches.Add(1)
			g.records.Add(1)
		}
		c.out, c.err = out, err
		close(c.done)
	}
}

// saveStats returns the transactions committed by SaveRecord's flushers and the records
// in them.
func (c *sqlCore) saveStats() (batches, records int64) {
	if c.saver == nil {
		return 0, 0
	}
	return c.saver.batches.Load(), c.saver.records.Load()
}

var errConcurrentRetry = errors.New("a concurrent write of the same request kept changing the record")
