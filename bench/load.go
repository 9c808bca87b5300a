package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Req is one request of a workload; Path includes the query.
type Req struct {
	Method, Path string
	Body         []byte
}

// Gen makes the i-th request of a run (i counts from 0 over all workers).
type Gen func(i int) Req

// Check says whether a response is the expected one.
type Check func(req Req, status int, header http.Header) bool

// Load is one run of a workload.
type Load struct {
	Base        string        // http://127.0.0.1:port
	Concurrency int           // workers, each with its own keep-alive connection
	Duration    time.Duration // run at most this long (0: no limit, with Total)
	Total       int           // run at most this many requests (0: no limit)
	Gen         Gen
	Check       Check // nil: any 2xx
}

// Result is what a Load or a FixedRate run measured.
type Result struct {
	Requests int64
	Errors   int64
	FirstErr string
	Elapsed  time.Duration
	Lat      []time.Duration // sorted
	// Unsent counts the requests of a FixedRate schedule not yet sent when its time bound
	// passed (0 for a Load).
	Unsent int64
	// PeakInFlight is the most requests a FixedRate run had in flight at once; equal to its
	// Workers, the pool was full and requests waited for a worker (0 for a Load).
	PeakInFlight int64
}

// RPS is requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0 // a load that did not run (NaN would stop report.json)
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Pct is the q-th quantile (0..1) of the latencies.
func (r Result) Pct(q float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Lat)-1))
	return r.Lat[i]
}

// newClient is an HTTP client with conns keep-alive connections to one host.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// orAny2xx is check, or a check that takes any 2xx answer when check is nil.
func orAny2xx(check Check) Check {
	if check != nil {
		return check
	}
	return func(_ Req, status int, _ http.Header) bool { return status/100 == 2 }
}

// tally collects what the workers of a run measured: the latencies of the answered
// requests and the failures (transport errors and answers the check refuses).
type tally struct {
	check    Check
	failures atomic.Int64
	firstErr atomic.Value
	mu       sync.Mutex
	lat      []time.Duration
}

func newTally(check Check) *tally { return &tally{check: orAny2xx(check)} }

func (t *tally) fail(msg string) {
	t.failures.Add(1)
	t.firstErr.CompareAndSwap(nil, msg)
}

// workerTally is one worker's latencies, kept apart until the worker is done.
type workerTally struct {
	*tally
	lat []time.Duration
}

func (t *tally) worker() *workerTally {
	return &workerTally{tally: t, lat: make([]time.Duration, 0, 1024)}
}

// record notes the outcome of req: resp, or err; an answer's latency counts from from.
func (w *workerTally) record(req Req, resp *http.Response, err error, from time.Time) {
	if err != nil {
		w.fail(err.Error())
		return
	}
	w.lat = append(w.lat, time.Since(from))
	if !w.check(req, resp.StatusCode, resp.Header) {
		w.fail(fmt.Sprintf("%s %s: status %d", req.Method, req.Path, resp.StatusCode))
	}
}

// done adds the worker's latencies to the tally.
func (w *workerTally) done() {
	w.mu.Lock()
	w.tally.lat = append(w.tally.lat, w.lat...)
	w.mu.Unlock()
}

// result is the tally as a Result of a run that began at began and ends now.
func (t *tally) result(began time.Time) Result {
	res := Result{Requests: int64(len(t.lat)), Errors: t.failures.Load(), Elapsed: time.Since(began), Lat: t.lat}
	res.FirstErr, _ = t.firstErr.Load().(string)
	slices.Sort(res.Lat)
	return res
}

