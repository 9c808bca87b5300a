package shadow_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// eventually polls cond until it holds or a generous deadline passes: no timed assertion,
// only a bound on how long a broken implementation can hang the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestModeTableDefaults(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	if err := store.SetMode(ctx, "globex", shadow.ModeLive); err != nil {
		t.Fatal(err)
	}
	mt := shadow.NewModeTable(store, time.Hour)
	tests := []struct {
		conn string
		def  shadow.Mode
		want shadow.Mode
	}{
		{"acme", shadow.ModePreview, shadow.ModePreview},
		{"acme", shadow.ModeLive, shadow.ModeLive},
		{"globex", shadow.ModePreview, shadow.ModeLive}, // stored override wins
		{"Globex", shadow.ModePreview, shadow.ModePreview},
		{"", shadow.ModeLive, shadow.ModeLive},
	}
	for _, tc := range tests {
		if got := mt.Mode(ctx, tc.conn, tc.def); got != tc.want {
			t.Errorf("Mode(%q, default %s) = %s, want %s", tc.conn, tc.def, got, tc.want)
		}
	}
}

func TestModeTableSetIsVisibleAtOnce(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	mt := shadow.NewModeTable(store, time.Hour) // never refreshes during the test
	if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModeLive {
		t.Fatalf("before Set: %s", got)
	}
	for _, m := range []shadow.Mode{shadow.ModePreview, shadow.ModeLive, shadow.ModePreview} {
		if err := mt.Set(ctx, "acme", m); err != nil {
			t.Fatal(err)
		}
		if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != m {
			t.Fatalf("after Set(%s): Mode = %s", m, got)
		}
		stored, err := store.Modes(ctx)
		if err != nil || stored["acme"] != m {
			t.Fatalf("store holds %v (%v), want acme=%s", stored, err, m)
		}
	}
	if got := mt.Mode(ctx, "globex", shadow.ModeLive); got != shadow.ModeLive {
		t.Errorf("another connection: %s", got)
	}
	// Remember makes a mode stored elsewhere (the review API) visible without a store write.
	mt.Remember("initech", shadow.ModePreview)
	if got := mt.Mode(ctx, "initech", shadow.ModeLive); got != shadow.ModePreview {
		t.Errorf("after Remember: %s", got)
	}
}

func TestModeTableSetStoreError(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	mt := shadow.NewModeTable(store, time.Hour)
	if err := mt.Set(ctx, "acme", shadow.Mode("paused")); err == nil {
		// The store may accept any text; then the table must at least reflect it.
		if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != "paused" {
			t.Errorf("Set succeeded but Mode = %s", got)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mt.Set(ctx, "acme", shadow.ModePreview); err == nil {
		t.Fatal("Set on a closed store succeeded")
	}
	if got := mt.Mode(ctx, "acme", shadow.ModeLive); got == shadow.ModePreview {
		t.Errorf("a mode the store refused became visible")
	}
}

func TestModeTableSeesOtherInstances(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	mine := shadow.NewModeTable(store, 50*time.Millisecond)
	theirs := shadow.NewModeTable(store, time.Hour)
	if got := mine.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModeLive {
		t.Fatalf("initial mode %s", got)
	}
	if err := theirs.Set(ctx, "acme", shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other instance's preview", func() bool {
		return mine.Mode(ctx, "acme", shadow.ModeLive) == shadow.ModePreview
	})
	if err := theirs.Set(ctx, "acme", shadow.ModeLive); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other instance's live", func() bool {
		return mine.Mode(ctx, "acme", shadow.ModePreview) == shadow.ModeLive
	})
}

