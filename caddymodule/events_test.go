package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/scim-shadow/caddy-scim-shadow/examples/backend"
)

func init() {
	caddy.RegisterModule(testCollector{})
}

// testCollector is an event handler for tests: it keeps every event it is given.
type testCollector struct{}

type collectedEvent struct {
	Name   string
	Origin string
	Data   map[string]any
}

var collected struct {
	sync.Mutex
	events []collectedEvent
}

func (testCollector) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "events.handlers.scim_shadow_test_collector",
		New: func() caddy.Module { return new(testCollector) },
	}
}

func (testCollector) Handle(_ context.Context, e caddy.Event) error {
	ev := collectedEvent{Name: e.Name(), Data: map[string]any{}}
	if o := e.Origin(); o != nil {
		ev.Origin = string(o.CaddyModule().ID)
	}
	for k, v := range e.Data {
		ev.Data[k] = v
	}
	collected.Lock()
	collected.events = append(collected.events, ev)
	collected.Unlock()
	return nil
}

func collectedEvents() []collectedEvent {
	collected.Lock()
	defer collected.Unlock()
	return append([]collectedEvent(nil), collected.events...)
}

const eventsToken = "events-token"

// startInProcessCaddy runs Caddy in this process with the scim_shadow handler for connection
// acme (preview) in front of the example backend, the review API under /review/, and the
// test collector subscribed to the scim_shadow events. It returns the server's base URL.
func startInProcessCaddy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	be, err := backend.New(backend.Options{Token: eventsToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(be)
	t.Cleanup(srv.Close)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{
			"events": map[string]any{"subscriptions": []any{map[string]any{
				"events":   []string{EventRecorded, EventModeChanged, EventHeld, EventGuardTripped, EventApproved, EventIgnored},
				"handlers": []any{map[string]any{"handler": "scim_shadow_test_collector"}},
			}}},
			"scim_shadow": map[string]any{
				"store":        map[string]any{"type": "sqlite", "path": filepath.Join(dir, "shadow.db")},
				"mode_refresh": "100ms",
			},
			"http": map[string]any{"servers": map[string]any{"events": map[string]any{
				"listen":          []string{addr},
				"automatic_https": map[string]any{"disable": true},
				"routes": []any{
					map[string]any{
						"match": []any{map[string]any{"path": []string{"/scim/v2/*"}}},
						"handle": []any{
							map[string]any{
								"handler":    "scim_shadow",
								"connection": "acme",
								"mode":       "preview",
								"hold":       []any{map[string]any{"resource": "User", "operations": []string{"delete"}}},
								"map": map[string]any{"User": map[string]any{"rules": []any{
									map[string]any{"target": "favoriteColor", "from": []string{"favorite_color"}, "warn_if_missing": true},
								}}},
							},
							map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": strings.TrimPrefix(srv.URL, "http://")}}},
						},
					},
					map[string]any{
						"match": []any{map[string]any{"path": []string{"/review/*"}}},
						"handle": []any{
							map[string]any{"handler": "rewrite", "strip_path_prefix": "/review"},
							map[string]any{"handler": "scim_shadow_review"},
						},
					},
				},
			}}},
		},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(raw, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})
	return "http://" + addr
}

func send(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+eventsToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// waitEvents waits until n events were collected, then a little more to see that no more
// come, and returns them.
func waitEvents(t *testing.T, n int) []collectedEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(collectedEvents()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return collectedEvents()
}

func TestEventsRecordedAndModeChanged(t *testing.T) {
	collected.Lock()
	collected.events = nil
	collected.Unlock()
	base := startInProcessCaddy(t)
	users := base + "/scim/v2/Users"

	// Reads emit nothing.
	if status, _, body := send(t, http.MethodGet, users, ""); status != http.StatusOK {
		t.Fatalf("GET: %d %s", status, body)
	}
	// Two writes recorded, then a retry of the first (same record, attempts 2).
	alice := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice","favorite_color":"blue"}`
	bob := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob","favoriteColor":"red"}`
	var ids []int64
	for _, body := range []string{alice, bob, alice} {
		status, h, out := send(t, http.MethodPost, users, body)
		if status != http.StatusTooManyRequests {
			t.Fatalf("preview POST: %d %s", status, out)
		}
		id, err := strconv.ParseInt(h.Get("X-Scim-Shadow-Record"), 10, 64)
		if err != nil {
			t.Fatalf("no record id: %v (%s)", err, out)
		}
		ids = append(ids, id)
	}
	if ids[0] != ids[2] || ids[0] == ids[1] {
		t.Fatalf("record ids %v: want the retry to reuse the first", ids)
	}
	// Go live: one mode_changed; the next write is forwarded and emits nothing.
	if status, _, out := send(t, http.MethodPut, base+"/review/connections/acme/mode", `{"mode":"live"}`); status != http.StatusOK {
		t.Fatalf("PUT mode: %d %s", status, out)
	}
	if status, _, out := send(t, http.MethodPost, users, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol","favoriteColor":"green"}`); status != http.StatusCreated {
		t.Fatalf("live POST: %d %s", status, out)
	}

	got := waitEvents(t, 4)
	want := []collectedEvent{
		{Name: EventRecorded, Origin: "scim_shadow", Data: map[string]any{"connection": "acme", "resource": "User", "record_id": ids[0], "operation": "create", "attempts": 1}},
		{Name: EventRecorded, Origin: "scim_shadow", Data: map[string]any{"connection": "acme", "resource": "User", "record_id": ids[1], "operation": "create", "attempts": 1}},
		{Name: EventRecorded, Origin: "scim_shadow", Data: map[string]any{"connection": "acme", "resource": "User", "record_id": ids[0], "operation": "create", "attempts": 2}},
		{Name: EventModeChanged, Origin: "scim_shadow", Data: map[string]any{"connection": "acme", "mode": "live"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %s\nwant %s", fmtEvents(got), fmtEvents(want))
	}
}

func fmtEvents(evs []collectedEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s from %s %v", e.Name, e.Origin, e.Data)
	}
	return b.String()
}

// TestEventsEmitNeverBlocks: with no goroutine emitting (a stuck subscriber), emitting
// queues up to the bound, then drops; it never waits.
func TestEventsEmitNeverBlocks(t *testing.T) {
	e := &emitter{logger: zap.NewNop(), queue: make(chan queuedEvent, eventQueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 3*eventQueueSize; i++ {
			e.emit(EventRecorded, map[string]any{"i": i})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("emit blocked")
	}
	if got := e.dropped.Load(); got != 2*eventQueueSize {
		t.Errorf("dropped %d, want %d", got, 2*eventQueueSize)
	}
	e.close() // never started: returns at once
	e.emit(EventRecorded, nil)
	if got := e.dropped.Load(); got != 2*eventQueueSize+1 {
		t.Errorf("emit after close was not dropped")
	}
	var nilEmitter *emitter
	nilEmitter.emit(EventRecorded, nil) // no events app: a no-op
}
