package shadow

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the pure Go "sqlite" driver
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// sqliteBusyTimeout is how long a statement waits for a lock held by another connection
// to the same file (another process, or the store of the previous config during a Caddy
// reload) before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 15 * time.Second

// sqliteMaxConns bounds the connections of a SQLiteStore: one writer at a time, the
// others read (WAL lets readers and the writer run side by side).
const sqliteMaxConns = 8

// SQLiteStore is a Store in one SQLite file (pure Go driver, no cgo).
//
// SQLite allows one writer at a time. The store queues its writers itself, in arrival
// order and honouring their contexts, before they reach SQLite, so concurrent SaveRecord
// calls never meet SQLITE_BUSY; reads use the other connections of the pool and do not
// wait for writes. busy_timeout only covers other handles on the same file (another
// process, or the store of the previous config during a Caddy reload). Each commit is
// fsynced (WAL, synchronous=FULL), so a record SaveRecord returned survives a crash;
// concurrent SaveRecord calls share commits (group commit, store_batch.go).
type SQLiteStore struct {
	sqlCore
	db        *sql.DB
	path      string
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*SQLiteStore)(nil)

// OpenSQLite opens (creating it with mode 0600, and missing parent directories with mode
// 0700) the SQLite database at path and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: resolving %s: %w", path, err)
	}
	if err := createSQLiteFile(abs); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: opening %s: %w", abs, err)
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &SQLiteStore{
		sqlCore: sqlCore{name: "sqlite store", db: sqliteBackend{q: db, db: db, writer: make(chan struct{}, 1), stmts: &sqliteStmts{db: db}}, greatest: "max",
			pendingErrorsIndex: " INDEXED BY records_pending_errors", anonymousParams: true},
		db:   db,
		path: abs,
	}
	// One writer: one queue of group commits.
	s.saver = newGroupCommit(1, s.sqlCore.db.inTx, s.saveRecordTx)
	s.saver.saveMany = s.saveRecordsTx
	if err := s.init(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite store: opening %s: %w", abs, err)
	}
	return s, nil
}

// createSQLiteFile creates the database file with mode 0600 unless it exists, so that
// SQLite (which gives its -wal and -shm files the mode of the database) never creates
// it with the umask's mode.
func createSQLiteFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	// Make the new directory entry durable too.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// sqliteDSN is the driver's name for the file at the absolute path abs, with the pragmas
// every connection needs.
func sqliteDSN(abs string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(abs))
	if !strings.HasPrefix(escaped, "/") {
		escaped = "/" + escaped // a Windows drive path: file:/C:/…
	}
	return "file:" + escaped +
		fmt.Sprintf("?_pragma=busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)" +
		// Statement journals (an INSERT … ON CONFLICT with triggers needs one) in memory,
		// not in a temporary file: ~6% of a preview write's CPU was their write syscalls.
		"&_pragma=temp_store(MEMORY)" +
		"&_txlock=immediate"
}

// init checks the connection settings and runs the migrations.
func (s *SQLiteStore) init(ctx context.Context) error {
	var journal string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
		return fmt.Errorf("reading journal mode: %w", err)
	}
	if !strings.EqualFold(journal, "wal") {
		return fmt.Errorf("journal mode is %q, not WAL (is the file on a file system without shared memory?)", journal)
	}
	migrations, err := loadMigrations(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		return err
	}
	// BEGIN IMMEDIATE (the DSN's _txlock) takes the write lock first, so two processes
	// opening the same file migrate one after the other.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting migrations: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := applyMigrations(ctx, sqliteBackend{q: tx}, migrations); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migrations: %w", err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (s *SQLiteStore) Path() string { return s.path }

