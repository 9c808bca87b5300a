package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// registeredFamilies returns the metric family names of the module's collectors and
// whether each is a histogram.
func registeredFamilies(t *testing.T) map[string]bool {
	t.Helper()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{}
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no name in %s", d)
			}
			switch c.(type) {
			case *prometheus.HistogramVec, prometheus.Histogram:
				out[m[1]] = true
			default:
				out[m[1]] = false
			}
		}
	}
	return out
}

func TestMetricsFamilies(t *testing.T) {
	want := map[string]bool{
		"scim_shadow_requests_total":              false,
		"scim_shadow_rewrites_total":              false,
		"scim_shadow_warnings_total":              false,
		"scim_shadow_pending_records":             false,
		"scim_shadow_store_errors_total":          false,
		"scim_shadow_store_duration_seconds":      true,
		"scim_shadow_live_state_duration_seconds": true,
		"scim_shadow_normalizations_total":        false,
		"scim_shadow_reverse_mapped_total":        false,
		"scim_shadow_held_records":                false,
		"scim_shadow_guard_trips_total":           false,
	}
	if got := registeredFamilies(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("families = %v, want %v", got, want)
	}
}

// TestMetricsExamplesUseRegisteredNames checks that the Grafana dashboard and the alert
// rules use only metrics the module registers, and that the dashboard shows every one.
func TestMetricsExamplesUseRegisteredNames(t *testing.T) {
	families := registeredFamilies(t)
	nameRE := regexp.MustCompile(`scim_shadow_[a-z_]+`)
	// family returns the family a series name belongs to, or "".
	family := func(name string) string {
		if _, ok := families[name]; ok {
			return name
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := cutSuffix(name, suffix)
			if ok && families[base] {
				return base
			}
		}
		return ""
	}

	raw, err := os.ReadFile("../examples/observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		case string:
			exprs = append(exprs, v)
		}
	}
	walk(dash)
	inDashboard := map[string]bool{}
	for _, s := range exprs {
		for _, name := range nameRE.FindAllString(s, -1) {
			f := family(name)
			if f == "" {
				t.Errorf("grafana-dashboard.json uses %s, which the module does not register", name)
				continue
			}
			inDashboard[f] = true
		}
	}
	for f := range families {
		if !inDashboard[f] {
			t.Errorf("grafana-dashboard.json does not show %s", f)
		}
	}

	alerts, err := os.ReadFile("../examples/observability/prometheus-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := nameRE.FindAllString(string(alerts), -1)
	if len(names) == 0 {
		t.Fatal("prometheus-alerts.yml uses no scim_shadow metric")
	}
	for _, name := range names {
		if family(name) == "" {
			t.Errorf("prometheus-alerts.yml uses %s, which the module does not register", name)
		}
	}
	for _, f := range []string{"scim_shadow_store_errors_total", "scim_shadow_pending_records", "scim_shadow_warnings_total"} {
		if !regexp.MustCompile(`\b` + f + `\b`).Match(alerts) {
			t.Errorf("prometheus-alerts.yml has no rule on %s", f)
		}
	}
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return "", false
}

// metricValue reads a counter, gauge or histogram sample count.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	case out.Histogram != nil:
		return float64(out.Histogram.GetSampleCount())
	}
	t.Fatalf("unexpected metric %v", &out)
	return 0
}

func counter(t *testing.T, v *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	return metricValue(t, v.WithLabelValues(labels...))
}

func histCount(t *testing.T, v *prometheus.HistogramVec, labels ...string) float64 {
	t.Helper()
	return metricValue(t, v.WithLabelValues(labels...).(prometheus.Metric))
}

// forgetConnection removes a connection's series, so a test starts from zero however often
// it runs in one process.
func forgetConnection(name string) {
	l := prometheus.Labels{"connection": name}
	requestsTotal.DeletePartialMatch(l)
	rewritesTotal.DeletePartialMatch(l)
	warningsTotal.DeletePartialMatch(l)
	for _, c := range []*counterCache{requestCounters, rewriteCounters, normalizationCounters} {
		c.forget()
	}
}

