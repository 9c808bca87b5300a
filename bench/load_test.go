package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func getRoot(int) Req { return Req{Method: http.MethodGet, Path: "/"} }

// The bounds of these tests hold on a loaded machine: a request cannot be sent before its
// scheduled time, nor answered before the server lets it go; only the achieved rate's lower
// bound depends on the machine, and it is loose.

// TestFixedRateKeepsTheSchedule: at a low rate every scheduled request is answered, spread
// over the schedule (not sent early), at about the rate asked.
func TestFixedRateKeepsTheSchedule(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}))
	defer srv.Close()
	const rate, requests = 50.0, 100
	start := time.Now()
	res := FixedRate{Base: srv.URL, Rate: rate, Duration: 2 * time.Second, Workers: 4, Gen: getRoot}.Run(context.Background())
	if res.Requests != requests || res.Errors != 0 || res.Unsent != 0 {
		t.Fatalf("requests %d, errors %d (%s), unsent %d; want %d, 0, 0", res.Requests, res.Errors, res.FirstErr, res.Unsent, requests)
	}
	if last, least := arrivals[len(arrivals)-1].Sub(start), time.Duration(float64(requests-1)/rate*float64(time.Second)); last < least {
		t.Errorf("the last request arrived %s after the start, sooner than its schedule allows (%s)", last, least)
	}
	if got := res.RPS(); got > rate*1.02 || got < rate*0.75 {
		t.Errorf("achieved %.1f requests/s at a rate of %.0f", got, rate)
	}
	if res.PeakInFlight < 1 || res.PeakInFlight > 4 {
		t.Errorf("peak in flight %d with 4 workers", res.PeakInFlight)
	}
}

// TestFixedRateCountsAStallFromTheSchedule: the server stops answering for 300 ms; every
// request scheduled during the stall counts the time it waited, whether it waited in the
// server or for a free worker, so at least the 20 requests scheduled in the stall's first
// 200 ms take 100 ms or more. Measured from the send, only the few in flight would.
func TestFixedRateCountsAStallFromTheSchedule(t *testing.T) {
	const stall = 300 * time.Millisecond
	var served sync.Mutex // held through the stall: the server answers one request at a time
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Lock()
		defer served.Unlock()
		if arrived.Add(1) == 10 {
			time.Sleep(stall)
		}
	}))
	defer srv.Close()
	const workers = 4
	res := FixedRate{Base: srv.URL, Rate: 100, Duration: time.Second, Workers: workers, Gen: getRoot}.Run(context.Background())
	if res.Requests != 100 || res.Errors != 0 || res.Unsent != 0 {
		t.Fatalf("requests %d, errors %d (%s), unsent %d; want 100, 0, 0", res.Requests, res.Errors, res.FirstErr, res.Unsent)
	}
	slow := 0
	for _, l := range res.Lat {
		if l >= 100*time.Millisecond {
			slow++
		}
	}
	if slow < 20 {
		t.Errorf("%d requests took ≥ 100 ms from their schedule, want ≥ 20 (p50 %s, max %s)", slow, res.Pct(0.5), res.Pct(1))
	}
	if res.Pct(1) < stall {
		t.Errorf("slowest %s, less than the stall", res.Pct(1))
	}
	if res.PeakInFlight != workers {
		t.Errorf("peak in flight %d, want every worker (%d) busy during the stall", res.PeakInFlight, workers)
	}
}

// TestFixedRateIsBoundedInTime: with the server answering after the schedule and its drain
// time are over, the rest of the schedule is not sent.
func TestFixedRateIsBoundedInTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(2500 * time.Millisecond) // past the 1 s schedule and its 1 s drain time
	}))
	defer srv.Close()
	res := FixedRate{Base: srv.URL, Rate: 20, Duration: time.Second, Workers: 1, Gen: getRoot}.Run(context.Background())
	if res.Requests != 1 || res.Unsent != 19 {
		t.Errorf("requests %d, unsent %d; want 1 answered and 19 not sent", res.Requests, res.Unsent)
	}
	if res.RPS() > 20*0.98 {
		t.Errorf("achieved %.1f requests/s, not short of the rate", res.RPS())
	}
}

// TestResultOfNoLoad: a load that did not run (a scenario part with a count of 0) has a
// rate of 0, and its report encodes (a NaN rate stopped report.json).
func TestResultOfNoLoad(t *testing.T) {
	var r Result
	if rps := r.RPS(); rps != 0 {
		t.Errorf("RPS of no load = %v, want 0", rps)
	}
	if _, err := json.Marshal(statsOf(r)); err != nil {
		t.Errorf("the stats of no load do not encode: %v", err)
	}
}

// TestProcCPUTime: the CPU time read from /proc grows by about the CPU a busy loop of this
// process burns, and never by more than the loop's wall time per thread that ran it.
func TestProcCPUTime(t *testing.T) {
	before, err := procCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	x := 0
	for time.Since(start) < 300*time.Millisecond {
		x++
	}
	wall := time.Since(start)
	after, err := procCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The loop's thread may be descheduled on a loaded machine, and ticks are 10 ms: a
	// quarter of the loop's wall time is a loose lower bound; the upper bound allows the
	// runtime's other threads (GC, the test framework) the same again.
	if used := after - before; used < wall/4 || used > 2*wall+20*time.Millisecond {
		t.Fatalf("CPU time grew by %s over a %s busy loop (%d iterations)", used, wall, x)
	}
}
