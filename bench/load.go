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

// Result is what a Load measured.
type Result struct {
	Requests int64
	Errors   int64
	FirstErr string
	Elapsed  time.Duration
	Lat      []time.Duration // sorted
}

// RPS is requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

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

// Run runs the load and returns its result.
func (l Load) Run(ctx context.Context) Result {
	conc := max(l.Concurrency, 1)
	client := newClient(conc)
	defer client.CloseIdleConnections()
	check := l.Check
	if check == nil {
		check = func(_ Req, status int, _ http.Header) bool { return status/100 == 2 }
	}
	if l.Duration > 0 { // with Total too: whichever comes first
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Duration)
		defer cancel()
	}
	var (
		seq      atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		lat      []time.Duration
		wg       sync.WaitGroup
	)
	fail := func(msg string) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, msg)
	}
	began := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 1024)
			for ctx.Err() == nil {
				i := int(seq.Add(1) - 1)
				if l.Total > 0 && i >= l.Total {
					break
				}
				req := l.Gen(i)
				hr, err := http.NewRequestWithContext(context.WithoutCancel(ctx), req.Method, l.Base+req.Path, bytes.NewReader(req.Body))
				if err != nil {
					fail(err.Error())
					continue
				}
				hr.Header.Set("Authorization", "Bearer bench-token")
				hr.Header.Set("Accept", "application/scim+json")
				if req.Body != nil {
					hr.Header.Set("Content-Type", "application/scim+json")
				}
				t0 := time.Now()
				resp, err := client.Do(hr)
				if err != nil {
					fail(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				own = append(own, time.Since(t0))
				if !check(req, resp.StatusCode, resp.Header) {
					fail(fmt.Sprintf("%s %s: status %d", req.Method, req.Path, resp.StatusCode))
				}
			}
			mu.Lock()
			lat = append(lat, own...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res := Result{Requests: int64(len(lat)), Errors: errs.Load(), Elapsed: time.Since(began), Lat: lat}
	if v, ok := firstErr.Load().(string); ok {
		res.FirstErr = v
	}
	slices.Sort(res.Lat)
	return res
}
