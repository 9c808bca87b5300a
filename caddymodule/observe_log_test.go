package caddymodule

import (
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// TestDecisionLogFindings: one decision line carries the findings compactly; info
// findings have their own lines only at debug, warning findings at warn.
func TestDecisionLogFindings(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	o := &decisionObserver{logger: zap.New(core)}
	o.log(&shadow.Decision{
		Connection: "acme", Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded,
		Target: shadow.Target{Op: shadow.OpCreate, ResourceType: "User"},
		Findings: []rules.Finding{
			{Severity: rules.SeverityInfo, Code: rules.CodeFallback, Attribute: "favoriteColor", Source: "favorite_color"},
			{Severity: rules.SeverityInfo, Code: "normalized", Kind: "op_case"},
			{Severity: rules.SeverityWarning, Code: rules.CodeMissing, Attribute: "department", Message: "department is missing"},
		},
	})
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d lines at info, want the decision and the warning finding: %v", len(entries), entries)
	}
	got := entries[0].ContextMap()["findings"]
	want := []any{"fallback_used:favoriteColor", "normalized:op_case", "missing_attribute:department"}
	if l, ok := got.([]any); !ok || len(l) != len(want) || l[0] != want[0] || l[1] != want[1] || l[2] != want[2] {
		t.Fatalf("findings = %#v, want %v", got, want)
	}
	if entries[1].Level != zapcore.WarnLevel || entries[1].ContextMap()["finding"] != rules.CodeMissing {
		t.Fatalf("finding line = %v", entries[1])
	}
}

// BenchmarkDecisionLog: a live write's decision with five info findings (the bench's
// five rules), logged at info through a JSON encoder.
func BenchmarkDecisionLog(b *testing.B) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	o := &decisionObserver{logger: zap.New(zapcore.NewCore(enc, zapcore.AddSync(discard{}), zapcore.InfoLevel))}
	d := &shadow.Decision{Connection: "bench", Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded,
		Target: shadow.Target{Op: shadow.OpCreate, ResourceType: "User"}}
	for _, a := range []string{"favoriteColor", "nickName", "department", "emails", "locale"} {
		d.Findings = append(d.Findings, rules.Finding{Severity: rules.SeverityInfo, Code: rules.CodeFallback, Attribute: a, Source: "x", Message: a + " taken from x"})
	}
	b.ReportAllocs()
	for b.Loop() {
		o.log(d)
	}
}

// BenchmarkObserveDecision: everything the observer does per request (log line at info,
// metrics), for a live read (logged at debug: dropped), the same with four attributes of
// its response mapped back, and a live write with five fallback findings, as in the
// bench's live mix.
func BenchmarkObserveDecision(b *testing.B) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	o := &decisionObserver{logger: zap.New(zapcore.NewCore(enc, zapcore.AddSync(discard{}), zapcore.InfoLevel))}
	read := &shadow.Decision{Connection: "bench-obs", Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded,
		Target: shadow.Target{Op: shadow.OpRead, ResourceType: "User"}}
	mapped := *read
	mapped.ReverseMapped = 4
	write := &shadow.Decision{Connection: "bench-obs", Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded,
		Target: shadow.Target{Op: shadow.OpCreate, ResourceType: "User"}, ReverseMapped: 4}
	for _, a := range []string{"favoriteColor", "nickName", "department", "emails", "locale"} {
		write.Findings = append(write.Findings, rules.Finding{Severity: rules.SeverityInfo, Code: rules.CodeFallback, Attribute: a, Source: "x", Message: a + " taken from x"})
	}
	r := httptest.NewRequest("GET", "/scim/v2/Users", nil)
	for _, c := range []struct {
		name string
		d    *shadow.Decision
	}{{"read", read}, {"read-mapped", &mapped}, {"write", write}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.Observe(r, c.d)
			}
		})
	}
	forgetConnection("bench-obs")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
