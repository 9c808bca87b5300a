package integration

import (
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// proxyMode is what a tcpProxy does with connections.
type proxyMode int32

const (
	proxyPass   proxyMode = iota // pipe to the target
	proxyRefuse                  // close every connection at once: the peer is down
	proxyHang                    // accept, read, never answer: the peer hangs
)

// tcpProxy stands between Caddy and PostgreSQL or the backend, so a test can cut the
// path (or make it hang) and restore it without touching the server behind it.
type tcpProxy struct {
	ln      net.Listener
	target  string
	mode    atomic.Int32
	hungReq atomic.Int64 // requests ("POST ", "PUT " …) read in hang mode
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.set(proxyRefuse) })
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// set switches the mode and drops every open connection, so the new mode applies to all
// traffic from now on.
func (p *tcpProxy) set(m proxyMode) {
	p.mode.Store(int32(m))
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
}

func (p *tcpProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		switch proxyMode(p.mode.Load()) {
		case proxyRefuse:
			c.Close()
		case proxyHang:
			p.track(c)
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					for _, m := range []string{"POST ", "PUT ", "PATCH ", "DELETE "} {
						p.hungReq.Add(int64(strings.Count(string(buf[:n]), m)))
					}
					if err != nil {
						return
					}
				}
			}()
		default:
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.track(c)
			p.track(up)
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}
}

// during runs fire in the background and calls fault once `after` of its requests have
// been answered (or all of them), then waits for the load to end.
func during(base func() string, us []string, l *ledger, after int, fault func()) {
	l.mu.Lock()
	start := l.sent
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { fire(base, us, l); close(done) }()
	for {
		l.mu.Lock()
		n := l.sent - start
		l.mu.Unlock()
		if n >= after {
			break
		}
		select {
		case <-done:
		case <-time.After(5 * time.Millisecond):
			continue
		}
		break
	}
	fault()
	<-done
}

// recordedNow counts the users of l answered recorded.
func recordedNow(l *ledger) int {
	n := 0
	for _, a := range l.last() {
		if a.Record != "" {
			n++
		}
	}
	return n
}

// failedClosed counts the answers that were the retryable rejection without a record.
func failedClosed(l *ledger) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, as := range l.answers {
		for _, a := range as {
			if a.Status == http.StatusTooManyRequests && a.Record == "" {
				n++
			}
		}
	}
	return n
}

// TestReliabilityDiskFull fills the "disk" under a running Caddy: the file size limit of
// the process (RLIMIT_FSIZE, set with prlimit) is lowered to the current size of the
// SQLite files, so the next growth fails with EFBIG exactly as a full disk fails with
// ENOSPC (SQLITE_FULL). A size-limited tmpfs needs privileges, and max_page_count is a
// per-connection pragma the store's pool would not keep. Writes must fail closed, nothing
// may be forwarded, and once space is back the IdP's retries are recorded.
func TestReliabilityDiskFull(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	be := startBackend(t)
	c := startCaddy(t, reliabilityConfig("store sqlite {{DB}}", "preview"), be)
	base := func() string { return c.URL }
	l := newLedger()
	fire(base, users("before", 100), l)
	db := filepath.Join(c.dir, "shadow.db")
	// The smaller of the two files: every write at an offset past it fails, so neither the
	// database file nor the WAL can grow (a larger WAL left by a big group commit would
	// otherwise leave the database file room to grow into, and the test would prove nothing).
	limit := int64(0)
	for _, f := range []string{db, db + "-wal"} {
		if st, err := os.Stat(f); err == nil && st.Size() > 0 && (limit == 0 || st.Size() < limit) {
			limit = st.Size()
		}
	}
	pid := fmt.Sprint(c.cmd.Process.Pid)
	setLimit := func(v string) {
		if out, err := exec.Command("prlimit", "--pid", pid, "--fsize="+v).CombinedOutput(); err != nil {
			t.Fatalf("prlimit: %v %s", err, out)
		}
	}
	setLimit(fmt.Sprintf("%d:", limit)) // the soft limit; the hard one stays unlimited
	full := users("full", size(400, 2000))
	fire(base, full, l)
	closed := failedClosed(l)
	if closed == 0 {
		t.Fatalf("no write failed with the disk full (limit %d bytes): the test proves nothing", limit)
	}
	// Reads keep working while the store cannot write (invariant 4).
	if status, out, _ := c.scim(t, http.MethodGet, "/Users?count=1", nil); status != http.StatusOK {
		t.Errorf("read with the disk full: %d %s", status, out)
	}
	setLimit("unlimited:")
	retryUnresolved(base, l, 3)
	c.Stop()
	checkIntegrity(t, db)
	c2 := startCaddyIn(t, c.dir, reliabilityConfig("store sqlite {{DB}}", "preview"), be)
	check(t, "disk full (sqlite, RLIMIT_FSIZE)", l, storeRecords(t, c2), be, expect{preview: true},
		fmt.Sprintf("%d failed closed, retried after space came back", closed))
}

