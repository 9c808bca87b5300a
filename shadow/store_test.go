package shadow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tidwall/sjson"
)

// sqliteOpener opens a store in a per-test file; later calls in a test reopen that file.
func sqliteOpener() func(t *testing.T) Store {
	var (
		mu    sync.Mutex
		paths = map[string]string{}
	)
	return func(t *testing.T) Store {
		t.Helper()
		mu.Lock()
		p, ok := paths[t.Name()]
		if !ok {
			p = filepath.Join(t.TempDir(), "scim-shadow.db")
			paths[t.Name()] = p
		}
		mu.Unlock()
		s, err := OpenSQLite(t.Context(), p)
		if err != nil {
			t.Fatalf("OpenSQLite: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func TestSQLiteStore(t *testing.T) {
	runStoreSuite(t, sqliteOpener())
}

func TestPostgresStore(t *testing.T) {
	dsn := os.Getenv("SCIM_SHADOW_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SCIM_SHADOW_TEST_POSTGRES is not set; set it to a DSN such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the store suite on PostgreSQL")
	}
	runStoreSuite(t, postgresOpener(t, dsn))
}

// TestPostgresConcurrentOpen starts several stores on one fresh schema at once, as
// replicas of Caddy do: the advisory lock makes the migrations run once.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := os.Getenv("SCIM_SHADOW_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SCIM_SHADOW_TEST_POSTGRES is not set; skipping")
	}
	admin := postgresAdmin(t, dsn)
	schemaDSN := postgresTestSchema(t, admin, dsn)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgres(t.Context(), schemaDSN)
			if err != nil {
				errs <- err
				return
			}
			_ = s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("OpenPostgres: %v", err)
	}
	s, err := OpenPostgres(t.Context(), schemaDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n, v int64
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(postgresMigrations, "migrations/postgres/*.sql")
	if n != int64(len(files)) || n == 0 {
		t.Errorf("schema_migrations has %d rows (max version %d), want %d", n, v, len(files))
	}
}

func TestPostgresBadDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := OpenPostgres(ctx, "postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("OpenPostgres of an unreachable server: no error")
	} else if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the password: %v", err)
	}
}

func postgresAdmin(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	admin, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connecting to SCIM_SHADOW_TEST_POSTGRES: %v", err)
	}
	t.Cleanup(admin.Close)
	return admin
}

var pgSchemaSeq atomic.Int64

