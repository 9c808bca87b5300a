package integration

// The reliability suite: load and faults against the real Caddy, the example backend,
// SQLite files and PostgreSQL. Every scenario ends in one row of a table (printed by
// TestMain): requests sent, recorded, forwarded, lost, and whether the invariants of
// ARCHITECTURE.md held. `make test` runs it small; `make soak` (SCIM_SHADOW_SOAK=1) runs
// it at full size.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// soak reports whether the long suite runs.
func soak() bool { return os.Getenv("SCIM_SHADOW_SOAK") != "" }

// size is n in the fast suite and soakN under make soak.
func size(n, soakN int) int {
	if soak() {
		return soakN
	}
	return n
}

// loadWorkers is the concurrency of every load.
const loadWorkers = 64

// row is one line of the reliability table.
type row struct {
	Scenario                        string
	Sent, Recorded, Forwarded, Lost int
	Held                            bool
	Note                            string
}

var table struct {
	mu   sync.Mutex
	rows []row
}

// printReliabilityTable prints the rows collected by the scenarios that ran.
func printReliabilityTable() {
	table.mu.Lock()
	defer table.mu.Unlock()
	if len(table.rows) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-46s %8s %9s %10s %5s %5s  %s\n", "scenario", "sent", "recorded", "forwarded", "lost", "held", "note")
	for _, r := range table.rows {
		held := "yes"
		if !r.Held {
			held = "NO"
		}
		fmt.Fprintf(&b, "%-46s %8d %9d %10d %5d %5s  %s\n", r.Scenario, r.Sent, r.Recorded, r.Forwarded, r.Lost, held, r.Note)
	}
	fmt.Print(b.String())
	if path := os.Getenv("SCIM_SHADOW_SOAK_TABLE"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(b.String())
			_ = f.Close()
		}
	}
}

// answer is what one request got.
type answer struct {
	Status int
	Record string // X-Scim-Shadow-Record
	Err    error  // transport error: no answer
}

// ledger keeps every answer of a scenario's writes by userName.
type ledger struct {
	mu      sync.Mutex
	sent    int
	answers map[string][]answer
}

func newLedger() *ledger { return &ledger{answers: map[string][]answer{}} }

func (l *ledger) add(user string, a answer) {
	l.mu.Lock()
	l.sent++
	l.answers[user] = append(l.answers[user], a)
	l.mu.Unlock()
}

// last returns the last answer of each user.
func (l *ledger) last() map[string]answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]answer, len(l.answers))
	for u, as := range l.answers {
		out[u] = as[len(as)-1]
	}
	return out
}

// unresolved returns the users whose last answer was neither recorded (429 with a record
// id) nor applied (201) nor a conflict (409: the user exists; an IdP matches it): the ones
// an IdP would send again.
func (l *ledger) unresolved() []string {
	var out []string
	for u, a := range l.last() {
		if !(a.Status == http.StatusTooManyRequests && a.Record != "") && a.Status != http.StatusCreated && a.Status != http.StatusConflict {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// loadClient is shared by every load: enough idle connections for the workers.
var loadClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second},
}

// userBody is the create an IdP sends for user.
func userBody(user string) string {
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + user +
		`","favorite_color":"teal","password":"p4ss-` + user + `","active":true}`
}

// fire sends one create per user from loadWorkers goroutines to the Caddy base() returns
// at send time, and notes every answer in l. Each request is sent once.
func fire(base func() string, users []string, l *ledger) {
	jobs := make(chan string)
	var wg sync.WaitGroup
	for w := 0; w < loadWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for user := range jobs {
				l.add(user, send(base(), user))
			}
		}()
	}
	for _, u := range users {
		jobs <- u
	}
	close(jobs)
	wg.Wait()
}

// send posts one create.
func send(base, user string) answer {
	req, err := http.NewRequest(http.MethodPost, base+"/scim/v2/Users", strings.NewReader(userBody(user)))
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+backendToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := loadClient.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{Status: resp.StatusCode, Record: resp.Header.Get("X-Scim-Shadow-Record")}
}

// users returns n userNames with a prefix.
func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d@example.com", prefix, i)
	}
	return out
}

