package caddymodule

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// decisionObserver turns every decision of the engine into structured log fields, metrics
// and events. It never sees a header or a body, so no secret can reach a log, a metric or
// an event. The engine calls it after answering the request; nothing here blocks on a
// subscriber or the store.
type decisionObserver struct {
	logger *zap.Logger
	app    *App // nil: log only
}

// Observe logs, counts and emits one decision.
func (o *decisionObserver) Observe(r *http.Request, d *shadow.Decision) {
	defer func() {
		if v := recover(); v != nil {
			o.logger.Error("observing a decision panicked", zap.Any("panic", v))
		}
	}()
	o.log(d)
	countDecision(d)
	o.observeHold(d)
	if d.Outcome == shadow.OutcomeRecorded && o.app != nil {
		o.app.emit(EventRecorded, map[string]any{
			"connection": d.Connection,
			"resource":   resourceLabel(d.Target),
			"record_id":  d.RecordID,
			"operation":  string(d.Target.Op),
			"attempts":   d.Attempts,
		})
		o.app.kickPending()
	}
}

// log logs one decision with its findings as a compact list (findings: "code:attribute"):
// at info what the module did instead of, or besides, passing a write on (recorded, held,
// staged, an approved write forwarded), at warn a rejection or an error beside a write
// passed on, at error a failure to record, and at debug what it passed on as the
// IdP sent it, rewritten — reads, and live writes. Live writes are at debug as Caddy's
// own handlers log each proxied request: a line per write at info would be a line per
// user of an initial sync, and cost each write a log write (~5 µs of CPU per request of
// the bench's live mix). Each finding also has a line of its own: at warn for warning
// findings, at debug for info findings. The fields are built only when the level is on.
func (o *decisionObserver) log(d *shadow.Decision) {
	level := zapcore.DebugLevel
	switch {
	case d.Outcome == shadow.OutcomeError:
		level = zapcore.ErrorLevel
	case d.Outcome == shadow.OutcomeRejected, d.Err != nil:
		level = zapcore.WarnLevel
	case d.Outcome != shadow.OutcomeForwarded, d.Staged, d.RecordID != 0: // recorded, held, approved
		level = zapcore.InfoLevel
	}
	ce := o.logger.Check(level, "scim request")
	if ce == nil { // passed on, at info: nothing to build
		o.logFindings(d)
		return
	}
	fields := []zap.Field{
		zap.String("connection", d.Connection),
		zap.String("mode", string(d.Mode)),
		zap.String("operation", string(d.Target.Op)),
		zap.String("resource", d.Target.ResourceType),
		zap.String("resource_id", d.Target.ID),
		zap.String("outcome", string(d.Outcome)),
	}
	if d.Staged {
		fields = append(fields, zap.Bool("staged", true))
	}
	if d.HoldReason != "" {
		fields = append(fields, zap.String("hold_reason", d.HoldReason))
	}
	if d.RecordID != 0 {
		fields = append(fields, zap.Int64("record_id", d.RecordID), zap.Int("attempts", d.Attempts))
	}
	if d.StoreDuration > 0 {
		fields = append(fields, zap.Duration("store_duration", d.StoreDuration))
	}
	if d.LiveStateDuration > 0 {
		fields = append(fields, zap.Duration("live_state_duration", d.LiveStateDuration))
	}
	if d.ReverseMapped > 0 {
		fields = append(fields, zap.Int("reverse_mapped", d.ReverseMapped))
	}
	if d.Err != nil {
		fields = append(fields, zap.Error(d.Err))
	}
	if len(d.Findings) > 0 {
		fields = append(fields, zap.Array("findings", findingList(d.Findings)))
	}
	ce.Write(fields...)
	o.logFindings(d)
}

// logFindings gives each finding of a decision its own line: at warn for warning and
// error findings, at debug for info findings.
func (o *decisionObserver) logFindings(d *shadow.Decision) {
	for _, f := range d.Findings {
		lvl := zapcore.DebugLevel
		if f.Severity == "warning" || f.Severity == "error" {
			lvl = zapcore.WarnLevel
		}
		if ce := o.logger.Check(lvl, f.Message); ce != nil {
			ce.Write(
				zap.String("connection", d.Connection),
				zap.String("resource", d.Target.ResourceType),
				zap.String("resource_id", d.Target.ID),
				zap.String("finding", f.Code),
				zap.String("attribute", f.Attribute),
				zap.String("source", f.Source),
				zap.Int64("record_id", d.RecordID),
				zap.String("kind", f.Kind), // the normalisation of a normalized finding
			)
		}
	}
}

