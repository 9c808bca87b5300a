package caddymodule

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"
)

// Events scim-shadow emits through Caddy's events app. Their origin module is the
// scim_shadow app. Subscribe to them in the events app (JSON config:
// apps.events.subscriptions[].events), e.g. with an exec or webhook handler plugin.
const (
	// EventRecorded: a preview write was recorded (also each retry of it).
	// Data: connection, resource, record_id, operation, attempts.
	EventRecorded = "scim_shadow.recorded"
	// EventModeChanged: the review API changed a connection's mode. Data: connection, mode.
	EventModeChanged = "scim_shadow.mode_changed"
	// EventWarning: a warning was opened — a resource's write lacked an attribute marked
	// warn_if_missing and no open warning existed for that resource and attribute (once
	// per warning, not per write; again after a write carrying it resolved it). Emitted
	// when the warning bookkeeping, which runs off the request path, stored it.
	// Data: connection, resource, key, attribute, record_id (its example record; 0: none).
	EventWarning = "scim_shadow.warning"
	// EventApproved: held writes were approved. Data: connection, record_ids.
	EventApproved = "scim_shadow.approved"
	// EventIgnored: held writes were ignored. Data: connection, record_ids.
	EventIgnored = "scim_shadow.ignored"
)

// eventQueueSize bounds the events waiting for the emitter; more are dropped.
const eventQueueSize = 1024

// emitter hands events to Caddy's events app from its own goroutine. Caddy runs event
// handlers synchronously in Emit, and an Observer runs before the handler chain returns
// (so before the response is flushed): emitting inline would let a slow or failing
// subscriber delay or break the IdP's request. Enqueueing never blocks; events keep their
// order; when the queue is full or the emitter has stopped they are dropped and logged.
type emitter struct {
	ctx    caddy.Context
	app    *caddyevents.App
	logger *zap.Logger

	queue   chan queuedEvent
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	started atomic.Bool
	stopped atomic.Bool
	dropped atomic.Int64
}

type queuedEvent struct {
	name string
	data map[string]any
}

// newEmitter uses the config's events app; ctx is the scim_shadow app's, so events
// originate from it.
func newEmitter(ctx caddy.Context, logger *zap.Logger) (*emitter, error) {
	appIface, err := ctx.App("events")
	if err != nil {
		return nil, fmt.Errorf("loading events app: %w", err)
	}
	app, ok := appIface.(*caddyevents.App)
	if !ok {
		return nil, fmt.Errorf("events app is %T, not *caddyevents.App", appIface)
	}
	return &emitter{
		ctx:    ctx,
		app:    app,
		logger: logger,
		queue:  make(chan queuedEvent, eventQueueSize),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}, nil
}

// start runs the emitting goroutine.
func (e *emitter) start() {
	if e.started.CompareAndSwap(false, true) {
		go e.run()
	}
}

// close stops the emitter after it emitted what was queued, waiting at most a few seconds.
func (e *emitter) close() {
	e.once.Do(func() {
		e.stopped.Store(true)
		close(e.stop)
	})
	if !e.started.Load() {
		return
	}
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		e.logger.Warn("event subscribers are slow; not waiting for the queued events")
	}
}

// emit queues an event; it never blocks. data must not be changed afterwards.
func (e *emitter) emit(name string, data map[string]any) {
	if e == nil {
		return
	}
	if e.stopped.Load() {
		e.drop(name, "the scim_shadow app has stopped")
		return
	}
	select {
	case e.queue <- queuedEvent{name, data}:
	default:
		e.drop(name, "the event queue is full")
	}
}

// drop logs a dropped event: the first one and then every 1000th.
func (e *emitter) drop(name, why string) {
	if n := e.dropped.Add(1); n == 1 || n%1000 == 0 {
		e.logger.Warn("event dropped", zap.String("event", name), zap.String("reason", why), zap.Int64("dropped_total", n))
	}
}

func (e *emitter) run() {
	defer close(e.done)
	for {
		select {
		case ev := <-e.queue:
			e.send(ev)
		case <-e.stop:
			for {
				select {
				case ev := <-e.queue:
					e.send(ev)
				default:
					return
				}
			}
		}
	}
}

// send emits one event; a panicking subscriber is logged, never fatal.
func (e *emitter) send(ev queuedEvent) {
	defer func() {
		if r := recover(); r != nil {
			e.logger.Error("event subscriber panicked", zap.String("event", ev.name), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	e.app.Emit(e.ctx, ev.name, ev.data)
}
