package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// Prometheus metrics of scim-shadow.
//
// The collectors live at package level and are registered into the metrics registry of every
// config Caddy loads (ctx.GetMetricsRegistry(), served by the `metrics` handler and the admin
// endpoint's /metrics), so their values keep counting across config reloads instead of
// starting again at zero.
//
// Label cardinality. Every label is bounded by configuration, except `connection`:
//   - connection: one value per connection (IdP tenant). A static `connection` name adds one;
//     a connection taken from a placeholder ({http.request.header.X-Tenant}) adds one per
//     distinct value clients send, so authenticate or match tenants before scim_shadow when
//     the name comes from a request.
//   - mode: live, preview. outcome: forwarded, recorded, rejected, held, error.
//   - operation: create, replace, patch, delete, bulk, read, search (store metrics: the
//     store method, e.g. save_record).
//   - resource: the resource types of the SCIM endpoints (User, Group), or the endpoint name
//     of requests that span types (Bulk, Schemas…).
//   - attribute and source: the targets and `from` paths of the configured mapping rules.
//
// So a series count is about connections × (resource types × operations × outcomes + mapped
// attributes × sources) — tens of series per tenant.
const metricsNamespace = "scim_shadow"

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "requests_total",
		Help:      "SCIM requests handled by scim_shadow, by connection, mode, resource type, operation and outcome (forwarded, recorded, rejected, held, error).",
	}, []string{"connection", "mode", "resource", "operation", "outcome"})

	rewritesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "rewrites_total",
		Help:      "Attributes a mapping rule filled from a fallback path (fallback_used findings), by target attribute and source path.",
	}, []string{"connection", "resource", "attribute", "source"})

	warningsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "warnings_total",
		Help:      "Writes missing an attribute marked warn_if_missing (missing_attribute findings), by attribute.",
	}, []string{"connection", "resource", "attribute"})

	pendingRecords = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Name:      "pending_records",
		Help:      "Recorded writes waiting for go-live or approval, by connection (refreshed from the store).",
	}, []string{"connection"})

	storeErrorsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "store_errors_total",
		Help:      "Failed store operations (not-found answers and calls the caller canceled excluded), by operation.",
	}, []string{"operation"})

	storeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace,
		Name:      "store_duration_seconds",
		Help:      "Duration of store operations, by operation.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"operation"})

	normalizationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "normalizations_total",
		Help:      "IdP dialect normalisations applied to writes (normalized findings), by connection and kind (op_case, booleans, member_removal, manager, dotted_keys).",
	}, []string{"connection", "kind"})

	reverseMappedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "reverse_mapped_total",
		Help:      "Attributes of backend responses moved back to the path the connection's IdP sends them at, by connection and resource type.",
	}, []string{"connection", "resource"})

	heldRecords = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Name:      "held_records",
		Help:      "Live writes held for approval, by connection (refreshed from the store).",
	}, []string{"connection"})

	guardTripsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "guard_trips_total",
		Help:      "Writes a guard held (deprovision, member_removal), by connection and guard; retries are not counted.",
	}, []string{"connection", "guard"})

	liveStateDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace,
		Name:      "live_state_duration_seconds",
		Help:      "Time spent reading the live state of a resource from the backend through the next handler, per request that read it.",
		Buckets:   prometheus.DefBuckets,
	})
)

// collectors are every metric of the module, in registration order.
var collectors = []prometheus.Collector{
	requestsTotal, rewritesTotal, warningsTotal, pendingRecords,
	storeErrorsTotal, storeDuration, liveStateDuration,
	normalizationsTotal, reverseMappedTotal, heldRecords, guardTripsTotal,
}

// storeOps are the operation labels of the instrumented store, by Store method.
var storeOps = map[string]string{
	"SaveRecord":            "save_record",
	"Record":                "record",
	"Records":               "records",
	"PendingResourceGroups": "pending_resource_groups",
	"DeleteRecords":         "delete_records",
	"Connections":           "connections",
	"SetMode":               "set_mode",
	"Modes":                 "modes",
	"PendingProjection":     "pending_projection",
	"Purge":                 "purge",
	"Close":                 "close",
	"NoteWarnings":          "note_warnings",
	"NoteFallbacks":         "note_warnings",
	"WarningSummary":        "warning_summary",
	"WarningUsers":          "warning_users",
	"UserWarnings":          "user_warnings",
	// hold queue
	"RetryHold":         "retry_hold",
	"ClaimApproved":     "claim_approved",
	"FinishHold":        "finish_hold",
	"DecideRecords":     "decide_records",
	"CountDeprovisions": "count_deprovisions",
	// credentials
	"SetCredential":        "set_credential",
	"CredentialConnection": "credential_connection",
	"DeleteCredential":     "delete_credential",
	// staged go-live
	"SetStage":             "set_stage",
	"Stages":               "stages",
	"MarkPendingForwarded": "mark_pending_forwarded",
}

