package shadow

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ModeTable caches the run-time mode overrides of a Store, so that every request does not
// query it. Overrides set through Set are visible at once on this instance; overrides set by
// another instance sharing the store are seen within the refresh interval.
type ModeTable struct {
	store   Store
	refresh time.Duration

	mu       sync.Mutex
	modes    map[string]Mode
	loadedAt time.Time
	loading  chan struct{} // non-nil while one goroutine refreshes
	local    map[string]localMode
}

// localMode is a mode set on this instance, kept over a refresh that began before it was set.
type localMode struct {
	mode Mode
	at   time.Time
}

// NewModeTable returns a table over store refreshed at most every refresh interval.
func NewModeTable(store Store, refresh time.Duration) *ModeTable {
	return &ModeTable{store: store, refresh: refresh, modes: map[string]Mode{}}
}

// Mode returns the run-time mode of a connection, or def when none is stored. When the
// store cannot be read, the last known overrides are used.
func (t *ModeTable) Mode(ctx context.Context, connection string, def Mode) Mode {
	t.mu.Lock()
	stale := time.Since(t.loadedAt) > t.refresh
	if stale && t.loading == nil {
		t.loading = make(chan struct{})
		t.mu.Unlock()
		t.load(ctx)
		t.mu.Lock()
	} else if stale && t.loadedAt.IsZero() {
		// First load in progress: wait for it (it is bounded) rather than answer with a
		// default, even for a request whose client has gone: its write must not be forwarded
		// under the wrong mode.
		ch := t.loading
		t.mu.Unlock()
		<-ch
		t.mu.Lock()
	}
	m, ok := t.modes[connection]
	t.mu.Unlock()
	if !ok {
		return def
	}
	return m
}

func (t *ModeTable) load(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	began := time.Now()
	modes, err := t.store.Modes(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		if modes == nil {
			modes = map[string]Mode{}
		}
		for name, lm := range t.local {
			if lm.at.After(began) {
				modes[name] = lm.mode // set while this read was in flight
			} else {
				delete(t.local, name)
			}
		}
		t.modes = modes
		t.loadedAt = time.Now()
	} else if t.loadedAt.IsZero() {
		// Keep trying on the next request, but not on every one.
		t.loadedAt = time.Now().Add(-t.refresh + time.Second)
	}
	close(t.loading)
	t.loading = nil
}

// Set stores a run-time mode and makes it visible on this instance at once.
func (t *ModeTable) Set(ctx context.Context, connection string, mode Mode) error {
	if err := t.store.SetMode(ctx, connection, mode); err != nil {
		return fmt.Errorf("storing mode of connection %q: %w", connection, err)
	}
	t.Remember(connection, mode)
	return nil
}

// Remember makes a mode already stored (by the review API) visible on this instance at once.
func (t *ModeTable) Remember(connection string, mode Mode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.modes == nil {
		t.modes = map[string]Mode{}
	}
	if t.local == nil {
		t.local = map[string]localMode{}
	}
	t.modes[connection] = mode
	t.local[connection] = localMode{mode: mode, at: time.Now()}
}