// send sends one request of a workload with the harness's headers and reads the answer's
// body to the end. The request is not cancelled with ctx: a run that ends lets the
// requests in flight finish.
func send(ctx context.Context, client *http.Client, base string, req Req) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(context.WithoutCancel(ctx), req.Method, base+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.Path, err)
	}
	hr.Header.Set("Authorization", "Bearer bench-token")
	hr.Header.Set("Accept", "application/scim+json")
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// Run runs the load and returns its result.
func (l Load) Run(ctx context.Context) Result {
	conc := max(l.Concurrency, 1)
	client := newClient(conc)
	defer client.CloseIdleConnections()
	if l.Duration > 0 { // with Total too: whichever comes first
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Duration)
		defer cancel()
	}
	var (
		seq atomic.Int64
		wg  sync.WaitGroup
	)
	measured := newTally(l.Check)
	began := time.Now()
	for range conc {
		wg.Go(func() {
			own := measured.worker()
			defer own.done()
			for ctx.Err() == nil {
				i := int(seq.Add(1) - 1)
				if l.Total > 0 && i >= l.Total {
					break
				}
				req := l.Gen(i)
				t0 := time.Now()
				resp, err := send(ctx, client, l.Base, req)
				own.record(req, resp, err, t0)
			}
		})
	}
	wg.Wait()
	return measured.result(began)
}

// raiseTo sets v to n if n is larger.
func raiseTo(v *atomic.Int64, n int64) {
	for old := v.Load(); n > old && !v.CompareAndSwap(old, n); old = v.Load() {
	}
}

// FixedRate is an open-loop run of a workload: requests are scheduled at Rate per second
// for Duration, whatever the answers, and each request's latency is measured from its
// scheduled send time to the end of its answer, not from when it was sent (as wrk2 does,
// correcting coordinated omission): a stall of the server, or of the client, counts
// against every request scheduled during it.
type FixedRate struct {
	Base     string        // http://127.0.0.1:port
	Rate     float64       // scheduled requests per second
	Duration time.Duration // the schedule's length: Rate × Duration requests
	// Workers bounds the requests in flight, each worker with its own keep-alive
	// connection. A request whose time comes while every worker is busy waits for one,
	// its latency still counted from its scheduled time.
	Workers int
	Gen     Gen
	Check   Check // nil: any 2xx
}

// Run runs the schedule and returns its result: Requests answered, their latencies from
// schedule, Elapsed from the first scheduled time to the last answer. A request not sent
// by Duration plus a drain time (half the Duration, at least a second) is not sent and is
// counted in Unsent; the requests in flight then finish.
func (f FixedRate) Run(ctx context.Context) Result {
	if f.Rate <= 0 || f.Duration <= 0 {
		return Result{}
	}
	total := max(int(f.Rate*f.Duration.Seconds()), 1)
	workers := max(f.Workers, 1)
	client := newClient(workers)
	defer client.CloseIdleConnections()
	var (
		next     atomic.Int64 // the next request of the schedule to take
		sent     atomic.Int64
		inFlight atomic.Int64
		peak     atomic.Int64
		wg       sync.WaitGroup
	)
	measured := newTally(f.Check)
	began := time.Now()
	sendBy := began.Add(f.Duration + max(f.Duration/2, time.Second))
	scheduledAt := func(i int) time.Time {
		return began.Add(time.Duration(float64(i) * float64(time.Second) / f.Rate))
	}
	for range workers {
		wg.Go(func() {
			own := measured.worker()
			defer own.done()
			timer := time.NewTimer(0)
			defer timer.Stop()
		schedule:
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= total {
					break
				}
				scheduled := scheduledAt(i)
				if wait := time.Until(scheduled); wait > 0 {
					timer.Reset(wait)
					select {
					case <-ctx.Done():
						break schedule
					case <-timer.C:
					}
				}
				if time.Now().After(sendBy) {
					break
				}
				sent.Add(1)
				raiseTo(&peak, inFlight.Add(1))
				req := f.Gen(i)
				resp, err := send(ctx, client, f.Base, req)
				inFlight.Add(-1)
				own.record(req, resp, err, scheduled)
			}
		})
	}
	wg.Wait()
	res := measured.result(began)
	res.Unsent, res.PeakInFlight = int64(total)-sent.Load(), peak.Load()
	return res
}
