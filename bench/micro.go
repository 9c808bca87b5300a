package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// microPattern selects the micro-benchmarks of scenario 5 (rules/ and shadow/).
const microPattern = `^(BenchmarkRewriteResource|BenchmarkRewritePatch|BenchmarkRewriteFilter|BenchmarkLiveMixRules|BenchmarkApplyPatch|BenchmarkDiff|BenchmarkEngineLive)$`

// RunMicro is scenario 5: go test -bench over rules/ and shadow/ in the repository.
func (r *Runner) RunMicro(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", microPattern, "-benchmem",
		"-benchtime", r.Cfg.MicroBenchtime, "-count", "1", "./rules", "./shadow")
	cmd.Dir = r.Cfg.RepoDir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	r.logf("micro: go test -bench (benchtime %s)", r.Cfg.MicroBenchtime)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test -bench: %w\n%s%s", err, out.String(), errb.String())
	}
	r.Report.Micro = parseBench(out.String())
	for _, m := range r.Report.Micro {
		r.logf("micro %-55s %10.0f ns/op %8d B/op %5d allocs/op", m.Pkg+" "+m.Name, m.NsOp, m.BytesOp, m.AllocsOp)
	}
	if len(r.Report.Micro) == 0 {
		return fmt.Errorf("go test -bench printed no results:\n%s", out.String())
	}
	return nil
}

// parseBench reads go test -bench -benchmem output.
func parseBench(out string) []MicroResult {
	var res []MicroResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p[strings.LastIndex(p, "/")+1:]
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		m := MicroResult{Pkg: pkg, Name: f[0]}
		if i := strings.LastIndex(m.Name, "-"); i > 0 {
			if _, err := strconv.Atoi(m.Name[i+1:]); err == nil {
				m.Name = m.Name[:i]
			}
		}
		m.N, _ = strconv.ParseInt(f[1], 10, 64)
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				m.NsOp = v
			case "B/op":
				m.BytesOp = int64(v)
			case "allocs/op":
				m.AllocsOp = int64(v)
			case "MB/s":
				m.MBs = v
			}
		}
		res = append(res, m)
	}
	return res
}