func TestModeTableKeepsLastKnownOnStoreError(t *testing.T) {
	store := openStore(t)
	fs := &faultStore{Store: store}
	ctx := context.Background()
	if err := store.SetMode(ctx, "acme", shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	mt := shadow.NewModeTable(fs, 20*time.Millisecond)
	if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModePreview {
		t.Fatalf("loaded mode %s, want preview", got)
	}
	fs.failModes.Store(true)
	calls := fs.modesCalls.Load()
	eventually(t, "two failing refreshes", func() bool {
		if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModePreview {
			t.Fatalf("with the store failing, Mode = %s, want the last known preview", got)
		}
		return fs.modesCalls.Load() >= calls+2
	})
	// Set on this instance still wins while the store cannot be read.
	if err := mt.Set(ctx, "acme", shadow.ModeLive); err != nil {
		t.Fatal(err)
	}
	if got := mt.Mode(ctx, "acme", shadow.ModePreview); got != shadow.ModeLive {
		t.Errorf("after Set(live) with failing reads: %s", got)
	}
	// The store recovers: its modes are read again.
	if err := store.SetMode(ctx, "globex", shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	fs.failModes.Store(false)
	eventually(t, "globex from the recovered store", func() bool {
		return mt.Mode(ctx, "globex", shadow.ModeLive) == shadow.ModePreview
	})
	if got := mt.Mode(ctx, "acme", shadow.ModePreview); got != shadow.ModeLive {
		t.Errorf("acme after recovery: %s, want live", got)
	}
}

func TestModeTableFirstLoadFails(t *testing.T) {
	store := openStore(t)
	fs := &faultStore{Store: store}
	ctx := context.Background()
	if err := store.SetMode(ctx, "acme", shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	fs.failModes.Store(true)
	mt := shadow.NewModeTable(fs, 20*time.Millisecond)
	if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModeLive {
		t.Fatalf("unreadable store: Mode = %s, want the default", got)
	}
	if got := mt.Mode(ctx, "acme", shadow.ModePreview); got != shadow.ModePreview {
		t.Fatalf("unreadable store: Mode = %s, want the default", got)
	}
	fs.failModes.Store(false)
	eventually(t, "the stored mode once the store recovers", func() bool {
		return mt.Mode(ctx, "acme", shadow.ModeLive) == shadow.ModePreview
	})
}

// gatedStore returns, from Modes, a snapshot taken on entry, but only once released:
// a refresh in flight while something else happens.
type gatedStore struct {
	shadow.Store
	mu      sync.Mutex
	gate    chan struct{} // nil: no gating
	entered chan struct{}
}

func (s *gatedStore) arm() (entered, release chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.entered = make(chan struct{}), make(chan struct{})
	return s.entered, s.gate
}

func (s *gatedStore) Modes(ctx context.Context) (map[string]shadow.Mode, error) {
	snapshot, err := s.Store.Modes(ctx)
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.gate, s.entered = nil, nil
	s.mu.Unlock()
	if gate != nil {
		close(entered)
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return snapshot, err
}

func TestModeTableSetSurvivesRefreshInFlight(t *testing.T) {
	store := openStore(t)
	gs := &gatedStore{Store: store}
	ctx := context.Background()
	mt := shadow.NewModeTable(gs, 20*time.Millisecond)
	if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModeLive {
		t.Fatalf("initial %s", got)
	}
	entered, release := gs.arm()
	loopDone := make(chan struct{})
	go func() {
		// Requests keep coming; the first one after the interval refreshes, and blocks
		// in the gated store until released.
		defer close(loopDone)
		for {
			select {
			case <-entered:
				return
			default:
			}
			mt.Mode(ctx, "acme", shadow.ModeLive)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	<-entered // the refresh read the store before the switch
	if err := mt.Set(ctx, "acme", shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModePreview {
		t.Fatalf("during the refresh: %s, want preview", got)
	}
	close(release)
	<-loopDone // the refresh finished with its stale snapshot
	if got := mt.Mode(ctx, "acme", shadow.ModeLive); got != shadow.ModePreview {
		t.Fatalf("after a refresh begun before Set: %s, want preview", got)
	}
}

// TestModeTableFirstLoadWaiterWithCancelledContext: while the first load of a table is in
// flight (a fresh table after a reload), a request whose client has gone must still get
// the stored mode, not the default. Otherwise a connection switched to preview at run time,
// with a configured default of live, forwards that request's write (invariant 1).
func TestModeTableFirstLoadWaiterWithCancelledContext(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	if err := store.SetMode(ctx, "acme", shadow.ModePreview); err != nil {
		t.Fatal(err)
	}
	gs := &gatedStore{Store: store}
	entered, release := gs.arm()
	mt := shadow.NewModeTable(gs, time.Hour)
	first := make(chan shadow.Mode, 1)
	go func() { first <- mt.Mode(ctx, "acme", shadow.ModeLive) }()
	<-entered

	gone, cancel := context.WithCancel(ctx)
	cancel()
	second := make(chan shadow.Mode, 1)
	go func() { second <- mt.Mode(gone, "acme", shadow.ModeLive) }()
	var got shadow.Mode
	select {
	case got = <-second: // answered before the first load finished
		close(release)
	case <-time.After(200 * time.Millisecond): // waiting for the first load, as it should
		close(release)
		got = <-second
	}
	if m := <-first; m != shadow.ModePreview {
		t.Errorf("first request: %s, want preview", m)
	}
	if got != shadow.ModePreview {
		t.Errorf("request with a cancelled context during the first load: %s, want the stored preview", got)
	}
}
