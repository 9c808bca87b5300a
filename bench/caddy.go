package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Caddy is a Caddy process under test.
type Caddy struct {
	Name  string
	URL   string // http://127.0.0.1:port
	Admin string // http://127.0.0.1:port of the admin endpoint
	Dir   string
	cmd   *exec.Cmd
	log   *os.File
	done  chan struct{}
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// caddyGlobal is the head of every benchmark Caddyfile; {{APP}} is the scim_shadow app,
// {{LOG}} the default logger's level when BENCH_LOG_LEVEL sets one.
const caddyGlobal = `{
	admin {{ADMIN}}
	auto_https off
	persist_config off
	grace_period 2s
	{{LOG}}
	{{APP}}
}
`

// StartCaddy writes the Caddyfile (with {{PORT}} and {{ADMIN}} replaced) into dir/name and
// runs bin on it until the site answers. Its log goes to dir/name/caddy.log.
func StartCaddy(ctx context.Context, bin, dir, name, caddyfile string) (*Caddy, error) {
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("caddy %s: %w", name, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := FreePort()
	if err != nil {
		return nil, err
	}
	cfg := strings.NewReplacer("{{PORT}}", strconv.Itoa(port), "{{ADMIN}}", fmt.Sprintf("127.0.0.1:%d", admin)).Replace(caddyfile)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("caddy %s: %w", name, err)
	}
	logf, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		return nil, fmt.Errorf("caddy %s: %w", name, err)
	}
	c := &Caddy{
		Name:  name,
		URL:   fmt.Sprintf("http://127.0.0.1:%d", port),
		Admin: fmt.Sprintf("http://127.0.0.1:%d", admin),
		Dir:   dir,
		log:   logf,
		done:  make(chan struct{}),
	}
	c.cmd = exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	c.cmd.Env = append(c.cmd.Env, CaddyEnv()...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting caddy %s: %w", name, err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(c.Admin + "/config/"); err == nil {
			resp.Body.Close()
			if conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL, "http://")); err == nil {
				conn.Close()
				return c, nil
			}
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("caddy %s exited: %s", name, c.tail())
		case <-ctx.Done():
			c.Stop()
			return nil, fmt.Errorf("caddy %s: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("caddy %s did not start: %s", name, c.tail())
		}
	}
}

// tail is the end of the log, for errors.
func (c *Caddy) tail() string {
	b, _ := os.ReadFile(c.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Pid is the process id.
func (c *Caddy) Pid() int { return c.cmd.Process.Pid }

// PeakRSS is the peak resident set size (VmHWM) in bytes.
func (c *Caddy) PeakRSS() (int64, error) {
	return procStatus(c.Pid(), "VmHWM")
}

// clockTicks is the unit of /proc/<pid>/stat's CPU times: USER_HZ, 100 on Linux.
const clockTicks = 100

// CPUTime is the CPU time (user and system) Caddy's process has used so far.
func (c *Caddy) CPUTime() (time.Duration, error) {
	return procCPUTime(c.Pid())
}

// CPUMeter starts measuring Caddy's CPU time; the function it returns gives the CPU time
// used since, divided by n operations (0 when n ≤ 0).
func (c *Caddy) CPUMeter() func(n int64) (time.Duration, error) {
	before, errBefore := c.CPUTime()
	return func(n int64) (time.Duration, error) {
		after, err := c.CPUTime()
		if err := errors.Join(errBefore, err); err != nil || n <= 0 {
			return 0, err
		}
		return (after - before) / time.Duration(n), nil
	}
}

// procCPUTime reads utime + stime from /proc/<pid>/stat (fields 14 and 15; the command name
// before them, in parentheses, may hold spaces).
func procCPUTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("reading CPU time: no command name in %q", raw)
	}
	f := strings.Fields(string(raw[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("reading CPU time: %d fields after the command name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// procStatus reads a kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", field, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %s %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New(field + " not found in /proc status")
}

// Stop stops Caddy (SIGTERM, then SIGKILL after 15 s) and waits for it.
func (c *Caddy) Stop() {
	if c == nil {
		return
	}
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	c.log.Close()
}

// Exited reports whether the process has exited.
func (c *Caddy) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Profile saves a CPU profile of seconds from the admin endpoint into file.
func (c *Caddy) Profile(ctx context.Context, seconds int, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", c.Admin, seconds), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profiling %s: %w", c.Name, err)
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profiling %s: %w", c.Name, err)
	}
	return f.Close()
}

// CaddyEnv is what BENCH_CADDY_ENV adds to the environment of every Caddy the harness
// starts, and to no other process of the run: "NAME=value" words, e.g.
// "GOGC=400 GOMEMLIMIT=200MiB" to measure the runtime tuning README suggests.
func CaddyEnv() []string { return strings.Fields(os.Getenv("BENCH_CADDY_ENV")) }
