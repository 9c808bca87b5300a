package shadow

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/postgres/*.sql
var postgresMigrations embed.FS

// postgresMigrationLock is the advisory lock key that serialises migrations of Caddy
// instances starting at the same time ("SCIMSHDW").
const postgresMigrationLock int64 = 0x5343494d53484457

// postgresDefaultMaxConns is the pool size when the DSN sets no pool_max_conns (pgxpool's
// own default, max(4, CPUs), left the ingest of 64 concurrent writes queueing for
// connections).
const postgresDefaultMaxConns = 16

// postgresSaveQueues is how many group commits of SaveRecord run side by side, each on a
// connection of its own (store_batch.go). Two: while one commits (its fsync), the other
// fills its next batch. More queues made smaller batches and more commits for the same
// writes: at concurrency 64 (SCIM_SHADOW_SAVE_BENCH, local server) 8 queues saved
// 2,137–2,148 records/s at 4–4.5 per commit, 4 queues 3,093 at 7.5, 2 queues
// 2,966–3,721 at 16.
const postgresSaveQueues = 2

// postgresEarlyAnalyzeAfter is how many records a store whose records table has never
// been analyzed saves before it runs ANALYZE itself (see PostgresStore.SaveRecord).
const postgresEarlyAnalyzeAfter = 1000

// PostgresStore is a Store in PostgreSQL, for several Caddy instances sharing one preview.
type PostgresStore struct {
	sqlCore
	pool      *pgxpool.Pool
	closeOnce sync.Once
	// unanalyzed counts the records saved since a store found its records table without
	// statistics; -1 when it had them or the early ANALYZE has started.
	unanalyzed atomic.Int64
	// The early ANALYZE runs in analyzeContext; Close cancels it and waits for it, and
	// closed (under analyzeMu) keeps a save racing with Close from starting one after.
	analyzeContext context.Context
	stopAnalyze    context.CancelFunc
	analyzing      sync.WaitGroup
	analyzeMu      sync.Mutex
	closed         bool
}

var _ Store = (*PostgresStore)(nil)

// OpenPostgres connects to the database of dsn (a URL or key=value string, with pgxpool
// options such as pool_max_conns) and brings its schema up to date. The tables live in
// the first schema of the connection's search_path.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: parsing DSN: %w", err)
	}
	// JIT compilation costs ~80 ms per query whose estimate passes jit_above_cost, and the
	// estimate of PendingResourceGroups' walk does (it cannot know the walk stops after a
	// page): 3 ms of execution became 430 ms (bench/NOTES.md). The store's statements are
	// short; a DSN that sets jit keeps its own value.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, postgresDefaultMaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: connecting: %w", err)
	}
	s := &PostgresStore{
		sqlCore: sqlCore{name: "postgres store", db: pgBackend{q: pool, pool: pool}, greatest: "GREATEST"},
		pool:    pool,
	}
	s.analyzeContext, s.stopAnalyze = context.WithCancel(context.Background())
	s.saver = newGroupCommit(postgresSaveQueues, s.sqlCore.db.inTx, s.saveRecordTx)
	s.saver.saveMany = s.saveRecordsTx
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	var analyzed bool
	if err := pool.QueryRow(ctx, `SELECT COALESCE(last_analyze, last_autoanalyze) IS NOT NULL
		FROM pg_stat_user_tables WHERE relid = 'records'::regclass`).Scan(&analyzed); err != nil || analyzed {
		s.unanalyzed.Store(-1) // unknown or analyzed: autovacuum's business
	}
	return s, nil
}

// SaveRecord is sqlCore.SaveRecord; on a store whose records table has no statistics yet
// (a new one), the postgresEarlyAnalyzeAfter-th record saved starts one ANALYZE of the
// records and their subjects in the background. Without statistics PostgreSQL estimates
// one row for any condition on a connection and picks among the indexes that match it by
// size: the lookup of the newest pending record (PendingProjection), on the path of every
// preview PATCH, PUT and DELETE, then filtered every pending record of the connection
// (2.5 ms per write at 10,000 records, most of the database's time in make bench's
// ingest) until autovacuum's first round, up to a minute after the table reaches 50
// rows, and longer under load. An error of the ANALYZE is dropped: autovacuum still
// comes.
func (s *PostgresStore) SaveRecord(ctx context.Context, rec *Record) (Record, error) {
	out, err := s.sqlCore.SaveRecord(ctx, rec)
	if err == nil && s.unanalyzed.Load() >= 0 && s.unanalyzed.Add(1) == postgresEarlyAnalyzeAfter {
		s.unanalyzed.Store(-1)
		s.analyzeMu.Lock()
		if !s.closed {
			s.analyzing.Go(func() {
				_, _ = s.pool.Exec(s.analyzeContext, `ANALYZE records, record_subjects`)
			})
		}
		s.analyzeMu.Unlock()
	}
	return out, err
}

// migrate applies pending migrations in one transaction, holding a transaction-scoped
// advisory lock so that concurrent instances migrate one after the other.
func (s *PostgresStore) migrate(ctx context.Context) error {
	migrations, err := loadMigrations(postgresMigrations, "migrations/postgres")
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("starting migrations: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgresMigrationLock); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	if _, err := applyMigrations(ctx, pgBackend{q: tx}, migrations); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing migrations: %w", err)
	}
	return nil
}

// Close stops an early ANALYZE and closes the connection pool.
func (s *PostgresStore) Close() error {
	s.closeOnce.Do(func() {
		s.analyzeMu.Lock()
		s.closed = true
		s.analyzeMu.Unlock()
		s.stopAnalyze()
		s.analyzing.Wait()
		s.pool.Close()
	})
	return nil
}

// pgQuerier is what *pgxpool.Pool and pgx.Tx have in common.
type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pgBackend adapts pgx to sqlBackend. pool is set when q is the pool rather than a
// transaction.
type pgBackend struct {
	q    pgQuerier
	pool *pgxpool.Pool
}

// inTx runs fn in a transaction (READ COMMITTED) of the pool.
func (b pgBackend) inTx(ctx context.Context, fn func(tx sqlBackend) error) error {
	if b.pool == nil {
		return fn(b)
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return fn(pgBackend{q: tx}) })
}

func (b pgBackend) queryRow(ctx context.Context, query string, args ...any) sqlRowScanner {
	return pgRow{b.q.QueryRow(ctx, query, args...)}
}

func (b pgBackend) writeRow(ctx context.Context, query string, args ...any) sqlRowScanner {
	return b.queryRow(ctx, query, args...)
}

func (b pgBackend) query(ctx context.Context, query string, args ...any) (sqlRows, error) {
	return b.q.Query(ctx, query, args...)
}

func (b pgBackend) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := b.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (pgBackend) timeArg(t time.Time) any { return t.UTC().Truncate(time.Microsecond) }

// pgRow reports pgx.ErrNoRows as ErrNotFound.
type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