// Close closes the database; later calls return the first call's result.
func (s *SQLiteStore) Close() error {
	s.closeOnce.Do(func() {
		if b, ok := s.sqlCore.db.(sqliteBackend); ok {
			b.stmts.close()
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("sqlite store: closing %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// sqliteQuerier is what *sql.DB and *sql.Tx have in common.
type sqliteQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// sqliteBackend adapts database/sql to sqlBackend. When writer is set (a semaphore of
// one), statements that write hold it: the store's writers queue here, not in SQLite.
// db is set when q is the database rather than a transaction; tx when it is a
// transaction of inTx, whose statements run prepared from stmts.
type sqliteBackend struct {
	q      sqliteQuerier
	db     *sql.DB
	tx     *sql.Tx
	writer chan struct{}
	stmts  *sqliteStmts
}

// sqliteMaxStmts bounds the statements sqliteStmts keeps; later ones run unprepared.
const sqliteMaxStmts = 256

// sqliteStmts keeps the statements that transactions run prepared, so that a group
// commit of many records (and every later transaction) does not compile the same SQL
// again for each record: database/sql prepares a *sql.Stmt once per connection, and
// Tx.StmtContext reuses the connection's. The driver otherwise prepares, runs and
// finalizes every statement (~13% of SaveRecord, bench/NOTES.md).
type sqliteStmts struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	closed bool
}

// get returns the prepared statement of query, or nil to run it unprepared (the cache
// is full, closed, or preparing failed: the statement then reports its own error).
func (c *sqliteStmts) get(ctx context.Context, query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok || c.closed || len(c.m) >= sqliteMaxStmts {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

// close closes the statements; later gets return nil.
func (c *sqliteStmts) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		_ = st.Close()
	}
	c.m, c.closed = nil, true
}

// stmt is query prepared on b's transaction, or on the database when b is not a
// transaction (the pending-record lookup run for every preview write, then LatestPending,
// spent ~6% of its CPU compiling the same SQL), or nil.
func (b sqliteBackend) stmt(ctx context.Context, query string) *sql.Stmt {
	st := b.stmts.get(ctx, query)
	if st == nil || b.tx == nil {
		return st
	}
	return b.tx.StmtContext(ctx, st) // closed with the transaction
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE, from the DSN's _txlock) holding the
// writer slot throughout; fn's statements do not take it again.
func (b sqliteBackend) inTx(ctx context.Context, fn func(tx sqlBackend) error) error {
	if b.db == nil {
		return fn(b)
	}
	unlock, err := b.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(sqliteBackend{q: tx, tx: tx, stmts: b.stmts}); err != nil {
		return err
	}
	return tx.Commit()
}

// lockWrite waits for the writer slot; the returned func releases it.
func (b sqliteBackend) lockWrite(ctx context.Context) (func(), error) {
	if b.writer == nil {
		return func() {}, nil
	}
	select {
	case b.writer <- struct{}{}:
		return func() { <-b.writer }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the writer: %w", context.Cause(ctx))
	}
}

func (b sqliteBackend) queryRow(ctx context.Context, query string, args ...any) sqlRowScanner {
	if st := b.stmt(ctx, query); st != nil {
		return sqliteRow{row: st.QueryRowContext(ctx, args...)}
	}
	return sqliteRow{row: b.q.QueryRowContext(ctx, query, args...)}
}

func (b sqliteBackend) writeRow(ctx context.Context, query string, args ...any) sqlRowScanner {
	return sqliteRow{b: b, ctx: ctx, query: query, args: args}
}

func (b sqliteBackend) query(ctx context.Context, query string, args ...any) (sqlRows, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if st := b.stmt(ctx, query); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = b.q.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqliteRows{rows}, nil
}

func (b sqliteBackend) exec(ctx context.Context, query string, args ...any) (int64, error) {
	unlock, err := b.lockWrite(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	var res sql.Result
	if st := b.stmt(ctx, query); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = b.q.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (sqliteBackend) timeArg(t time.Time) any { return sqliteTime(t) }

// sqliteRow reports sql.ErrNoRows as ErrNotFound. A row of writeRow runs its statement
// in Scan, holding the writer slot, since database/sql reads the row only there.
type sqliteRow struct {
	row *sql.Row

	b     sqliteBackend
	ctx   context.Context
	query string
	args  []any
}

func (r sqliteRow) Scan(dest ...any) error {
	row := r.row
	if row == nil {
		unlock, err := r.b.lockWrite(r.ctx)
		if err != nil {
			return err
		}
		defer unlock()
		if st := r.b.stmt(r.ctx, r.query); st != nil {
			row = st.QueryRowContext(r.ctx, r.args...)
		} else {
			row = r.b.q.QueryRowContext(r.ctx, r.query, r.args...)
		}
	}
	err := row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// sqliteRows drops the error of Close, which Err reports.
type sqliteRows struct{ *sql.Rows }

func (r sqliteRows) Close() { _ = r.Rows.Close() }
