package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsCaddyfile serves connection acme in preview under /scim/v2 and connection globex
// live under /globex/scim/v2, with Caddy's metrics handler on the site.
const metricsCaddyfile = `{
	admin {{ADMIN}}
	scim_shadow {
		store sqlite {{DB}}
	}
}
:{{PORT}} {
	metrics /metrics
	handle_path /globex/* {
		scim_shadow {
			connection globex
			mode live
			map User {
				favoriteColor {
					from favorite_color
				}
				title {
					warn_if_missing
				}
			}
		}
		reverse_proxy {{BACKEND}}
	}
	handle /scim/v2/* {
		scim_shadow {
			connection acme
			mode preview
			max_body 4KiB
			map User {
				favoriteColor {
					from favorite_color
				}
				title {
					warn_if_missing
				}
			}
		}
		reverse_proxy {{BACKEND}}
	}
}
`

// scrape returns the scim_shadow series of /metrics as "name{l="v",…}" → value, with
// labels sorted; histograms as name_count.
func scrape(t *testing.T, c *caddyProc) map[string]float64 {
	t.Helper()
	resp, err := http.Get(c.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "scim_shadow_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				key += "_count"
			}
			key += "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// req is a requests_total series key.
func req(connection, mode, operation, outcome string) string {
	return fmt.Sprintf(`scim_shadow_requests_total{connection=%q,mode=%q,operation=%q,outcome=%q,resource="User"}`, connection, mode, operation, outcome)
}

func rewrites(connection string) string {
	return fmt.Sprintf(`scim_shadow_rewrites_total{attribute="favoriteColor",connection=%q,resource="User",source="favorite_color"}`, connection)
}

func warnings(connection string) string {
	return fmt.Sprintf(`scim_shadow_warnings_total{attribute="title",connection=%q,resource="User"}`, connection)
}

func pending(connection string) string {
	return fmt.Sprintf(`scim_shadow_pending_records{connection=%q}`, connection)
}

// checkMetrics scrapes until the scim_shadow series match want (decisions are counted
// after the response, the pending gauge shortly after a recorded write), then checks that
// no other requests/rewrites/warnings/pending series exist.
func checkMetrics(t *testing.T, c *caddyProc, want map[string]float64) map[string]float64 {
	t.Helper()
	var got map[string]float64
	var diffs []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got = scrape(t, c)
		diffs = diffs[:0]
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diffs = append(diffs, fmt.Sprintf("%s = %v (present %v), want %v", k, g, ok, v))
			}
		}
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for k := range got {
		for _, fam := range []string{"scim_shadow_requests_total{", "scim_shadow_rewrites_total{", "scim_shadow_warnings_total{", "scim_shadow_pending_records{"} {
			if _, ok := want[k]; strings.HasPrefix(k, fam) && !ok {
				diffs = append(diffs, fmt.Sprintf("unexpected series %s = %v", k, got[k]))
			}
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
	return got
}

func userJSON(userName, extra string) string {
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + userName + `"` + extra + `}`
}

func TestMetricsCountAcrossReload(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, metricsCaddyfile, be)
	globex := func(method, path string, body any) (int, []byte) {
		t.Helper()
		status, out, _ := doH(t, method, c.URL+"/globex/scim/v2"+path, body, map[string]string{
			"Authorization": "Bearer " + backendToken,
			"Content-Type":  "application/scim+json",
		})
		return status, out
	}
	expect := func(what string, got, want int, body []byte) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: %d, want %d: %s", what, got, want, body)
		}
	}

	// acme, preview: two writes recorded, a retry of the first, a read, one refused.
	alice := userJSON("alice", `,"favorite_color":"blue"`)
	status, out, _ := c.scim(t, http.MethodPost, "/Users", alice)
	expect("acme POST alice", status, http.StatusTooManyRequests, out)
	status, out, _ = c.scim(t, http.MethodPost, "/Users", userJSON("bob", `,"favoriteColor":"red","title":"Engineer"`))
	expect("acme POST bob", status, http.StatusTooManyRequests, out)
	status, out, _ = c.scim(t, http.MethodPost, "/Users", alice)
	expect("acme POST alice again", status, http.StatusTooManyRequests, out)
	status, out, _ = c.scim(t, http.MethodGet, "/Users", nil)
	expect("acme GET", status, http.StatusOK, out)
	status, out, _ = c.scim(t, http.MethodPost, "/Users", userJSON("big", `,"title":"`+strings.Repeat("x", 5000)+`"`))
	expect("acme POST too large", status, http.StatusRequestEntityTooLarge, out)
	// globex, live: one write forwarded (rewritten, warned), one read.
	status, out = globex(http.MethodPost, "/Users", userJSON("carol", `,"favorite_color":"green"`))
	expect("globex POST carol", status, http.StatusCreated, out)
	status, out = globex(http.MethodGet, "/Users?filter=userName%20eq%20%22carol%22", nil)
	expect("globex GET", status, http.StatusOK, out)

	want := map[string]float64{
		req("acme", "preview", "create", "recorded"): 3,
		req("acme", "preview", "read", "forwarded"):  1,
		req("acme", "preview", "create", "rejected"): 1,
		req("globex", "live", "create", "forwarded"): 1,
		req("globex", "live", "read", "forwarded"):   1,
		rewrites("acme"):   2,
		rewrites("globex"): 1,
		warnings("acme"):   2,
		warnings("globex"): 1,
		pending("acme"):    2, // the retry bumped attempts
		pending("globex"):  0,
		`scim_shadow_store_errors_total{operation="save_record"}`:           0,
		`scim_shadow_store_duration_seconds_count{operation="save_record"}`: 3,
	}
	checkMetrics(t, c, want)
	if got := be.Get(t, "/Users?filter=userName%20eq%20%22carol%22"); !strings.Contains(fmt.Sprint(got), "favoriteColor:green") {
		t.Errorf("backend did not get the rewritten attribute: %v", got)
	}

	// Reload a slightly changed config: same store, new handlers, a new metrics registry.
	cfg, err := os.ReadFile(filepath.Join(c.dir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(cfg), "max_body 4KiB", "max_body 8KiB\n\t\t\treject 503 60s", 1)
	if changed == string(cfg) {
		t.Fatal("config not changed")
	}
	status, out = do(t, http.MethodPost, c.AdminURL+"/load", changed, map[string]string{"Content-Type": "text/caddyfile"})
	expect("reload", status, http.StatusOK, out)
	// The old server closed its idle keep-alive connections: start new ones.
	http.DefaultClient.CloseIdleConnections()

	status, out, _ = afterReload(t, http.MethodPost, c.URL+"/scim/v2/Users", userJSON("dave", `,"favorite_color":"grey"`), map[string]string{
		"Authorization": "Bearer " + backendToken,
		"Content-Type":  "application/scim+json",
	})
	expect("acme POST dave after reload (the new reject status)", status, http.StatusServiceUnavailable, out)
	status, out, _ = c.scim(t, http.MethodGet, "/Users", nil)
	expect("acme GET after reload", status, http.StatusOK, out)
	status, out = globex(http.MethodPost, "/Users", userJSON("erin", `,"favoriteColor":"black","title":"CTO"`))
	expect("globex POST erin after reload", status, http.StatusCreated, out)

	want[req("acme", "preview", "create", "recorded")] = 4
	want[req("acme", "preview", "read", "forwarded")] = 2
	want[req("globex", "live", "create", "forwarded")] = 2
	want[rewrites("acme")] = 3
	want[warnings("acme")] = 3
	want[pending("acme")] = 3
	want[`scim_shadow_store_duration_seconds_count{operation="save_record"}`] = 4
	got := checkMetrics(t, c, want)
	if _, ok := got[`scim_shadow_live_state_duration_seconds_count{}`]; !ok {
		t.Error("scim_shadow_live_state_duration_seconds is not exposed")
	}
}
