// Package caddymodule is the thin Caddy glue of scim-shadow: the scim_shadow app (the store
// and run-time modes, kept across config reloads), the scim_shadow and scim_shadow_review
// HTTP handlers, the admin API, and Caddyfile parsing. The logic lives in shadow/ and rules/.
package caddymodule

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

func init() {
	caddy.RegisterModule(App{})
}

// stores holds open stores by key, so that a config reload reuses the same database
// connection and nothing is closed while a request may still use it.
var stores = caddy.NewUsagePool()

// currentApp is the running app, for the admin API (which Caddy never re-provisions).
var currentApp atomic.Pointer[App]

// App is the scim_shadow app: it owns the store shared by every scim_shadow handler and the
// run-time mode of each connection. It is configured with the `scim_shadow` global option.
type App struct {
	// Store says where records are kept. Default: SQLite under Caddy's data directory.
	Store *StoreConfig `json:"store,omitempty"`
	// Retention is how long records are kept after they were last seen. 0 keeps them.
	Retention caddy.Duration `json:"retention,omitempty"`
	// ModeRefresh is how often run-time modes set by other instances are re-read. Default 2s.
	ModeRefresh caddy.Duration `json:"mode_refresh,omitempty"`
	// ReviewSecret keys the review page's form (CSRF) tokens. Set the same secret on every
	// instance sharing one PostgreSQL store behind a load balancer, so a form one instance
	// served is accepted by the others (and survives restarts). Placeholders such as
	// {env.X} are replaced. Default: a random key per process.
	ReviewSecret string `json:"review_secret,omitempty"`

	key          string
	reviewSecret string // ReviewSecret with placeholders replaced
	handle       *storeHandle
	connections  *sync.Map // connection name → configured default shadow.Mode
	logger       *zap.Logger
	stop         chan struct{}
	obs          *observability // metrics and events (observe.go)
}

// StoreConfig selects the store.
type StoreConfig struct {
	// Type is "sqlite" or "postgres".
	Type string `json:"type"`
	// Path is the SQLite file. Placeholders such as {env.X} are replaced.
	Path string `json:"path,omitempty"`
	// DSN is the PostgreSQL connection string. Placeholders such as {env.X} are replaced.
	DSN string `json:"dsn,omitempty"`
}

// storeHandle is what the usage pool shares across config reloads.
type storeHandle struct {
	store  shadow.Store
	modes  *shadow.ModeTable
	creds  *shadow.Credentials // per-connection tokens (credentials.go)
	stages *shadow.StageTable  // staged go-live
}

// Destruct closes the store once no config uses it.
func (h *storeHandle) Destruct() error { return h.store.Close() }

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "scim_shadow",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens (or reuses) the store.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.connections = new(sync.Map)
	a.reviewSecret = caddy.NewReplacer().ReplaceKnown(a.ReviewSecret, "")
	if err := a.provisionObservability(ctx); err != nil {
		return err
	}
	cfg, err := a.storeConfig()
	if err != nil {
		return err
	}
	refresh := time.Duration(a.ModeRefresh)
	if refresh <= 0 {
		refresh = 2 * time.Second
	}
	a.key = cfg.Type + ":" + cfg.Path + cfg.DSN
	val, _, err := stores.LoadOrNew(a.key, func() (caddy.Destructor, error) {
		st, err := openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		st = instrumentStore(st)
		return &storeHandle{store: st, modes: shadow.NewModeTable(st, refresh), creds: &shadow.Credentials{Store: st},
			stages: shadow.NewStageTable(st, refresh)}, nil
	})
	if err != nil {
		return fmt.Errorf("opening %s store: %w", cfg.Type, err)
	}
	a.handle = val.(*storeHandle)
	return nil
}

