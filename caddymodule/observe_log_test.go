package caddymodule

import (
	"errors"
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
		Connection: "acme", Mode: shadow.ModePreview, Outcome: shadow.OutcomeRecorded, RecordID: 7,
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

// TestDecisionLogLevels: what the module passes on as the IdP sent it (rewritten) is
// logged at debug, what it did instead of or besides passing it on at info, a rejection or
// an error beside a forwarded write at warn, a failure to record at error.
func TestDecisionLogLevels(t *testing.T) {
	write := shadow.Target{Op: shadow.OpPatch, ResourceType: "User", ID: "u1"}
	read := shadow.Target{Op: shadow.OpRead, ResourceType: "User"}
	for _, c := range []struct {
		name string
		d    shadow.Decision
		want zapcore.Level
	}{
		{"live read", shadow.Decision{Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded, Target: read}, zapcore.DebugLevel},
		{"preview read", shadow.Decision{Mode: shadow.ModePreview, Outcome: shadow.OutcomeForwarded, Target: read}, zapcore.DebugLevel},
		{"live write", shadow.Decision{Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded, Target: write, ReverseMapped: 2}, zapcore.DebugLevel},
		{"staged write", shadow.Decision{Mode: shadow.ModePreview, Outcome: shadow.OutcomeForwarded, Target: write, Staged: true}, zapcore.InfoLevel},
		{"approved write forwarded", shadow.Decision{Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded, Target: write, RecordID: 4}, zapcore.InfoLevel},
		{"recorded", shadow.Decision{Mode: shadow.ModePreview, Outcome: shadow.OutcomeRecorded, Target: write, RecordID: 5}, zapcore.InfoLevel},
		{"held", shadow.Decision{Mode: shadow.ModeLive, Outcome: shadow.OutcomeHeld, Target: write, RecordID: 6, HoldReason: "guard"}, zapcore.InfoLevel},
		{"forwarded, store failed", shadow.Decision{Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded, Target: write, Err: errors.New("counting deprovisions: closed")}, zapcore.WarnLevel},
		{"rejected", shadow.Decision{Mode: shadow.ModeLive, Outcome: shadow.OutcomeRejected, Target: write, Err: errors.New("too big")}, zapcore.WarnLevel},
		{"not recorded", shadow.Decision{Mode: shadow.ModePreview, Outcome: shadow.OutcomeError, Target: write, Err: errors.New("disk full")}, zapcore.ErrorLevel},
	} {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			o := &decisionObserver{logger: zap.New(core)}
			c.d.Connection = "acme"
			o.log(&c.d)
			lines := logs.FilterMessage("scim request").All()
			if len(lines) != 1 {
				t.Fatalf("%d decision lines, want 1: %v", len(lines), lines)
			}
			if lines[0].Level != c.want {
				t.Errorf("logged at %s, want %s", lines[0].Level, c.want)
			}
			if got := lines[0].ContextMap()["outcome"]; got != string(c.d.Outcome) {
				t.Errorf("outcome field %v, want %s", got, c.d.Outcome)
			}
		})
	}
}

// BenchmarkDecisionLog: a recorded preview write's decision with five info findings (the
// bench's five rules), logged at info through a JSON encoder.
func BenchmarkDecisionLog(b *testing.B) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	o := &decisionObserver{logger: zap.New(zapcore.NewCore(enc, zapcore.AddSync(discard{}), zapcore.InfoLevel))}
	d := &shadow.Decision{Connection: "bench", Mode: shadow.ModePreview, Outcome: shadow.OutcomeRecorded, RecordID: 9,
		Target: shadow.Target{Op: shadow.OpCreate, ResourceType: "User"}}
	for _, a := range []string{"favoriteColor", "nickName", "department", "emails", "locale"} {
		d.Findings = append(d.Findings, rules.Finding{Severity: rules.SeverityInfo, Code: rules.CodeFallback, Attribute: a, Source: "x", Message: a + " taken from x"})
	}
	b.ReportAllocs()
	for b.Loop() {
		o.log(d)
	}
}

// BenchmarkObserveDecision: everything the observer does per request (log lines at info,
// metrics), for a live read, the same with four attributes of its response mapped back,
// and a live write with five fallback findings, as in the bench's live mix (all three
// logged at debug: dropped).
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
