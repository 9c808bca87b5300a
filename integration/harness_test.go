// Package integration runs a real Caddy binary with the scim-shadow module in front of the
// example SCIM backend and checks what the backend received and stored.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/examples/backend"
)

// caddyBin is the Caddy binary under test: $SCIM_SHADOW_CADDY, or built from ./cmd/caddy.
var caddyBin string

const backendToken = "test-token"

func TestMain(m *testing.M) {
	code := runMain(m)
	printReliabilityTable() // reliability_test.go
	os.Exit(code)
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("SCIM_SHADOW_CADDY"); bin != "" {
		caddyBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "scim-shadow-caddy")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "../cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		return 1
	}
	return m.Run()
}

// received is one request as the backend received it.
type received struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// testBackend is the example SCIM backend behind a wrapper that keeps every request.
type testBackend struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
}

func startBackend(t *testing.T) *testBackend {
	t.Helper()
	h, err := backend.New(backend.Options{Token: backendToken})
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	tb := &testBackend{}
	tb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tb.mu.Lock()
		tb.requests = append(tb.requests, received{r.Method, r.URL.RequestURI(), r.Header.Clone(), body})
		tb.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(tb.Close)
	return tb
}

// Requests returns the requests received so far with the given method ("" for all).
func (b *testBackend) Requests(method string) []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []received
	for _, r := range b.requests {
		if method == "" || r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// Writes counts the write requests the backend received (searches are reads).
func (b *testBackend) Writes() int {
	n := 0
	for _, r := range b.Requests("") {
		if r.Method != http.MethodGet && !strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], "/.search") {
			n++
		}
	}
	return n
}

// Get fetches a resource directly from the backend (bypassing Caddy).
func (b *testBackend) Get(t *testing.T, path string) map[string]any {
	t.Helper()
	status, body := do(t, http.MethodGet, b.URL+"/scim/v2"+path, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("backend GET %s: %d %s", path, status, body)
	}
	return decode(t, body)
}

// caddyProc is a running Caddy.
type caddyProc struct {
	cmd      *exec.Cmd
	URL      string // http://127.0.0.1:port
	AdminURL string
	dir      string
	log      *syncBuffer
	exited   chan struct{} // closed when the process has exited
}

// caddyfileVars are substituted into test Caddyfiles: {{PORT}}, {{ADMIN}}, {{BACKEND}}, {{DB}}.
func startCaddy(t *testing.T, caddyfile string, be *testBackend) *caddyProc {
	t.Helper()
	dir := t.TempDir()
	return startCaddyIn(t, dir, caddyfile, be)
}

func startCaddyIn(t *testing.T, dir, caddyfile string, be *testBackend) *caddyProc {
	t.Helper()
	port, admin := freePort(t), freePort(t)
	backendAddr := ""
	if be != nil {
		backendAddr = strings.TrimPrefix(be.URL, "http://")
	}
	cfg := strings.NewReplacer(
		"{{PORT}}", fmt.Sprint(port),
		"{{ADMIN}}", fmt.Sprintf("127.0.0.1:%d", admin),
		"{{BACKEND}}", backendAddr,
		"{{DB}}", filepath.Join(dir, "shadow.db"),
	).Replace(caddyfile)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &caddyProc{
		URL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		AdminURL: fmt.Sprintf("http://127.0.0.1:%d", admin),
		dir:      dir,
		log:      &syncBuffer{},
	}
	p.cmd = exec.Command(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
	p.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	p.exited = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("caddy log:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(p.AdminURL + "/config/"); err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://")); err == nil {
				c.Close()
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("caddy exited:\n%s", p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not start:\n%s", p.log.String())
		}
	}
}

// Stop stops Caddy gracefully.
func (p *caddyProc) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// waitLog reports whether Caddy's log contains s within a few seconds: decisions are
// logged after the response has left.
func (p *caddyProc) waitLog(s string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.log.String(), s) {
			return true
		}
	}
	return false
}

// Kill kills Caddy with SIGKILL and waits for it to exit.
func (p *caddyProc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// scim sends a SCIM request through Caddy with the IdP's bearer token.
func (p *caddyProc) scim(t *testing.T, method, path string, body any) (int, []byte, http.Header) {
	t.Helper()
	return doH(t, method, p.URL+"/scim/v2"+path, body, map[string]string{
		"Authorization": "Bearer " + backendToken,
		"Content-Type":  "application/scim+json; charset=utf-8",
		"Accept":        "application/scim+json",
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func do(t *testing.T, method, url string, body any, header map[string]string) (int, []byte) {
	t.Helper()
	if header == nil {
		header = map[string]string{"Authorization": "Bearer " + backendToken}
	}
	status, b, _ := doH(t, method, url, body, header)
	return status, b
}

func doH(t *testing.T, method, url string, body any, header map[string]string) (int, []byte, http.Header) {
	t.Helper()
	status, out, h, err := tryDoH(t, method, url, body, header)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return status, out, h
}

// afterReload runs a request right after a config reload: a connection the old server
// accepted while it shut down may be closed unanswered (EOF), as an IdP would see it, so
// it is sent again, at most twice more.
func afterReload(t *testing.T, method, url string, body any, header map[string]string) (int, []byte, http.Header) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		status, out, h, err := tryDoH(t, method, url, body, header)
		if err == nil {
			return status, out, h
		}
		if attempt == 3 {
			t.Fatalf("%s %s after a reload, %d attempts: %v", method, url, attempt, err)
		}
		t.Logf("%s %s after a reload: %v; sending it again", method, url, err)
	}
}

// tryDoH is doH that returns a transport error instead of failing the test.
func tryDoH(t *testing.T, method, url string, body any, header map[string]string) (int, []byte, http.Header, error) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, out, resp.Header, nil
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return m
}

// syncBuffer is a bytes.Buffer safe for a process's concurrent stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