// storeRecords reads every record of connection acme through the review API of c:
// record ids by key (a key recorded twice has two ids).
func storeRecords(t *testing.T, c *caddyProc) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	cursor := ""
	for {
		status, body := do(t, http.MethodGet, c.URL+"/review/connections/acme/records?limit=1000&cursor="+url.QueryEscape(cursor), nil, map[string]string{})
		if status != http.StatusOK {
			t.Fatalf("listing records: %d %s", status, body)
		}
		var list struct {
			Records []struct {
				ID  int64  `json:"id"`
				Key string `json:"key"`
			} `json:"records"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("listing records: %v", err)
		}
		for _, r := range list.Records {
			out[r.Key] = append(out[r.Key], strconv.FormatInt(r.ID, 10))
		}
		if cursor = list.NextCursor; cursor == "" {
			return out
		}
	}
}

// backendCreates counts the creates the backend received, by userName.
func backendCreates(be *testBackend) map[string]int {
	out := map[string]int{}
	for _, r := range be.Requests(http.MethodPost) {
		if strings.HasSuffix(r.URL, "/.search") {
			continue
		}
		var u struct {
			UserName string `json:"userName"`
		}
		_ = json.Unmarshal(r.Body, &u)
		out[u.UserName]++
	}
	return out
}

// expect says which answers a scenario allows.
type expect struct {
	preview bool // every write must be answered 429 (recorded or failing closed); none forwarded
	live    bool // every write must be answered 201 or a gateway error; forwarded at most once
}

// check compares what the IdP received (l), what the store holds and what the backend got
// against the invariants, and adds the scenario's row. A user is lost when it was answered
// recorded but is not in the store, answered 201 but not at the backend, or still
// unresolved at the end (after the retries the scenario made).
func check(t *testing.T, name string, l *ledger, records map[string][]string, be *testBackend, ex expect, note string) {
	t.Helper()
	creates := backendCreates(be)
	held := true
	fail := func(format string, args ...any) {
		held = false
		t.Errorf(format, args...)
	}
	lost := 0
	for user, as := range l.answers {
		everRecorded, everCreated := "", false
		for _, a := range as {
			switch {
			case a.Err != nil:
			case a.Status == http.StatusTooManyRequests:
				if a.Record != "" {
					if everRecorded != "" && everRecorded != a.Record {
						fail("%s: retry recorded as %s, first as %s (not deduplicated)", user, a.Record, everRecorded)
					}
					everRecorded = a.Record
				}
			case a.Status == http.StatusCreated:
				everCreated = true
			case ex.preview:
				fail("%s: preview answered %d, want the retryable 429", user, a.Status)
			case a.Status != http.StatusBadGateway && a.Status != http.StatusGatewayTimeout:
				fail("%s: live answered %d", user, a.Status)
			}
		}
		if everRecorded != "" && !contains(records[user], everRecorded) {
			lost++
			fail("%s: answered recorded as %s, store has %v (invariant 2)", user, everRecorded, records[user])
		}
		if n := len(records[user]); n > 1 {
			fail("%s recorded %d times: %v", user, n, records[user])
		}
		if everCreated && creates[user] != 1 {
			lost++
			fail("%s: answered 201, backend got it %d times", user, creates[user])
		}
		if !everCreated && creates[user] > 0 && everRecorded != "" && ex.preview {
			fail("%s: recorded in preview and forwarded (invariant 1)", user)
		}
		if creates[user] > 1 {
			fail("%s forwarded %d times", user, creates[user])
		}
	}
	if ex.preview && len(creates) > 0 {
		fail("backend received %d creates in preview (invariant 1)", len(creates))
	}
	unresolved := l.unresolved()
	if len(unresolved) > 0 {
		lost += len(unresolved)
		fail("%d writes neither recorded nor applied at the end, e.g. %s: %+v", len(unresolved), unresolved[0], l.answers[unresolved[0]])
	}
	recorded := 0
	for user := range l.answers {
		if len(records[user]) > 0 {
			recorded++
		}
	}
	forwarded := 0
	for user := range l.answers {
		if creates[user] > 0 {
			forwarded++
		}
	}
	r := row{Scenario: name, Sent: l.sent, Recorded: recorded, Forwarded: forwarded, Lost: lost, Held: held, Note: note}
	table.mu.Lock()
	table.rows = append(table.rows, r)
	table.mu.Unlock()
	t.Logf("%+v", r)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// retryUnresolved sends the unresolved writes again, as the IdP would after Retry-After,
// until none is left or tries run out.
func retryUnresolved(base func() string, l *ledger, tries int) {
	for i := 0; i < tries; i++ {
		left := l.unresolved()
		if len(left) == 0 {
			return
		}
		fire(base, left, l)
	}
}

// reliabilityConfig is the preview Caddyfile of the suite with a store and a mode.
func reliabilityConfig(store, mode string) string {
	return strings.ReplaceAll(strings.Replace(previewCaddyfile, "mode preview", "mode "+mode, 1), "{{STORE}}", store)
}

// TestReliabilityLoad: every write of a concurrent load is answered with the retryable
// rejection and recorded exactly once (preview, on each store), or forwarded exactly once
// (live).
func TestReliabilityLoad(t *testing.T) {
	n := size(1000, 10000)
	for name, store := range storeKinds(t) {
		t.Run("preview-"+name, func(t *testing.T) {
			be := startBackend(t)
			c := startCaddy(t, reliabilityConfig(store(t), "preview"), be)
			l := newLedger()
			began := time.Now()
			fire(func() string { return c.URL }, users("load", n), l)
			took := time.Since(began)
			for user, a := range l.last() {
				if a.Status != http.StatusTooManyRequests || a.Record == "" {
					t.Errorf("%s: %d record %q err %v, want 429 with a record", user, a.Status, a.Record, a.Err)
					break
				}
			}
			// The IdP retries: the same writes again are deduplicated.
			retry := users("load", n)[:n/10]
			fire(func() string { return c.URL }, retry, l)
			check(t, "load preview "+name, l, storeRecords(t, c), be, expect{preview: true},
				fmt.Sprintf("%d writes + %d retries, c=%d, %.0f req/s", n, len(retry), loadWorkers, float64(n)/took.Seconds()))
		})
	}
	t.Run("live", func(t *testing.T) {
		be := startBackend(t)
		c := startCaddy(t, reliabilityConfig("store sqlite {{DB}}", "live"), be)
		l := newLedger()
		began := time.Now()
		fire(func() string { return c.URL }, users("live", n), l)
		took := time.Since(began)
		for user, a := range l.last() {
			if a.Status != http.StatusCreated {
				t.Errorf("%s: %d err %v, want 201", user, a.Status, a.Err)
				break
			}
		}
		check(t, "load live", l, storeRecords(t, c), be, expect{live: true},
			fmt.Sprintf("%d writes, c=%d, %.0f req/s", n, loadWorkers, float64(n)/took.Seconds()))
	})
}