// storeConfig resolves placeholders and defaults.
func (a *App) storeConfig() (StoreConfig, error) {
	cfg := StoreConfig{Type: "sqlite"}
	if a.Store != nil {
		cfg = *a.Store
	}
	repl := caddy.NewReplacer()
	cfg.Path = repl.ReplaceKnown(cfg.Path, "")
	cfg.DSN = repl.ReplaceKnown(cfg.DSN, "")
	switch cfg.Type {
	case "sqlite":
		if cfg.Path == "" {
			cfg.Path = filepath.Join(caddy.AppDataDir(), "scim-shadow", "scim-shadow.db")
		}
		abs, err := filepath.Abs(cfg.Path)
		if err != nil {
			return cfg, fmt.Errorf("sqlite path %q: %w", cfg.Path, err)
		}
		cfg.Path = abs
	case "postgres":
		if cfg.DSN == "" {
			return cfg, fmt.Errorf("store postgres needs a DSN")
		}
	default:
		return cfg, fmt.Errorf(`store type must be "sqlite" or "postgres", got %q`, cfg.Type)
	}
	return cfg, nil
}

func openStore(ctx context.Context, cfg StoreConfig) (shadow.Store, error) {
	if cfg.Type == "postgres" {
		return shadow.OpenPostgres(ctx, cfg.DSN)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory of %s: %w", cfg.Path, err)
	}
	return shadow.OpenSQLite(ctx, cfg.Path)
}

// Start publishes the app to the admin API and starts the retention purge.
func (a *App) Start() error {
	currentApp.Store(a)
	a.stop = make(chan struct{})
	a.startObservability(a.stop)
	if a.Retention > 0 {
		go a.purgeLoop(time.Duration(a.Retention))
	}
	return nil
}

// Stop stops the retention purge and finishes the warning bookkeeping: at once when the
// process exits, else (a config reload) in the background.
func (a *App) Stop() error {
	currentApp.CompareAndSwap(a, nil)
	if a.stop != nil {
		close(a.stop)
	}
	if caddy.Exiting() || a.handle == nil {
		a.stopObservability(warningCloseTimeout)
		return nil
	}
	// A config reload: Caddy waits for Stop before the load returns, so the old config's
	// warning bookkeeping drains in the background (up to warningReloadTimeout against a
	// slow store) on a use of the store of its own — the store stays open until it is done,
	// and the new config answers meanwhile.
	if _, _, err := stores.LoadOrNew(a.key, func() (caddy.Destructor, error) {
		return nil, fmt.Errorf("the store of %s is gone", a.key)
	}); err != nil {
		a.stopObservability(warningCloseTimeout)
		return nil
	}
	go func() {
		defer func() { _, _ = stores.Delete(a.key) }()
		a.stopObservability(warningReloadTimeout)
	}()
	return nil
}

// Cleanup releases this config's use of the store.
func (a *App) Cleanup() error {
	if a.handle == nil {
		return nil
	}
	_, err := stores.Delete(a.key)
	return err
}

func (a *App) purgeLoop(retention time.Duration) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := a.handle.store.Purge(ctx, time.Now().Add(-retention))
		cancel()
		if err != nil {
			a.logger.Error("purging old records", zap.Error(err))
		} else if n > 0 {
			a.logger.Info("purged old records", zap.Int64("records", n), zap.Duration("retention", retention))
		}
		select {
		case <-a.stop:
			return
		case <-tick.C:
		}
	}
}

// registerConnection tells the app of a connection a handler serves and its configured mode,
// so the review lists it before it has records.
func (a *App) registerConnection(name string, mode shadow.Mode) {
	a.connections.Store(name, mode)
}

// defaultModes returns the configured mode of every known connection.
func (a *App) defaultModes() map[string]shadow.Mode {
	out := map[string]shadow.Mode{}
	a.connections.Range(func(k, v any) bool {
		out[k.(string)] = v.(shadow.Mode)
		return true
	})
	return out
}

// reviewAPI serves the review endpoints over this app's store.
func (a *App) reviewAPI() *shadow.ReviewAPI {
	return &shadow.ReviewAPI{
		Store:        a.handle.store,
		CSRFSecret:   a.reviewSecret,
		DefaultModes: a.defaultModes,
		OnModeChange: func(connection string, mode shadow.Mode) {
			a.handle.modes.Remember(connection, mode)
			a.logger.Info("connection mode changed", zap.String("connection", connection), zap.String("mode", string(mode)))
			a.emit(EventModeChanged, map[string]any{"connection": connection, "mode": string(mode)})
		},
		OnDecide:    a.onDecide,
		Credentials: a.handle.creds,
		Stages:      a.handle.stages,
	}
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*storeHandle)(nil)
)