func init() {
	// Error counters exist at 0 from the start, so increase() and "> 0" alerts see the
	// first error.
	for _, op := range storeOps {
		storeErrorsTotal.WithLabelValues(op)
	}
}

// registerMetrics registers the collectors in a config's registry. A collector already
// registered there (the same one) is fine.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}

// Per-request counters, by label values (see counterCache).
var (
	requestCounters       = &counterCache{vec: requestsTotal}
	rewriteCounters       = &counterCache{vec: rewritesTotal}
	normalizationCounters = &counterCache{vec: normalizationsTotal}
)

// countDecision updates the request, finding and latency metrics of one decision.
func countDecision(d *shadow.Decision) {
	resource := resourceLabel(d.Target)
	requestCounters.with([5]string{d.Connection, string(d.Mode), resource, string(d.Target.Op), string(d.Outcome)}, 5).Inc()
	for _, f := range d.Findings {
		switch f.Code {
		case rules.CodeFallback:
			rewriteCounters.with([5]string{d.Connection, resource, f.Attribute, f.Source}, 4).Inc()
		case rules.CodeMissing:
			warningsTotal.WithLabelValues(d.Connection, resource, f.Attribute).Inc()
		case rules.CodeNormalized:
			normalizationCounters.with([5]string{d.Connection, f.Kind}, 2).Inc()
		}
	}
	if d.ReverseMapped > 0 {
		reverseMappedTotal.WithLabelValues(d.Connection, resource).Add(float64(d.ReverseMapped))
	}
	if d.LiveStateDuration > 0 {
		liveStateDuration.Observe(d.LiveStateDuration.Seconds())
	}
}

// counterCache keeps the children of a CounterVec by their label values, so counting a
// request costs one map lookup instead of the vec's hashing and checking of every label
// value. The vecs it serves never delete series (tests that do call forget), so a kept
// child is always the vec's. It keeps at most maxCachedCounters children; past that the
// vec is asked each time.
type counterCache struct {
	vec *prometheus.CounterVec
	mu  sync.RWMutex
	m   map[[5]string]prometheus.Counter
}

// maxCachedCounters bounds the children one counterCache keeps.
const maxCachedCounters = 4096

// with returns the counter of the first n label values of key.
func (c *counterCache) with(key [5]string, n int) prometheus.Counter {
	c.mu.RLock()
	ctr, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return ctr
	}
	ctr = c.vec.WithLabelValues(key[:n]...)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[[5]string]prometheus.Counter{}
	}
	if len(c.m) < maxCachedCounters {
		c.m[key] = ctr
	}
	c.mu.Unlock()
	return ctr
}