func TestMetricsCountDecisions(t *testing.T) {
	forgetConnection("m-count")
	obs := &decisionObserver{logger: zap.NewNop()}
	r := httptest.NewRequest("POST", "/scim/v2/Users", nil)
	user := shadow.Target{Endpoint: "Users", ResourceType: "User", Op: shadow.OpCreate}
	liveBefore := metricValue(t, liveStateDuration)

	obs.Observe(r, &shadow.Decision{
		Connection: "m-count", Mode: shadow.ModePreview, Target: user, Outcome: shadow.OutcomeRecorded,
		RecordID: 1, Attempts: 1, LiveStateDuration: 3 * time.Millisecond,
		Findings: []rules.Finding{
			{Severity: rules.SeverityInfo, Code: rules.CodeFallback, Attribute: "favoriteColor", Source: "favorite_color"},
			{Severity: rules.SeverityWarning, Code: rules.CodeMissing, Attribute: "title"},
			{Severity: rules.SeverityInfo, Code: rules.CodeDropped, Attribute: "password"},
			{Severity: rules.SeverityWarning, Code: rules.CodeUnparseable},
		},
	})
	obs.Observe(r, &shadow.Decision{Connection: "m-count", Mode: shadow.ModePreview, Target: user, Outcome: shadow.OutcomeError, Err: errors.New("locked")})
	obs.Observe(r, &shadow.Decision{Connection: "m-count", Mode: shadow.ModeLive,
		Target: shadow.Target{Endpoint: "Bulk", Op: shadow.OpBulk}, Outcome: shadow.OutcomeForwarded,
		Findings: []rules.Finding{{Code: rules.CodeFallback, Attribute: "favoriteColor", Source: "favorite_color"}}})

	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{counter(t, requestsTotal, "m-count", "preview", "User", "create", "recorded"), 1, "recorded"},
		{counter(t, requestsTotal, "m-count", "preview", "User", "create", "error"), 1, "error"},
		{counter(t, requestsTotal, "m-count", "live", "Bulk", "bulk", "forwarded"), 1, "bulk forwarded"},
		{counter(t, rewritesTotal, "m-count", "User", "favoriteColor", "favorite_color"), 1, "rewrites User"},
		{counter(t, rewritesTotal, "m-count", "Bulk", "favoriteColor", "favorite_color"), 1, "rewrites Bulk"},
		{counter(t, warningsTotal, "m-count", "User", "title"), 1, "warnings"},
		{metricValue(t, liveStateDuration) - liveBefore, 1, "live state observations"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestMetricsKeepCountingAcrossRegistries is what a config reload does: a new registry,
// the same collectors, the values kept.
func TestMetricsKeepCountingAcrossRegistries(t *testing.T) {
	forgetConnection("m-reload")
	reg1 := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg1); err != nil {
		t.Fatal(err)
	}
	if err := registerMetrics(reg1); err != nil {
		t.Fatalf("registering twice in one registry: %v", err)
	}
	requestsTotal.WithLabelValues("m-reload", "live", "User", "read", "forwarded").Add(2)
	reg2 := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg2); err != nil {
		t.Fatal(err)
	}
	requestsTotal.WithLabelValues("m-reload", "live", "User", "read", "forwarded").Inc()
	for i, reg := range []*prometheus.Registry{reg1, reg2} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather %d: %v", i, err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != "scim_shadow_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "connection" && l.GetValue() == "m-reload" {
						found = true
						if v := m.GetCounter().GetValue(); v != 3 {
							t.Errorf("registry %d: value %v, want 3", i, v)
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("registry %d: no m-reload series", i)
		}
	}
	// Another collector of the same name is a real conflict.
	reg3 := prometheus.NewRegistry()
	reg3.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "scim_shadow_warnings_total", Help: "x"}))
	if err := registerMetrics(reg3); err == nil {
		t.Error("registering over a foreign collector of the same name succeeded")
	}
}

// fakeStore implements what the tests call; other methods panic (nil embedded Store).
type fakeStore struct {
	shadow.Store
	saveErr     error
	connections []shadow.ConnectionInfo
}

func (f *fakeStore) SaveRecord(ctx context.Context, rec *shadow.Record) (shadow.Record, error) {
	if f.saveErr != nil {
		return shadow.Record{}, f.saveErr
	}
	return shadow.Record{ID: 1, Attempts: 1}, nil
}

func (f *fakeStore) Record(ctx context.Context, connection string, id int64) (shadow.Record, error) {
	return shadow.Record{}, shadow.ErrNotFound
}

func (f *fakeStore) Connections(ctx context.Context) ([]shadow.ConnectionInfo, error) {
	return f.connections, nil
}