// checkIntegrity runs SQLite's integrity check on a closed store file.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity check of %s: %q %v", path, res, err)
	}
}

// TestReliabilityPostgresOutage cuts the path between Caddy and PostgreSQL in the middle of
// a load — a TCP proxy in between drops every connection and refuses new ones ("down"), or
// accepts them and never answers ("hanging", a network partition) — then restores it. The
// server itself stays up: other tests share it. The failures are logged and counted.
func TestReliabilityPostgresOutage(t *testing.T) {
	for _, fault := range []proxyMode{proxyRefuse, proxyHang} {
		name := map[proxyMode]string{proxyRefuse: "down", proxyHang: "hanging"}[fault]
		t.Run(name, func(t *testing.T) {
			dsn := postgresDSN(t)
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			proxy := startProxy(t, u.Host)
			u.Host = proxy.Addr()
			be := startBackend(t)
			c := startCaddy(t, reliabilityConfig("store postgres "+u.String(), "preview"), be)
			base := func() string { return c.URL }
			l := newLedger()
			fire(base, users("pg-before", 100), l)
			n := size(600, 3000)
			if fault == proxyHang {
				n = size(200, 600) // each write waits for the store timeout
			}
			var readStatus int
			began := time.Now()
			during(base, users("pg-"+name, n), l, 50, func() {
				proxy.set(fault)
				// Reads pass while the store is unreachable (invariant 4).
				readStatus, _, _ = c.scim(t, http.MethodGet, "/Users?count=1", nil)
			})
			took := time.Since(began)
			if readStatus != http.StatusOK {
				t.Errorf("read during the outage: %d", readStatus)
			}
			closed := failedClosed(l)
			if closed == 0 {
				t.Fatal("no write failed during the outage: the test proves nothing")
			}
			if errs := metricSum(t, c, "scim_shadow_store_errors_total"); errs == 0 {
				t.Error("store errors not counted in scim_shadow_store_errors_total")
			}
			proxy.set(proxyPass)
			retryUnresolved(base, l, 3)
			check(t, "postgres "+name+" mid-load (tcp proxy)", l, storeRecords(t, c), be, expect{preview: true},
				fmt.Sprintf("%d failed closed (%d writes in %s), retried after restore", closed, n, took.Round(100*time.Millisecond)))
		})
	}
}