// findingList is the compact form of a decision's findings on its log line: one string
// per finding, "code", "code:attribute", or "normalized:kind" for a normalisation.
type findingList []rules.Finding

func (l findingList) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	var buf []byte // one buffer for all: AppendByteString copies it
	for _, f := range l {
		buf = append(buf[:0], f.Code...)
		switch {
		case f.Attribute != "":
			buf = append(append(buf, ':'), f.Attribute...)
		case f.Kind != "":
			buf = append(append(buf, ':'), f.Kind...)
		}
		enc.AppendByteString(buf)
	}
	return nil
}

// WarningRecorder hands the engine the app's warning recorder (shadow.WarningSource).
func (o *decisionObserver) WarningRecorder() *shadow.WarningRecorder {
	if o.app == nil || o.app.obs == nil {
		return nil
	}
	return o.app.obs.warnings
}

// observability is the app's share of metrics and events: the event emitter, the
// trigger of pending-gauge refreshes, and the warning recorder (its events).
type observability struct {
	events      *emitter
	pendingKick chan struct{}
	warnings    *shadow.WarningRecorder
}

// warningCloseTimeout bounds the wait for the warning bookkeeping queued when the process
// exits; warningReloadTimeout when a config reload stops the app (in the background).
const (
	warningCloseTimeout  = 5 * time.Second
	warningReloadTimeout = time.Minute
)

// provisionObservability registers the metrics in this config's registry and connects to
// the events app.
func (a *App) provisionObservability(ctx caddy.Context) error {
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	ev, err := newEmitter(ctx, a.logger.Named("events"))
	if err != nil {
		return err
	}
	a.obs = &observability{events: ev, pendingKick: make(chan struct{}, 1), warnings: a.newWarningRecorder()}
	return nil
}

// newWarningRecorder makes the recorder of this config's warning bookkeeping: it emits
// EventWarning for every warning opened, and logs store failures and drops. Writes queue
// from provisioning on; the worker starts with the app.
func (a *App) newWarningRecorder() *shadow.WarningRecorder {
	wr := shadow.NewWarningRecorder(0)
	logger := a.logger.Named("warnings")
	wr.OnNew = func(w shadow.NewWarning) {
		a.emit(EventWarning, map[string]any{
			"connection": w.Connection,
			"resource":   w.ResourceType,
			"key":        w.Key,
			"attribute":  w.Attribute,
			"record_id":  w.RecordID,
		})
	}
	wr.OnError = func(err error) {
		logger.Error("keeping warnings", zap.Error(err))
	}
	wr.OnDrop = func(total int64) {
		if total == 1 || total%1000 == 0 {
			logger.Warn("warning bookkeeping dropped (queue full or app stopping)", zap.Int64("dropped_total", total))
		}
	}
	return wr
}

// startObservability starts the event emitter and the pending-gauge refresh; both stop
// when stop is closed (the emitter through stopObservability).
func (a *App) startObservability(stop <-chan struct{}) {
	if a.obs == nil {
		return
	}
	a.obs.events.start()
	a.obs.warnings.Start(a.handle.store)
	go a.pendingLoop(stop, a.obs.pendingKick)
}

// stopObservability finishes the queued warning bookkeeping (timeout at most), then
// emits what is queued and stops the emitter.
func (a *App) stopObservability(timeout time.Duration) {
	if a.obs != nil {
		if !a.obs.warnings.Close(timeout) {
			a.logger.Warn("the store is slow; dropping the warning bookkeeping still queued")
		}
		a.obs.events.close()
	}
}

// emit queues an event of this app; it never blocks.
func (a *App) emit(name string, data map[string]any) {
	if a != nil && a.obs != nil {
		a.obs.events.emit(name, data)
	}
}