// forget drops the kept children (after series were deleted from the vec).
func (c *counterCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// resourceLabel is the resource type of a request, or its endpoint when it spans types.
func resourceLabel(t shadow.Target) string {
	if t.ResourceType != "" {
		return t.ResourceType
	}
	return t.Endpoint
}

// instrumentedStore times every store operation and counts its failures. Methods added to
// shadow.Store later pass through the embedded store uninstrumented until they are added
// here (TestMetricsStoreWrapperCoversStore says so).
type instrumentedStore struct {
	shadow.Store
}

// instrumentStore wraps st; the app uses the wrapped store for everything.
func instrumentStore(st shadow.Store) shadow.Store {
	if _, ok := st.(*instrumentedStore); ok {
		return st
	}
	return &instrumentedStore{Store: st}
}

// observeStore records one store operation that began at began.
func observeStore(op string, began time.Time, err error) {
	storeDuration.WithLabelValues(op).Observe(time.Since(began).Seconds())
	if err != nil && !errors.Is(err, shadow.ErrNotFound) && !errors.Is(err, context.Canceled) {
		storeErrorsTotal.WithLabelValues(op).Inc()
	}
}

func (s *instrumentedStore) SaveRecord(ctx context.Context, rec *shadow.Record) (shadow.Record, error) {
	began := time.Now()
	out, err := s.Store.SaveRecord(ctx, rec)
	observeStore("save_record", began, err)
	return out, err
}

func (s *instrumentedStore) Record(ctx context.Context, connection string, id int64) (shadow.Record, error) {
	began := time.Now()
	out, err := s.Store.Record(ctx, connection, id)
	observeStore("record", began, err)
	return out, err
}

func (s *instrumentedStore) Records(ctx context.Context, connection string, q shadow.RecordQuery) ([]shadow.Record, string, error) {
	began := time.Now()
	out, cursor, err := s.Store.Records(ctx, connection, q)
	observeStore("records", began, err)
	return out, cursor, err
}

func (s *instrumentedStore) PendingResourceGroups(ctx context.Context, connection string, q shadow.ResourceQuery) ([][]shadow.Record, bool, error) {
	began := time.Now()
	out, more, err := s.Store.PendingResourceGroups(ctx, connection, q)
	observeStore("pending_resource_groups", began, err)
	return out, more, err
}

func (s *instrumentedStore) DeleteRecords(ctx context.Context, connection string) (int64, error) {
	began := time.Now()
	n, err := s.Store.DeleteRecords(ctx, connection)
	observeStore("delete_records", began, err)
	return n, err
}

func (s *instrumentedStore) Connections(ctx context.Context) ([]shadow.ConnectionInfo, error) {
	began := time.Now()
	out, err := s.Store.Connections(ctx)
	observeStore("connections", began, err)
	return out, err
}

func (s *instrumentedStore) SetMode(ctx context.Context, connection string, mode shadow.Mode) error {
	began := time.Now()
	err := s.Store.SetMode(ctx, connection, mode)
	observeStore("set_mode", began, err)
	return err
}

func (s *instrumentedStore) Modes(ctx context.Context) (map[string]shadow.Mode, error) {
	began := time.Now()
	out, err := s.Store.Modes(ctx)
	observeStore("modes", began, err)
	return out, err
}

func (s *instrumentedStore) PendingProjection(ctx context.Context, connection, resourceType, id string) (json.RawMessage, error) {
	began := time.Now()
	out, err := s.Store.PendingProjection(ctx, connection, resourceType, id)
	observeStore("pending_projection", began, err)
	return out, err
}

func (s *instrumentedStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	began := time.Now()
	n, err := s.Store.Purge(ctx, before)
	observeStore("purge", began, err)
	return n, err
}

func (s *instrumentedStore) NoteWarnings(ctx context.Context, note shadow.WarningNote) (shadow.NoteResult, error) {
	began := time.Now()
	out, err := s.Store.NoteWarnings(ctx, note)
	observeStore("note_warnings", began, err)
	return out, err
}

func (s *instrumentedStore) WarningSummary(ctx context.Context, connection string) ([]shadow.WarningAttribute, error) {
	began := time.Now()
	out, err := s.Store.WarningSummary(ctx, connection)
	observeStore("warning_summary", began, err)
	return out, err
}

func (s *instrumentedStore) WarningUsers(ctx context.Context, connection, attribute, cursor string, limit int) ([]shadow.WarningUser, string, error) {
	began := time.Now()
	out, next, err := s.Store.WarningUsers(ctx, connection, attribute, cursor, limit)
	observeStore("warning_users", began, err)
	return out, next, err
}

func (s *instrumentedStore) UserWarnings(ctx context.Context, connection, key string) ([]shadow.Warning, error) {
	began := time.Now()
	out, err := s.Store.UserWarnings(ctx, connection, key)
	observeStore("user_warnings", began, err)
	return out, err
}

func (s *instrumentedStore) Close() error {
	began := time.Now()
	err := s.Store.Close()
	observeStore("close", began, err)
	return err
}

// pendingRefreshInterval is how often the app re-reads the pending backlog of every
// connection; pendingMinGap bounds the refreshes that recorded writes trigger.
const (
	pendingRefreshInterval = 30 * time.Second
	pendingMinGap          = time.Second
)

// pendingSeen holds the connection labels the pending gauge has, so that a connection that
// left the store (its records cleared) is dropped from it.
var pendingSeen = struct {
	sync.Mutex
	names map[string]struct{}
}{names: map[string]struct{}{}}

// refreshPending sets the pending gauge from the store's connection counts; configured
// connections without records show 0.
func refreshPending(ctx context.Context, st shadow.Store, configured map[string]shadow.Mode) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	infos, err := st.Connections(ctx)
	if err != nil {
		return err
	}
	now := make(map[string]int64, len(infos)+len(configured))
	held := make(map[string]int64, len(infos))
	for name := range configured {
		now[name] = 0
	}
	for _, info := range infos {
		now[info.Name] = info.Pending
		held[info.Name] = info.Held
	}
	pendingSeen.Lock()
	defer pendingSeen.Unlock()
	for name := range pendingSeen.names {
		if _, ok := now[name]; !ok {
			pendingRecords.DeleteLabelValues(name)
			heldRecords.DeleteLabelValues(name)
			delete(pendingSeen.names, name)
		}
	}
	for name, n := range now {
		pendingRecords.WithLabelValues(name).Set(float64(n))
		heldRecords.WithLabelValues(name).Set(float64(held[name]))
		pendingSeen.names[name] = struct{}{}
	}
	return nil
}