// metricSum adds up the samples of a metric on Caddy's admin /metrics.
func metricSum(t *testing.T, c *caddyProc, name string) float64 {
	t.Helper()
	status, body := do(t, http.MethodGet, c.AdminURL+"/metrics", nil, map[string]string{})
	if status != http.StatusOK {
		t.Fatalf("admin /metrics: %d", status)
	}
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// TestReliabilityPostgresRestart stops the PostgreSQL server mid-load and starts it again.
// It runs only under make soak with SCIM_SHADOW_PG_CTL set (e.g. "pg_ctlcluster 15 main"),
// because it takes the server away from every other test.
func TestReliabilityPostgresRestart(t *testing.T) {
	ctl := os.Getenv("SCIM_SHADOW_PG_CTL")
	if ctl == "" || !soak() {
		t.Skip("set SCIM_SHADOW_SOAK=1 and SCIM_SHADOW_PG_CTL (make soak) to stop and start PostgreSQL")
	}
	pg := func(action string) {
		args := append(strings.Fields(ctl), action)
		if action == "stop" {
			args = append(args, "-m", "fast")
		}
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	be := startBackend(t)
	c := startCaddy(t, reliabilityConfig("store postgres "+postgresDSN(t), "preview"), be)
	base := func() string { return c.URL }
	l := newLedger()
	var stopped atomic.Bool
	t.Cleanup(func() {
		if stopped.Load() {
			pg("start")
		}
	})
	during(base, users("pgr", 3000), l, 500, func() {
		pg("stop")
		stopped.Store(true)
		time.Sleep(2 * time.Second)
		pg("start")
		stopped.Store(false)
	})
	closed := failedClosed(l)
	waitPostgres(t)
	retryUnresolved(base, l, 5)
	check(t, "postgres stopped + restarted mid-load", l, storeRecords(t, c), be, expect{preview: true},
		fmt.Sprintf("%d failed closed, retried after restart", closed))
}

// waitPostgres waits until PostgreSQL accepts connections again.
func waitPostgres(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:5432", time.Second)
		if err == nil {
			conn.Close()
			time.Sleep(500 * time.Millisecond)
			return
		}
	}
	t.Fatal("PostgreSQL did not come back")
}

// backendVia returns a Caddyfile for mode whose reverse_proxy goes to addr, with an
// optional response header timeout.
func backendVia(mode, addr, timeout string) string {
	cfg := reliabilityConfig("store sqlite {{DB}}", mode)
	rp := "reverse_proxy " + addr
	if timeout != "" {
		rp += " {\n\t\t\ttransport http {\n\t\t\t\tresponse_header_timeout " + timeout + "\n\t\t\t}\n\t\t}"
	}
	return strings.Replace(cfg, "reverse_proxy {{BACKEND}}", rp, 1)
}

// TestReliabilityBackendDown takes the backend away (refused connections) and makes it hang
// (accepts, never answers), in both modes. Live: the IdP gets a gateway error and retries;
// nothing is applied twice. Preview: the writes are still recorded (live state
// unavailable is a warning) and nothing is forwarded.
func TestReliabilityBackendDown(t *testing.T) {
	for _, mode := range []string{"live", "preview"} {
		for _, fault := range []proxyMode{proxyRefuse, proxyHang} {
			name := map[proxyMode]string{proxyRefuse: "down", proxyHang: "hanging"}[fault]
			t.Run(mode+"-"+name, func(t *testing.T) {
				be := startBackend(t)
				proxy := startProxy(t, strings.TrimPrefix(be.URL, "http://"))
				// Live needs a timeout for a hanging backend; preview bounds its live-state read
				// itself (DefaultPredictTimeout).
				timeout := ""
				if mode == "live" {
					timeout = "2s"
				}
				c := startCaddy(t, backendVia(mode, proxy.Addr(), timeout), nil)
				base := func() string { return c.URL }
				l := newLedger()
				fire(base, users(name+"-ok", 50), l)
				proxy.set(fault)
				n := size(64, 256)
				began := time.Now()
				fire(base, users(name, n), l)
				took := time.Since(began)
				hung := proxy.hungReq.Load()
				proxy.set(proxyPass)
				retryUnresolved(base, l, 3)
				ex := expect{preview: mode == "preview", live: mode == "live"}
				note := fmt.Sprintf("%d writes while %s took %s", n, name, took.Round(100*time.Millisecond))
				if mode == "live" && fault == proxyHang {
					// No write reached the hanging backend twice (the proxy does not retry a POST);
					// counting request lines on raw reads may miss a few, never add.
					if hung > int64(n) || hung == 0 {
						t.Errorf("hanging backend received %d writes, want at most %d", hung, n)
					}
					note += fmt.Sprintf("; %d seen by the hanging backend", hung)
				}
				if mode == "preview" && hung > 0 {
					t.Errorf("preview forwarded %d writes to the hanging backend", hung)
				}
				check(t, "backend "+name+" ("+mode+")", l, storeRecords(t, c), be, ex, note)
			})
		}
	}
}

// abortRequest sends a write whose body stops half way, then hangs up.
func abortRequest(base, user string) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return
	}
	body := userBody(user)
	fmt.Fprintf(conn, "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/scim+json\r\nContent-Length: %d\r\n\r\n%s",
		backendToken, len(body)+50, body[:len(body)/2])
	time.Sleep(5 * time.Millisecond)
	conn.Close()
}

