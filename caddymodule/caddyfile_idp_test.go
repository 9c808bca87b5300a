package caddymodule

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

func TestCaddyfileNormalizeAndReverseMap(t *testing.T) {
	cfg, err := adapt(t, ":8080 {\n\tscim_shadow {\n\t\tconnection entra\n\t\tnormalize op_case booleans\n\t\tnormalize member_removal manager dotted_keys\n\t\treverse_map off\n\t}\n\treverse_proxy 127.0.0.1:9000\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(findHandler(cfg, "scim_shadow"))
	want := `{"connection":"entra","handler":"scim_shadow","normalize":["op_case","booleans","member_removal","manager","dotted_keys"],"reverse_map":"off"}`
	if string(got) != want {
		t.Errorf("handler JSON\n got %s\nwant %s", got, want)
	}
	// The JSON form reads back into the handler, and every switch name parses.
	var h Handler
	if err := json.Unmarshal(got, &h); err != nil {
		t.Fatal(err)
	}
	if n, err := rules.ParseNormalization(h.Normalize); err != nil || n != (rules.Normalization{OpCase: true, Booleans: true, MemberRemoval: true, Manager: true, DottedKeys: true}) {
		t.Errorf("normalize %v: %+v %v", h.Normalize, n, err)
	}
}

func TestCaddyfileNormalizeErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"unknown switch", "scim_shadow {\n\t\tnormalize op_case bools\n\t}", `normalize: unknown switch "bools"`},
		{"no switch", "scim_shadow {\n\t\tnormalize\n\t}", "wrong argument count"},
		{"bad reverse_map", "scim_shadow {\n\t\treverse_map maybe\n\t}", `reverse_map must be "on" or "off"`},
		{"reverse_map without value", "scim_shadow {\n\t\treverse_map\n\t}", "wrong argument count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, ":8080 {\n\t"+tc.body+"\n\treverse_proxy 127.0.0.1:9000\n}\n")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error %v, want %q with a line number", err, tc.want)
			}
		})
	}
}

func TestMetricsCountNormalizationsAndReverseMapping(t *testing.T) {
	n0 := counterValue(t, normalizationsTotal.WithLabelValues("m-idp", rules.KindBooleans))
	r0 := counterValue(t, reverseMappedTotal.WithLabelValues("m-idp", "User"))
	countDecision(&shadow.Decision{
		Connection: "m-idp", Mode: shadow.ModeLive, Outcome: shadow.OutcomeForwarded,
		Target: shadow.Target{ResourceType: "User", Op: shadow.OpPatch},
		Findings: []rules.Finding{
			{Severity: rules.SeverityInfo, Code: rules.CodeNormalized, Kind: rules.KindBooleans},
			{Severity: rules.SeverityInfo, Code: rules.CodeNormalized, Kind: rules.KindBooleans},
			{Severity: rules.SeverityInfo, Code: rules.CodeNormalized, Kind: rules.KindOpCase},
		},
		ReverseMapped: 3,
	})
	if got := counterValue(t, normalizationsTotal.WithLabelValues("m-idp", rules.KindBooleans)) - n0; got != 2 {
		t.Errorf("normalizations_total{kind=booleans} grew by %v, want 2", got)
	}
	if got := counterValue(t, reverseMappedTotal.WithLabelValues("m-idp", "User")) - r0; got != 3 {
		t.Errorf("reverse_mapped_total grew by %v, want 3", got)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestExampleCaddyfilesIdPSettings checks the per-IdP examples adapt with the settings the
// README's per-IdP section documents.
func TestExampleCaddyfilesIdPSettings(t *testing.T) {
	for idp, want := range map[string]string{
		"okta":     `{"normalize":null,"reject":{"retry_after":600000000000,"status":429},"reverse_map":null}`,
		"entra":    `{"normalize":["all"],"reject":{"retry_after":600000000000,"status":429},"reverse_map":null}`,
		"onelogin": `{"normalize":["member_removal","booleans"],"reject":{"retry_after":600000000000,"status":429},"reverse_map":null}`,
	} {
		t.Run(idp, func(t *testing.T) {
			b, err := os.ReadFile("../examples/" + idp + "/Caddyfile")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := adapt(t, string(b))
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			h := findHandler(cfg, "scim_shadow")
			got, _ := json.Marshal(map[string]any{"normalize": h["normalize"], "reject": h["reject"], "reverse_map": h["reverse_map"]})
			if string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}
