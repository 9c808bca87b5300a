package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// backendWrites reads the fast backend's count of writes received.
func (r *Runner) backendWrites(ctx context.Context) (int64, error) {
	var c struct {
		Writes int64 `json:"writes"`
	}
	err := getJSON(ctx, "http://"+r.Cfg.BackendAddr+"/_bench/counters", &c)
	return c.Writes, err
}

// All runs every scenario whose scale is not zero, in order, and stops at the first
// error. The report keeps what was measured until then.
func (r *Runner) All(ctx context.Context) error {
	c := r.Cfg
	steps := []struct {
		name string
		on   bool
		run  func(context.Context) error
	}{
		{"micro-benchmarks", c.MicroBenchtime != "", r.RunMicro},
		{"live overhead", c.LiveRounds > 0, r.RunLive},
		{"preview ingest", c.IngestDuration > 0 && len(c.IngestConcurrency) > 0, r.RunIngest},
		{"initial sync", c.SyncUsers > 0, r.RunSync},
		{"review at scale", c.ReviewRecords > 0, r.RunReview},
	}
	for _, s := range steps {
		if !s.on {
			r.logf("%s: skipped (scale 0)", s.name)
			continue
		}
		began := time.Now()
		r.logf("== %s", s.name)
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		r.logf("== %s done in %s", s.name, time.Since(began).Round(time.Second))
	}
	return nil
}

// ServeBackend serves a Backend on addr until ctx ends.
func ServeBackend(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	srv := &http.Server{Handler: &Backend{}, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("backend: %w", err)
	}
	return nil
}

// StartBackendProcess runs "exe -backend addr" (exe: this program) on a free port and
// waits until it answers; stop kills it.
func StartBackendProcess(ctx context.Context, exe string, log io.Writer) (addr string, stop func(), err error) {
	port, err := FreePort()
	if err != nil {
		return "", nil, err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(exe, "-backend", addr)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting the backend: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return addr, stop, nil
		}
		select {
		case <-done:
			return "", nil, fmt.Errorf("the backend exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("the backend did not start on %s", addr)
		}
	}
}

// EnsureCaddy returns bin if it exists, else builds it with xcaddy in repo (as make build).
func EnsureCaddy(ctx context.Context, repo, bin string, log io.Writer) error {
	if _, err := os.Stat(bin); err == nil {
		return nil
	}
	fmt.Fprintf(log, "building %s with xcaddy (a cold build takes minutes)\n", bin)
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "xcaddy", "build", "v2.11.9", "--output", abs,
		"--with", "github.com/scim-shadow/caddy-scim-shadow@v0.0.0=.")
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building caddy: %w", err)
	}
	return nil
}