// TestReliabilityClientAbortUnderLoad mixes clients that hang up mid-body into a load, in
// both modes: a half body is never recorded nor forwarded; the IdP's retry goes through.
func TestReliabilityClientAbortUnderLoad(t *testing.T) {
	for _, mode := range []string{"live", "preview"} {
		t.Run(mode, func(t *testing.T) {
			be := startBackend(t)
			c := startCaddy(t, reliabilityConfig("store sqlite {{DB}}", mode), be)
			base := func() string { return c.URL }
			l := newLedger()
			all := users("abort-"+mode, size(500, 3000))
			var aborted []string
			var normal []string
			for i, u := range all {
				if i%5 == 0 {
					aborted = append(aborted, u)
				} else {
					normal = append(normal, u)
				}
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem := make(chan struct{}, 16)
				for _, u := range aborted {
					sem <- struct{}{}
					wg.Add(1)
					go func(u string) {
						defer wg.Done()
						abortRequest(c.URL, u)
						l.add(u, answer{Err: fmt.Errorf("client aborted")})
						<-sem
					}(u)
				}
			}()
			fire(base, normal, l)
			wg.Wait()
			time.Sleep(300 * time.Millisecond) // decisions finish after the client is gone
			records, creates := storeRecords(t, c), backendCreates(be)
			for _, u := range aborted {
				if len(records[u]) > 0 || creates[u] > 0 {
					t.Errorf("half body of %s: recorded %v, forwarded %d", u, records[u], creates[u])
				}
			}
			retryUnresolved(base, l, 3)
			check(t, "client abort mid-body ("+mode+")", l, storeRecords(t, c), be,
				expect{preview: mode == "preview", live: mode == "live"},
				fmt.Sprintf("%d of %d hung up mid-body, then retried", len(aborted), len(all)))
		})
	}
}

// TestReliabilityModeSwitchUnderLoad switches preview to live in the middle of a load,
// once through the review API (run-time) and once by a config reload: each write is
// either recorded or forwarded, never both, never neither.
func TestReliabilityModeSwitchUnderLoad(t *testing.T) {
	for _, how := range []string{"api", "reload"} {
		t.Run(how, func(t *testing.T) {
			be := startBackend(t)
			c := startCaddy(t, reliabilityConfig("store sqlite {{DB}}", "preview"), be)
			base := func() string { return c.URL }
			l := newLedger()
			during(base, users("switch-"+how, size(1000, 5000)), l, size(300, 1500), func() {
				if how == "api" {
					if status, out := do(t, http.MethodPut, c.URL+"/review/connections/acme/mode", `{"mode":"live"}`, map[string]string{}); status != http.StatusOK {
						t.Errorf("mode switch: %d %s", status, out)
					}
					return
				}
				cfg := reliabilityConfig("store sqlite "+filepath.Join(c.dir, "shadow.db"), "live")
				cfg = strings.NewReplacer("{{ADMIN}}", strings.TrimPrefix(c.AdminURL, "http://"),
					"{{PORT}}", c.URL[strings.LastIndex(c.URL, ":")+1:], "{{BACKEND}}", strings.TrimPrefix(be.URL, "http://")).Replace(cfg)
				began := time.Now()
				if status, out := do(t, http.MethodPost, c.AdminURL+"/load", cfg, map[string]string{"Content-Type": "text/caddyfile"}); status != http.StatusOK {
					t.Errorf("reload: %d %s", status, out)
				}
				t.Logf("reload took %s; %d answered by then", time.Since(began), func() int { l.mu.Lock(); defer l.mu.Unlock(); return l.sent }())
			})
			retryUnresolved(base, l, 3)
			rec, fwd := 0, 0
			for _, a := range l.last() {
				switch a.Status {
				case http.StatusTooManyRequests:
					rec++
				case http.StatusCreated:
					fwd++
				}
			}
			if fwd == 0 {
				// Timing only: the load may end before a slow reload does.
				t.Logf("the switch landed after the load: %d recorded", rec)
			}
			// Once the switch has returned, every write is applied.
			after := newLedger()
			fire(base, users("after-"+how, 200), after)
			for u, a := range after.last() {
				if a.Status != http.StatusCreated {
					t.Errorf("%s after the switch: %d %v", u, a.Status, a.Err)
					break
				}
			}
			for u, as := range after.answers {
				l.answers[u] = as
				l.sent += len(as)
			}
			check(t, "mode switch preview→live mid-load ("+how+")", l, storeRecords(t, c), be, expect{},
				fmt.Sprintf("%d answered recorded, %d applied", rec, fwd))
		})
	}
}

