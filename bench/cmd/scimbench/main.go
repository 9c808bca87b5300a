// Command scimbench runs the scim-shadow benchmarks (make bench) and writes BENCHMARKS.md.
// Scale and paths come from BENCH_* variables (see BENCHMARKS.md, "How to rerun");
// "scimbench -backend addr" serves only the fast canned backend (the harness starts
// itself that way).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/bench"
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(bench.HarnessGCPercent)
	}
	backendAddr := flag.String("backend", "", "serve only the fast backend on this address")
	smoke := flag.Bool("smoke", false, "every scenario at tiny scale (seconds)")
	render := flag.String("render", "", "only write BENCHMARKS.md again from the report.json of a kept work directory (with the current bench/NOTES.md)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *backendAddr != "" {
		if err := bench.ServeBackend(ctx, *backendAddr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *render != "" {
		if err := rerender(*render); err != nil {
			fmt.Fprintln(os.Stderr, "scimbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, *smoke); err != nil {
		fmt.Fprintln(os.Stderr, "scimbench:", err)
		os.Exit(1)
	}
}

// writeMarkdown writes the report with the findings of bench/NOTES.md to out.
func writeMarkdown(rep *bench.Report, repo, out string) error {
	notes, _ := os.ReadFile(filepath.Join(repo, "bench", "NOTES.md"))
	var md bytes.Buffer
	rep.Markdown(&md, string(notes))
	if err := os.WriteFile(out, md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// rerender writes BENCHMARKS.md (or BENCH_OUT) again from a saved report.json.
func rerender(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	repo, err := filepath.Abs(env("BENCH_REPO", "."))
	if err != nil {
		return err
	}
	return writeMarkdown(&rep, repo, env("BENCH_OUT", filepath.Join(repo, "BENCHMARKS.md")))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, smoke bool) error {
	cfg := bench.Defaults()
	if smoke {
		cfg = bench.Smoke()
	}
	cfg, err := cfg.FromEnv()
	if err != nil {
		return err
	}
	timeout, err := time.ParseDuration(env("BENCH_TIMEOUT", "14m"))
	if err != nil {
		return fmt.Errorf("BENCH_TIMEOUT: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	repo, err := filepath.Abs(env("BENCH_REPO", "."))
	if err != nil {
		return err
	}
	cfg.RepoDir = repo
	cfg.CaddyBin, err = filepath.Abs(env("BENCH_CADDY", filepath.Join(repo, "caddy")))
	if err != nil {
		return err
	}
	if err := bench.EnsureCaddy(ctx, repo, cfg.CaddyBin, os.Stderr); err != nil {
		return err
	}
	if cfg.WorkDir = os.Getenv("BENCH_WORKDIR"); cfg.WorkDir == "" {
		if cfg.WorkDir, err = os.MkdirTemp("", "scimbench-"); err != nil {
			return err
		}
		if os.Getenv("BENCH_KEEP") != "1" {
			defer os.RemoveAll(cfg.WorkDir)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	addr, stopBackend, err := bench.StartBackendProcess(ctx, exe, os.Stderr)
	if err != nil {
		return err
	}
	defer stopBackend()
	cfg.BackendAddr = addr
	if cfg.PostgresDSN != "" {
		if err := bench.PingPostgres(ctx, cfg.PostgresDSN); err != nil {
			fmt.Fprintf(os.Stderr, "scimbench: PostgreSQL runs skipped: %v\n", err)
			cfg.PostgresDSN = ""
		}
	}

	rep := &bench.Report{Started: time.Now(), Cfg: cfg}
	rep.Describe(ctx, cfg)
	r := &bench.Runner{Cfg: cfg, Log: os.Stderr, Report: rep}
	fmt.Fprintf(os.Stderr, "scimbench: work directory %s, backend %s, caddy %s\n", cfg.WorkDir, addr, cfg.CaddyBin)
	runErr := r.All(ctx)
	rep.Finished, rep.LoadAfter = time.Now(), bench.LoadAvg()
	if runErr != nil {
		rep.Problems = append(rep.Problems, "the run stopped early: "+runErr.Error())
	}
	defOut := filepath.Join(repo, "BENCHMARKS.md")
	if smoke {
		defOut = filepath.Join(os.TempDir(), "BENCHMARKS-smoke.md")
	}
	out := env("BENCH_OUT", defOut)
	// In the work directory (kept with BENCH_WORKDIR or BENCH_KEEP=1), for -render.
	if j, err := json.MarshalIndent(rep, "", "  "); err != nil {
		fmt.Fprintf(os.Stderr, "scimbench: report.json not written: %v\n", err)
	} else {
		_ = os.WriteFile(filepath.Join(cfg.WorkDir, "report.json"), j, 0o644)
	}
	if err := writeMarkdown(rep, repo, out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "scimbench: wrote %s in %s\n", out, rep.Finished.Sub(rep.Started).Round(time.Second))
	if len(rep.Problems) > 0 {
		return fmt.Errorf("%d problem(s), see %s", len(rep.Problems), out)
	}
	return nil
}