// pendingLoop refreshes the pending gauge at start, every pendingRefreshInterval, and after
// recorded writes (kicks), at most once per pendingMinGap, until stop is closed.
func (a *App) pendingLoop(stop <-chan struct{}, kick <-chan struct{}) {
	tick := time.NewTicker(pendingRefreshInterval)
	defer tick.Stop()
	for {
		began := time.Now()
		if err := refreshPending(context.Background(), a.handle.store, a.defaultModes()); err != nil {
			a.logger.Warn("refreshing the pending records metric", zap.Error(err))
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		case <-kick:
			if wait := pendingMinGap - time.Since(began); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
	}
}

// kickPending asks for a refresh of the pending gauge soon; it never blocks.
func (a *App) kickPending() {
	if a.obs == nil {
		return
	}
	select {
	case a.obs.pendingKick <- struct{}{}:
	default: // a refresh is already due
	}
}

func (s *instrumentedStore) RetryHold(ctx context.Context, connection, hash string, at time.Time) (shadow.Record, error) {
	began := time.Now()
	out, err := s.Store.RetryHold(ctx, connection, hash, at)
	observeStore("retry_hold", began, err)
	return out, err
}

func (s *instrumentedStore) ClaimApproved(ctx context.Context, connection string, id int64, at time.Time) (bool, error) {
	began := time.Now()
	ok, err := s.Store.ClaimApproved(ctx, connection, id, at)
	observeStore("claim_approved", began, err)
	return ok, err
}

func (s *instrumentedStore) FinishHold(ctx context.Context, connection string, id int64, status shadow.RecordStatus, backendStatus int, backendError string) error {
	began := time.Now()
	err := s.Store.FinishHold(ctx, connection, id, status, backendStatus, backendError)
	observeStore("finish_hold", began, err)
	return err
}

func (s *instrumentedStore) DecideRecords(ctx context.Context, connection string, ids []int64, to shadow.RecordStatus) ([]int64, error) {
	began := time.Now()
	out, err := s.Store.DecideRecords(ctx, connection, ids, to)
	observeStore("decide_records", began, err)
	return out, err
}

func (s *instrumentedStore) CountDeprovisions(ctx context.Context, connection string, since time.Time) (int64, error) {
	began := time.Now()
	n, err := s.Store.CountDeprovisions(ctx, connection, since)
	observeStore("count_deprovisions", began, err)
	return n, err
}

func (s *instrumentedStore) SetCredential(ctx context.Context, connection, tokenHash string, at time.Time) error {
	began := time.Now()
	err := s.Store.SetCredential(ctx, connection, tokenHash, at)
	observeStore("set_credential", began, err)
	return err
}

func (s *instrumentedStore) CredentialConnection(ctx context.Context, tokenHash string) (string, error) {
	began := time.Now()
	out, err := s.Store.CredentialConnection(ctx, tokenHash)
	observeStore("credential_connection", began, err)
	return out, err
}

func (s *instrumentedStore) DeleteCredential(ctx context.Context, connection string) error {
	began := time.Now()
	err := s.Store.DeleteCredential(ctx, connection)
	observeStore("delete_credential", began, err)
	return err
}

func (s *instrumentedStore) SetStage(ctx context.Context, connection string, stage *shadow.Stage) error {
	began := time.Now()
	err := s.Store.SetStage(ctx, connection, stage)
	observeStore("set_stage", began, err)
	return err
}

func (s *instrumentedStore) Stages(ctx context.Context) (map[string]shadow.Stage, error) {
	began := time.Now()
	out, err := s.Store.Stages(ctx)
	observeStore("stages", began, err)
	return out, err
}

func (s *instrumentedStore) MarkPendingForwarded(ctx context.Context, connection, hash string, status shadow.RecordStatus, backendStatus int, backendError string) (int64, error) {
	began := time.Now()
	n, err := s.Store.MarkPendingForwarded(ctx, connection, hash, status, backendStatus, backendError)
	observeStore("mark_pending_forwarded", began, err)
	return n, err
}

// NoteFallbacks forwards the warning recorder's batched fallback counts, measured under
// the note_warnings operation: it is the same bookkeeping.
func (s *instrumentedStore) NoteFallbacks(ctx context.Context, deltas []shadow.FallbackDelta) error {
	began := time.Now()
	err := s.Store.NoteFallbacks(ctx, deltas)
	observeStore("note_warnings", began, err)
	return err
}