// TestReliabilityKillRestart SIGKILLs Caddy mid-load and starts it again on the same store:
// live on SQLite (every write answered 201 is at the backend once; the IdP's retry of a
// write whose answer was lost meets a 409, and the backend holds one user) and preview on
// PostgreSQL (every answered record is there; the SQLite case is
// TestPreviewCrashKeepsAnsweredRecords).
func TestReliabilityKillRestart(t *testing.T) {
	kinds := map[string]string{"live-sqlite": "store sqlite {{DB}}"}
	if os.Getenv("SCIM_SHADOW_TEST_POSTGRES") != "" {
		kinds["preview-postgres"] = "store postgres " + postgresDSN(t)
	}
	for name, store := range kinds {
		t.Run(name, func(t *testing.T) {
			mode := strings.SplitN(name, "-", 2)[0]
			be := startBackend(t)
			dir := t.TempDir()
			cfg := reliabilityConfig(store, mode)
			var cur atomic.Pointer[caddyProc]
			cur.Store(startCaddyIn(t, dir, cfg, be))
			base := func() string { return cur.Load().URL }
			l := newLedger()
			during(base, users("kill-"+mode, size(2000, 6000)), l, size(600, 2000), func() {
				cur.Load().Kill()
				cur.Store(startCaddyIn(t, dir, cfg, be))
			})
			cut := len(l.unresolved())
			retryUnresolved(base, l, 3)
			ex := expect{preview: mode == "preview", live: mode == "live"}
			note := fmt.Sprintf("%d cut off by the kill, retried", cut)
			if mode == "live" {
				note += fmt.Sprintf("; %d applied before the kill, retry got 409", allowConflictsAfterKill(t, l, be))
			}
			check(t, "SIGKILL + restart mid-load ("+name+")", l, storeRecords(t, cur.Load()), be, ex, note)
		})
	}
}

// allowConflictsAfterKill turns, in l, the 409 answer to a retry whose first attempt got
// no answer into 201 when the backend holds exactly one such user: the first attempt was
// applied and its answer died with Caddy; an IdP matches the existing user. The retries are
// taken out of the backend's log, so "forwarded exactly once" counts applied creates.
func allowConflictsAfterKill(t *testing.T, l *ledger, be *testBackend) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for user, as := range l.answers {
		last := as[len(as)-1]
		if last.Status != http.StatusConflict || as[0].Err == nil {
			continue
		}
		status, body := do(t, http.MethodGet, be.URL+"/scim/v2/Users?filter="+url.QueryEscape(`userName eq "`+user+`"`), nil, nil)
		if status != http.StatusOK || !strings.Contains(string(body), `"totalResults":1`) {
			t.Errorf("%s: 409 on retry but backend lookup %d %s", user, status, body)
			continue
		}
		as[len(as)-1].Status = http.StatusCreated
		for i := 1; i < len(as); i++ {
			be.dropLast(user)
		}
		n++
	}
	return n
}

// dropLast removes the last create of user from the backend's log.
func (b *testBackend) dropLast(user string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.requests) - 1; i >= 0; i-- {
		if b.requests[i].Method == http.MethodPost && strings.Contains(string(b.requests[i].Body), `"userName":"`+user+`"`) {
			b.requests = append(b.requests[:i], b.requests[i+1:]...)
			return
		}
	}
}