func TestMetricsInstrumentedStore(t *testing.T) {
	fs := &fakeStore{}
	st := instrumentStore(fs)
	if instrumentStore(st) != st {
		t.Error("instrumenting twice wraps twice")
	}
	errsBefore := counter(t, storeErrorsTotal, "save_record")
	durBefore := histCount(t, storeDuration, "save_record")
	notFoundBefore := counter(t, storeErrorsTotal, "record")
	ctx := context.Background()

	if _, err := st.SaveRecord(ctx, &shadow.Record{}); err != nil {
		t.Fatal(err)
	}
	fs.saveErr = errors.New("database is locked")
	if _, err := st.SaveRecord(ctx, &shadow.Record{}); err == nil {
		t.Fatal("error not passed on")
	}
	fs.saveErr = context.Canceled
	_, _ = st.SaveRecord(ctx, &shadow.Record{})
	fs.saveErr = context.DeadlineExceeded
	_, _ = st.SaveRecord(ctx, &shadow.Record{})
	if _, err := st.Record(ctx, "c", 1); !errors.Is(err, shadow.ErrNotFound) {
		t.Fatalf("Record: %v", err)
	}

	if got := counter(t, storeErrorsTotal, "save_record") - errsBefore; got != 2 {
		t.Errorf("save_record errors = %v, want 2 (failure and timeout; not the caller's cancel)", got)
	}
	if got := histCount(t, storeDuration, "save_record") - durBefore; got != 4 {
		t.Errorf("save_record durations = %v, want 4", got)
	}
	if got := counter(t, storeErrorsTotal, "record") - notFoundBefore; got != 0 {
		t.Errorf("not found counted as an error: %v", got)
	}
}

// TestMetricsStoreWrapperCoversStore fails when shadow.Store gains a method that
// instrumentedStore does not time itself (it would pass through the embedded store).
func TestMetricsStoreWrapperCoversStore(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "metrics.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
			continue
		}
		if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
			if id, ok := star.X.(*ast.Ident); ok && id.Name == "instrumentedStore" {
				declared[fn.Name.Name] = true
				// The wrapper observes under the label storeOps gives its method (the
				// label is written in both places; they must agree).
				if got := observedOp(fn); got != storeOps[fn.Name.Name] {
					t.Errorf("instrumentedStore.%s observes %q, storeOps says %q", fn.Name.Name, got, storeOps[fn.Name.Name])
				}
			}
		}
	}
	storeType := reflect.TypeOf((*shadow.Store)(nil)).Elem()
	var missing []string
	for i := 0; i < storeType.NumMethod(); i++ {
		name := storeType.Method(i).Name
		if !declared[name] || storeOps[name] == "" {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("instrumentedStore does not instrument shadow.Store methods %v: add them to caddymodule/metrics.go and storeOps", missing)
	}
}

// observedOp is the string literal fn passes to observeStore ("" when none).
func observedOp(fn *ast.FuncDecl) string {
	op := ""
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "observeStore" {
			if lit, ok := call.Args[0].(*ast.BasicLit); ok {
				op, _ = strconv.Unquote(lit.Value)
			}
		}
		return true
	})
	return op
}

func gaugeSeries(t *testing.T) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { pendingRecords.Collect(ch); close(ch) }()
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		out[d.GetLabel()[0].GetValue()] = d.GetGauge().GetValue()
	}
	return out
}

func TestMetricsPendingRefresh(t *testing.T) {
	fs := &fakeStore{connections: []shadow.ConnectionInfo{{Name: "m-pending-a", Pending: 3}, {Name: "m-pending-c", Mode: shadow.ModeLive}}}
	configured := map[string]shadow.Mode{"m-pending-b": shadow.ModePreview}
	if err := refreshPending(context.Background(), fs, configured); err != nil {
		t.Fatal(err)
	}
	got := gaugeSeries(t)
	for name, want := range map[string]float64{"m-pending-a": 3, "m-pending-b": 0, "m-pending-c": 0} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("pending{%s} = %v (present %v), want %v", name, v, ok, want)
		}
	}
	fs.connections = nil // records cleared
	if err := refreshPending(context.Background(), fs, configured); err != nil {
		t.Fatal(err)
	}
	got = gaugeSeries(t)
	if _, ok := got["m-pending-a"]; ok {
		t.Error("a connection gone from the store is still in the gauge")
	}
	if v, ok := got["m-pending-b"]; !ok || v != 0 {
		t.Errorf("configured connection: %v %v", v, ok)
	}
}