// postgresTestSchema creates a uniquely named schema, dropped when t ends, and returns
// dsn with that schema as its search_path.
func postgresTestSchema(t testing.TB, admin *pgxpool.Pool, dsn string) string {
	t.Helper()
	name := fmt.Sprintf("scim_shadow_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano(), pgSchemaSeq.Add(1))
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(t.Context(), "CREATE SCHEMA "+ident); err != nil {
		t.Fatalf("creating schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return withSearchPath(t, dsn, name)
}

// withSearchPath sets search_path in a URL or key=value DSN.
func withSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parsing SCIM_SHADOW_TEST_POSTGRES: %v", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// postgresOpener gives each test its own schema; later calls in a test reopen it.
func postgresOpener(t *testing.T, dsn string) func(t *testing.T) Store {
	admin := postgresAdmin(t, dsn)
	var (
		mu   sync.Mutex
		dsns = map[string]string{}
	)
	return func(t *testing.T) Store {
		t.Helper()
		mu.Lock()
		d, ok := dsns[t.Name()]
		if !ok {
			d = postgresTestSchema(t, admin, dsn)
			dsns[t.Name()] = d
		}
		mu.Unlock()
		s, err := OpenPostgres(t.Context(), d)
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func TestSQLiteFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	p := filepath.Join(dir, "shadow.db")
	s, err := OpenSQLite(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustSave(t, s, testRecord("c", 1)) // makes SQLite create -wal and -shm
	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{{dir, 0o700 | fs.ModeDir}, {filepath.Dir(dir), 0o700 | fs.ModeDir}, {p, 0o600}, {p + "-wal", 0o600}, {p + "-shm", 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s has mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
	// An existing file keeps its mode: the operator chose it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSQLite(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if fi, _ := os.Stat(p); fi.Mode() != 0o640 {
		t.Errorf("existing file mode changed to %v", fi.Mode())
	}
}

func TestSQLitePragmas(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": fmt.Sprint(sqliteBusyTimeout.Milliseconds()),
	} {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	if n := s.db.Stats().MaxOpenConnections; n != sqliteMaxConns {
		t.Errorf("MaxOpenConnections = %d, want %d", n, sqliteMaxConns)
	}
}

func TestSQLiteMigrationsRunOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.db")
	files, _ := fs.Glob(sqliteMigrations, "migrations/sqlite/*.sql")
	if len(files) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i := range 3 {
		s, err := OpenSQLite(t.Context(), p)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var n, v int64
		if err := s.db.QueryRowContext(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		// Versions may have gaps (numbers reserved by other branches): the highest is the
		// last file's.
		last, _ := strconv.ParseInt(strings.SplitN(path.Base(files[len(files)-1]), "_", 2)[0], 10, 64)
		if n != int64(len(files)) || v != last {
			t.Errorf("open %d: schema_migrations has %d rows, max version %d; want %d, %d", i, n, v, len(files), last)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSQLiteTwoStoresOneFile covers a Caddy reload, when the stores of the old and the
// new config are open on one file at once: busy_timeout serialises their writers.
func TestSQLiteTwoStoresOneFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "two.db")
	a, err := OpenSQLite(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenSQLite(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if g%2 == 1 {
				s = b
			}
			for i := range 10 {
				if _, err := s.SaveRecord(t.Context(), testRecord("c", g*100+i)); err != nil {
					failed.Add(1)
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	recs, _ := mustRecords(t, a, "c", RecordQuery{Limit: 1000})
	if len(recs) != 160 {
		t.Errorf("%d records, want 160", len(recs))
	}
}

func TestSQLitePathEscaping(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "odd name?x=1#frag%41.db")
	s, err := OpenSQLite(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, testRecord("c", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("database not at its path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "odd name?x=1#frag%41.db") {
			t.Errorf("unexpected file %q", e.Name())
		}
	}
	s, err = OpenSQLite(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if recs, _ := mustRecords(t, s, "c", RecordQuery{}); len(recs) != 1 {
		t.Errorf("reopened: %d records", len(recs))
	}
}

func TestSQLiteOpenErrors(t *testing.T) {
	if _, err := OpenSQLite(t.Context(), ""); err == nil {
		t.Error("empty path: no error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSQLite(t.Context(), filepath.Join(file, "sub", "x.db")); err == nil {
		t.Error("path below a file: no error")
	}
	notDB := filepath.Join(t.TempDir(), "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSQLite(t.Context(), notDB); err == nil {
		t.Error("a file that is not a database: no error")
	}
}

func TestRecordLimitsAndCursor(t *testing.T) {
	for in, want := range map[int]int{-5: 100, 0: 100, 1: 1, 100: 100, 1000: 1000, 1001: 1000, 1 << 30: 1000} {
		if got := normalizeLimit(in); got != want {
			t.Errorf("normalizeLimit(%d) = %d, want %d", in, got, want)
		}
	}
	for _, id := range []int64{1, 42, 1 << 62} {
		got, err := decodeCursor(encodeCursor(id))
		if err != nil || got != id {
			t.Errorf("cursor roundtrip of %d = %d, %v", id, got, err)
		}
	}
	if _, err := decodeCursor("x"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("decodeCursor(x) = %v", err)
	}
	// Filters are parameters, never SQL text.
	q, args, _, err := recordsQuery("c'; DROP TABLE records; --", RecordQuery{User: "' OR 1=1 --", ResourceType: "x'", Method: "y", Status: "z"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(q, "'; DROP") || strings.Contains(q, "OR 1=1") || strings.Contains(q, "x'") || len(args) != 6 {
		t.Errorf("query built from input: %s %v", q, args)
	}
}

// createVersion1 brings an empty database to schema version 1 only, as a release before
// migration 002 left it, and adds one record in that schema; it returns the record's id.
func createVersion1(t *testing.T, b sqlBackend, migrations []sqlMigration) int64 {
	t.Helper()
	if len(migrations) < 2 || migrations[0].version != 1 {
		t.Fatalf("want migration 1 and later ones, have %d", len(migrations))
	}
	applied, err := applyMigrations(t.Context(), b, migrations[:1])
	if err != nil || !slices.Equal(applied, []int64{1}) {
		t.Fatalf("applying migration 1: %v, %v", applied, err)
	}
	var id int64
	err = b.writeRow(t.Context(), `INSERT INTO records (connection, created_at, last_seen_at, method, path,
		resource_type, resource_id, resource_key, operation, status, dedupe_hash, original, effective, changes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
		"old", b.timeArg(suiteT0), b.timeArg(suiteT0), "PATCH", "/scim/v2/Users/u-old", "User", "u-old", "Old.User",
		"patch", "pending", "old-hash", `{"method":"PATCH","url":"/scim/v2/Users/u-old"}`, `{"method":"PATCH","url":"/scim/v2/Users/u-old"}`,
		`[{"op":"replace","path":"active","new":false}]`).Scan(&id)
	if err != nil {
		t.Fatalf("inserting a version 1 record: %v", err)
	}
	return id
}

// checkUpgraded checks a store opened on a version 1 database holding record oldID.
func checkUpgraded(t *testing.T, s Store, oldID int64) {
	t.Helper()
	ctx := t.Context()
	old, err := s.Record(ctx, "old", oldID)
	if err != nil {
		t.Fatalf("reading the version 1 record: %v", err)
	}
	if old.Live != nil || old.Projected != nil || old.Errors != 0 || old.Deprovision || old.Subjects != nil ||
		old.Key != "Old.User" || old.Original.URL != "/scim/v2/Users/u-old" || compactJSON(t, old.Changes) != `[{"op":"replace","path":"active","new":false}]` {
		t.Errorf("version 1 record after the upgrade = %+v", old)
	}
	// The old record is found through its own target, and dedupes.
	if recs, _ := mustRecords(t, s, "old", RecordQuery{User: "old.user"}); !slices.Equal(recordIDs(recs), []int64{oldID}) {
		t.Errorf("Records(user old.user) = %v", recordIDs(recs))
	}
	if got, err := s.PendingProjection(ctx, "old", "User", "u-old"); err != nil || got != nil {
		t.Errorf("PendingProjection of the version 1 record = %s, %v; want none, found", got, err)
	}
	retry := &Record{Connection: "old", Method: "PATCH", Path: "/scim/v2/Users/u-old", DedupeHash: "old-hash",
		Subjects: []Subject{{Kind: "user", ID: "u-old"}}}
	if got := mustSave(t, s, retry); got.ID != oldID || got.Attempts != 2 || got.Subjects != nil {
		t.Errorf("retry of the version 1 record: id %d attempts %d subjects %v", got.ID, got.Attempts, got.Subjects)
	}
	// New records use the new columns.
	rec := subjectRecord("old", "Group", "g", "G", Subject{Kind: "user", ID: "u-old", Change: "removed"})
	rec.Errors, rec.Deprovision = 1, true
	saved := mustSave(t, s, rec)
	if recs, _ := mustRecords(t, s, "old", RecordQuery{User: "u-old", Deprovisions: true}); !slices.Equal(recordIDs(recs), []int64{saved.ID}) {
		t.Errorf("Records(user u-old, deprovisions) = %v", recordIDs(recs))
	}
	infos, err := s.Connections(ctx)
	if err != nil || len(infos) != 1 || infos[0] != (ConnectionInfo{Name: "old", Pending: 2, Errors: 1, Deprovisions: 1}) {
		t.Errorf("Connections = %+v, %v", infos, err)
	}
}

func TestSQLiteMigrationUpgrade(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v1.db")
	if err := createSQLiteFile(p); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(p))
	if err != nil {
		t.Fatal(err)
	}
	migrations, err := loadMigrations(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	oldID := createVersion1(t, sqliteBackend{q: tx}, migrations)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(t.Context(), p)
	if err != nil {
		t.Fatalf("opening a version 1 database: %v", err)
	}
	defer s.Close()
	var n, v int64
	if err := s.db.QueryRowContext(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(migrations)) || v != migrations[len(migrations)-1].version {
		t.Errorf("schema_migrations: %d rows, max version %d", n, v)
	}
	checkUpgraded(t, s, oldID)
}

func TestPostgresMigrationUpgrade(t *testing.T) {
	dsn := os.Getenv("SCIM_SHADOW_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SCIM_SHADOW_TEST_POSTGRES is not set; skipping")
	}
	admin := postgresAdmin(t, dsn)
	schemaDSN := postgresTestSchema(t, admin, dsn)
	migrations, err := loadMigrations(postgresMigrations, "migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(t.Context(), schemaDSN)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	oldID := createVersion1(t, pgBackend{q: tx}, migrations)
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	s, err := OpenPostgres(t.Context(), schemaDSN)
	if err != nil {
		t.Fatalf("opening a version 1 database: %v", err)
	}
	defer s.Close()
	var n, v int64
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(migrations)) || v != migrations[len(migrations)-1].version {
		t.Errorf("schema_migrations: %d rows, max version %d", n, v)
	}
	checkUpgraded(t, s, oldID)
}

// TestSQLiteSubjectFilterPlan checks that the subject filters read records by id through
// (connection, id DESC) (no sort of the matches, no scan) and find subjects and targets
// through their indexes.
func TestSQLiteSubjectFilterPlan(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q, args, _, err := recordsQuery("c", RecordQuery{User: "alice", Group: "admins", ErrorsOnly: true, Deprovisions: true, Cursor: encodeCursor(100)})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "\n")
	if strings.Contains(joined, "TEMP B-TREE") || strings.Contains(joined, "SCAN") || strings.Contains(joined, "CORRELATED") ||
		// Records by id, from the subjects' ids (id=?) or a walk (id<?), through
		// (connection, id DESC) or one of its partial forms (migration 006).
		!regexp.MustCompile(`records_connection_(id|errors|deprovision) \(connection=\? AND id[<=]\?`).MatchString(joined) ||
		!strings.Contains(joined, "record_subjects_key (connection=? AND kind=? AND <expr>=?)") ||
		!strings.Contains(joined, "record_subjects_id (connection=? AND kind=? AND subject_id=?)") ||
		!strings.Contains(joined, "records_connection_key (connection=? AND <expr>=?)") ||
		!strings.Contains(joined, "records_connection_resource_id (connection=? AND resource_id=?)") {
		t.Errorf("plan of a filtered page:\n%s", joined)
	}
}

// TestPostgresAnalyzesANewStore: a store whose records table has no statistics runs
// ANALYZE once when it has saved postgresEarlyAnalyzeAfter records, after which
// PendingProjection seeks the resource's records by id instead of filtering every pending
// record of the connection (what PostgreSQL chose without statistics).
func TestPostgresAnalyzesANewStore(t *testing.T) {
	dsn := os.Getenv("SCIM_SHADOW_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SCIM_SHADOW_TEST_POSTGRES is not set; skipping")
	}
	s, err := OpenPostgres(t.Context(), postgresTestSchema(t, postgresAdmin(t, dsn), dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	analyzed := func() bool {
		t.Helper()
		var at *time.Time
		if err := s.pool.QueryRow(t.Context(), `SELECT last_analyze FROM pg_stat_user_tables
			WHERE relid = 'records'::regclass`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at != nil
	}
	save := func(from, to int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for n := from + w; n < to; n += 8 {
					rec := testRecord("c", n)
					rec.ResourceID = fmt.Sprintf("u%d", n)
					if _, err := s.SaveRecord(t.Context(), rec); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	save(0, postgresEarlyAnalyzeAfter-1)
	if analyzed() {
		t.Fatalf("ANALYZE ran after %d records, before the threshold", postgresEarlyAnalyzeAfter-1)
	}
	save(postgresEarlyAnalyzeAfter-1, postgresEarlyAnalyzeAfter+50)
	deadline := time.Now().Add(20 * time.Second)
	for !analyzed() {
		if time.Now().After(deadline) {
			t.Fatalf("no ANALYZE of records 20 s after %d records were saved", postgresEarlyAnalyzeAfter+50)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var plan strings.Builder
	rows, err := s.pool.Query(t.Context(), "EXPLAIN "+pendingProjectionByID, "c", "u-none", "User")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	// The id is an index condition, not a filter over the connection's records.
	if !regexp.MustCompile(`Index Cond: \([^\n]*resource_id = `).MatchString(plan.String()) {
		t.Errorf("PendingProjection after ANALYZE does not seek the id:\n%s", plan.String())
	}
}

// A record that did not come from the engine has its documents checked: SaveRecord refuses
// one that is not valid UTF-8 JSON, and keeps a request body that is not as text.
func TestSaveRecordChecksDocuments(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := Record{Connection: "c", Method: "POST", Path: "/Users", ResourceType: "User", Operation: "create"}
	for name, doc := range map[string]json.RawMessage{
		"changes":   json.RawMessage(`[{"op":"add"`),
		"findings":  json.RawMessage("[\"\xff\"]"),
		"projected": json.RawMessage(`{"userName":}`),
	} {
		rec := base
		switch name {
		case "changes":
			rec.Changes = doc
		case "findings":
			rec.Findings = doc
		case "projected":
			rec.Projected = doc
		}
		if _, err := s.SaveRecord(t.Context(), &rec); err == nil || !strings.Contains(err.Error(), name+": not valid JSON") {
			t.Errorf("SaveRecord with invalid %s: err = %v, want %q", name, err, name+": not valid JSON")
		}
	}
	rec := base
	rec.Original = StoredRequest{Method: "POST", URL: "/Users", Body: json.RawMessage("{\"userName\":\"\xff\"}")}
	saved, err := s.SaveRecord(t.Context(), &rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Record(t.Context(), "c", saved.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Original.Body) != 0 || got.Original.Text != "{\"userName\":\"\uFFFD\"}" {
		t.Errorf("a body that is not UTF-8 was stored as body %q, text %q; want it as text", got.Original.Body, got.Original.Text)
	}
}

// The dedupe hash is stored with pending records, so a retry after an upgrade must hash
// to the same value: SHA-256 of the parts, each followed by a NUL byte.
func TestDedupeHash(t *testing.T) {
	body := []byte(`{"userName":"bjensen"}`)
	sum := sha256.Sum256([]byte("okta\x00POST\x00/scim/v2/Users\x00" + string(body) + "\x00\x00"))
	if got, want := dedupeHash("okta", "POST", "/scim/v2/Users", body, ""), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("dedupeHash = %s, want %s", got, want)
	}
	if dedupeHash("okta", "POST", "/scim/v2/Users", body, "") == dedupeHash("okta", "POST", "/scim/v2/Users", nil, string(body)) {
		t.Error("a body and the same bytes as text hash alike")
	}
}

// A stored request's body is spliced in as the last member, where sjson put it before, so
// stored documents keep their bytes.
func TestEncodeStoredRequestBody(t *testing.T) {
	for _, sr := range []StoredRequest{
		{Method: "POST", URL: "/Users", Body: json.RawMessage(` {"userName":"a","x":[1,{"y":null}]} `)},
		{Method: "PATCH", URL: "/Users/1?x=<&>", Header: map[string][]string{"X-A": {"1", "2"}}, Body: json.RawMessage(`[]`)},
		{Method: "DELETE", URL: "/Users/1"},
		{Method: "POST", URL: "/Users", Body: json.RawMessage(`{"a":`)}, // kept as text
	} {
		got, err := encodeStoredRequest(sr)
		if err != nil {
			t.Fatal(err)
		}
		bare := sr
		bare.Body = nil
		if !validJSON(sr.Body) {
			bare.Text = string(sr.Body)
		}
		want, err := encodeJSONLibrary(bare)
		if err != nil {
			t.Fatal(err)
		}
		if body := bytes.TrimSpace(sr.Body); len(body) > 0 && validJSON(body) {
			if want, err = sjson.SetRawBytes(want, "body", body); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("encodeStoredRequest(%+v)\n = %s\nwant %s", sr, got, want)
		}
	}
}
