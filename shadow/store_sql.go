package shadow

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds what the SQLite and PostgreSQL stores share: the SQL text (both accept
// $N placeholders, ON CONFLICT … DO UPDATE and RETURNING), argument encoding, row
// decoding, cursors and the migration files. Every statement is a constant; input only
// ever travels as a parameter.

// ErrBadCursor is returned by Records when RecordQuery.Cursor was not produced by Records.
var ErrBadCursor = errors.New("invalid cursor")

// Limits of one page of Records.
const (
	DefaultRecordLimit = 100  // RecordQuery.Limit 0
	MaxRecordLimit     = 1000 // larger limits are lowered to this
)

// sqlTimeLayout is how SQLite stores timestamps: UTC, fixed width (microseconds, as in
// PostgreSQL), so that text order is time order.
const sqlTimeLayout = "2006-01-02T15:04:05.000000Z"

// sqlRowScanner is a row of database/sql or pgx.
type sqlRowScanner interface {
	Scan(dest ...any) error
}

// sqlRows is a result set of database/sql or pgx.
type sqlRows interface {
	sqlRowScanner
	Next() bool
	Err() error
	Close()
}

// sqlBackend is the little a store needs from a database driver.
type sqlBackend interface {
	// queryRow runs a query returning one row; Scan reports ErrNotFound for no row.
	queryRow(ctx context.Context, query string, args ...any) sqlRowScanner
	// writeRow is queryRow for a statement that writes (INSERT … RETURNING).
	writeRow(ctx context.Context, query string, args ...any) sqlRowScanner
	query(ctx context.Context, query string, args ...any) (sqlRows, error)
	// exec runs a statement that writes and returns the number of rows it affected.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// timeArg encodes a timestamp parameter.
	timeArg(t time.Time) any
}

// sqlCore implements Store over a sqlBackend; SQLiteStore and PostgresStore embed it.
type sqlCore struct {
	name     string // "sqlite store", "postgres store": the prefix of errors
	db       sqlBackend
	greatest string // the two-argument maximum function: "max" or "GREATEST"
}

// recordColumns are the columns scanRecord reads, in order.
const recordColumns = `id, connection, created_at, last_seen_at, attempts, method, path,
	resource_type, resource_id, resource_key, operation, status, dedupe_hash,
	original, effective, changes, findings`

// SaveRecord commits rec in one statement; an identical pending record (same connection
// and DedupeHash) gets one more attempt and the later LastSeenAt instead of a new row.
// An empty DedupeHash never deduplicates. Timestamps are kept in UTC to the microsecond.
func (c *sqlCore) SaveRecord(ctx context.Context, rec *Record) (Record, error) {
	if rec == nil {
		return Record{}, fmt.Errorf("%s: save record: nil record", c.name)
	}
	if rec.Connection == "" {
		return Record{}, fmt.Errorf("%s: save record: empty connection name", c.name)
	}
	args, err := c.recordArgs(rec)
	if err != nil {
		return Record{}, fmt.Errorf("%s: save record of %q: %w", c.name, rec.Connection, err)
	}
	q := `INSERT INTO records (connection, created_at, last_seen_at, attempts, method, path,
		resource_type, resource_id, resource_key, operation, status, dedupe_hash,
		original, effective, changes, findings)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
	ON CONFLICT (connection, dedupe_hash) WHERE status = 'pending'
	DO UPDATE SET attempts = records.attempts + 1,
		last_seen_at = ` + c.greatest + `(records.last_seen_at, excluded.last_seen_at)
	RETURNING ` + recordColumns
	out, err := scanRecord(c.db.writeRow(ctx, q, args...))
	if err != nil {
		return Record{}, fmt.Errorf("%s: save record of %q: %w", c.name, rec.Connection, err)
	}
	return out, nil
}

// recordArgs encodes rec as the 16 parameters of the INSERT in SaveRecord.
func (c *sqlCore) recordArgs(rec *Record) ([]any, error) {
	now := time.Now()
	created, seen := rec.CreatedAt, rec.LastSeenAt
	if created.IsZero() {
		created = now
	}
	if seen.IsZero() {
		seen = created
	}
	attempts := rec.Attempts
	if attempts < 1 {
		attempts = 1
	}
	status := rec.Status
	if status == "" {
		status = StatusPending
	}
	var hash any
	if rec.DedupeHash != "" {
		hash = sqlText(rec.DedupeHash)
	}
	original, err := encodeStoredRequest(rec.Original)
	if err != nil {
		return nil, fmt.Errorf("encoding original request: %w", err)
	}
	effective, err := encodeStoredRequest(rec.Effective)
	if err != nil {
		return nil, fmt.Errorf("encoding effective request: %w", err)
	}
	changes, err := jsonArg(rec.Changes)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	findings, err := jsonArg(rec.Findings)
	if err != nil {
		return nil, fmt.Errorf("findings: %w", err)
	}
	return []any{
		sqlText(rec.Connection), c.db.timeArg(created), c.db.timeArg(seen), int64(attempts),
		sqlText(rec.Method), sqlText(rec.Path), sqlText(rec.ResourceType), sqlText(rec.ResourceID),
		sqlText(rec.Key), sqlText(rec.Operation), sqlText(string(status)), hash,
		original, effective, changes, findings,
	}, nil
}

// Record returns record id of connection, or ErrNotFound (also when the id belongs to
// another connection).
func (c *sqlCore) Record(ctx context.Context, connection string, id int64) (Record, error) {
	rec, err := scanRecord(c.db.queryRow(ctx,
		`SELECT `+recordColumns+` FROM records WHERE connection = $1 AND id = $2`, connection, id))
	if err != nil {
		return Record{}, fmt.Errorf("%s: record %d of %q: %w", c.name, id, connection, err)
	}
	return rec, nil
}

// Records lists the records of connection matching q, newest first, and the cursor of the
// next page ("" on the last page). A Cursor that Records did not produce is ErrBadCursor.
func (c *sqlCore) Records(ctx context.Context, connection string, q RecordQuery) ([]Record, string, error) {
	query, args, limit, err := recordsQuery(connection, q)
	if err != nil {
		return nil, "", fmt.Errorf("%s: records of %q: %w", c.name, connection, err)
	}
	rows, err := c.db.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("%s: records of %q: %w", c.name, connection, err)
	}
	defer rows.Close()
	out := make([]Record, 0, min(limit, 64))
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, "", fmt.Errorf("%s: records of %q: %w", c.name, connection, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("%s: records of %q: %w", c.name, connection, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// recordsQuery builds the SELECT of Records from constant fragments, chosen by which
// filters are set; the values are parameters. It asks for one row more than the limit to
// know whether a next page exists.
func recordsQuery(connection string, q RecordQuery) (string, []any, int, error) {
	limit := normalizeLimit(q.Limit)
	var sb strings.Builder
	sb.WriteString(`SELECT ` + recordColumns + ` FROM records WHERE connection = $1`)
	args := []any{connection}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Cursor != "" {
		id, err := decodeCursor(q.Cursor)
		if err != nil {
			return "", nil, 0, err
		}
		sb.WriteString(` AND id < ` + param(id))
	}
	if q.User != "" {
		p := param(q.User)
		sb.WriteString(` AND (lower(resource_key) = lower(` + p + `) OR resource_id = ` + p + `)`)
	}
	if q.ResourceType != "" {
		sb.WriteString(` AND lower(resource_type) = lower(` + param(q.ResourceType) + `)`)
	}
	if q.Method != "" {
		sb.WriteString(` AND method = ` + param(strings.ToUpper(q.Method)))
	}
	if q.Status != "" {
		sb.WriteString(` AND status = ` + param(string(q.Status)))
	}
	sb.WriteString(` ORDER BY id DESC LIMIT ` + param(int64(limit+1)))
	return sb.String(), args, limit, nil
}

// normalizeLimit applies the default and the maximum to a page size.
func normalizeLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultRecordLimit
	case n > MaxRecordLimit:
		return MaxRecordLimit
	}
	return n
}

// encodeCursor makes the opaque cursor that continues after record id.
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("r" + strconv.FormatInt(id, 10)))
}

// decodeCursor reverses encodeCursor.
func decodeCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'r' {
		return 0, fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	id, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	return id, nil
}

// DeleteRecords removes every record of connection and returns how many.
func (c *sqlCore) DeleteRecords(ctx context.Context, connection string) (int64, error) {
	n, err := c.db.exec(ctx, `DELETE FROM records WHERE connection = $1`, connection)
	if err != nil {
		return 0, fmt.Errorf("%s: delete records of %q: %w", c.name, connection, err)
	}
	return n, nil
}

// Connections lists every connection with records or a stored mode, with its count of
// pending records, sorted by name (byte order, the same in both databases).
func (c *sqlCore) Connections(ctx context.Context) ([]ConnectionInfo, error) {
	// Two cheap statements rather than one: the count is a scan of the covering index
	// (connection, status) without a temporary B-tree.
	rows, err := c.db.query(ctx, `SELECT connection, COUNT(*) FILTER (WHERE status = 'pending')
		FROM records GROUP BY connection`)
	if err != nil {
		return nil, fmt.Errorf("%s: list connections: %w", c.name, err)
	}
	byName := map[string]*ConnectionInfo{}
	var out []*ConnectionInfo
	for rows.Next() {
		info := &ConnectionInfo{}
		if err := rows.Scan(&info.Name, &info.Pending); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: list connections: %w", c.name, err)
		}
		byName[info.Name] = info
		out = append(out, info)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list connections: %w", c.name, err)
	}
	modes, err := c.Modes(ctx)
	if err != nil {
		return nil, err
	}
	for name, mode := range modes {
		info := byName[name]
		if info == nil {
			info = &ConnectionInfo{Name: name}
			out = append(out, info)
		}
		info.Mode = mode
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	infos := make([]ConnectionInfo, len(out))
	for i, info := range out {
		infos[i] = *info
	}
	return infos, nil
}

// SetMode stores mode as the run-time mode of connection.
func (c *sqlCore) SetMode(ctx context.Context, connection string, mode Mode) error {
	if connection == "" {
		return fmt.Errorf("%s: set mode: empty connection name", c.name)
	}
	if _, err := ParseMode(string(mode)); err != nil {
		return fmt.Errorf("%s: set mode of %q: %w", c.name, connection, err)
	}
	_, err := c.db.exec(ctx, `INSERT INTO connections (name, mode, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at`,
		sqlText(connection), string(mode), c.db.timeArg(time.Now()))
	if err != nil {
		return fmt.Errorf("%s: set mode of %q: %w", c.name, connection, err)
	}
	return nil
}

// Modes returns every stored run-time mode by connection name.
func (c *sqlCore) Modes(ctx context.Context) (map[string]Mode, error) {
	rows, err := c.db.query(ctx, `SELECT name, mode FROM connections`)
	if err != nil {
		return nil, fmt.Errorf("%s: list modes: %w", c.name, err)
	}
	defer rows.Close()
	out := map[string]Mode{}
	for rows.Next() {
		var name, mode string
		if err := rows.Scan(&name, &mode); err != nil {
			return nil, fmt.Errorf("%s: list modes: %w", c.name, err)
		}
		out[name] = Mode(mode)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list modes: %w", c.name, err)
	}
	return out, nil
}

// Purge removes the records last seen before t and returns how many.
func (c *sqlCore) Purge(ctx context.Context, before time.Time) (int64, error) {
	n, err := c.db.exec(ctx, `DELETE FROM records WHERE last_seen_at < $1`, c.db.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("%s: purge records before %s: %w", c.name, before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// scanRecord reads the recordColumns of one row.
func scanRecord(row sqlRowScanner) (Record, error) {
	var (
		rec                 Record
		created, seen       sqlTime
		hash                sql.NullString
		original, effective string
		changes, findings   sql.NullString
		status              string
	)
	err := row.Scan(&rec.ID, &rec.Connection, &created, &seen, &rec.Attempts, &rec.Method, &rec.Path,
		&rec.ResourceType, &rec.ResourceID, &rec.Key, &rec.Operation, &status, &hash,
		&original, &effective, &changes, &findings)
	if err != nil {
		return Record{}, err
	}
	rec.CreatedAt, rec.LastSeenAt = created.t, seen.t
	rec.Status = RecordStatus(status)
	rec.DedupeHash = hash.String
	if err := json.Unmarshal([]byte(original), &rec.Original); err != nil {
		return Record{}, fmt.Errorf("decoding original request of record %d: %w", rec.ID, err)
	}
	if err := json.Unmarshal([]byte(effective), &rec.Effective); err != nil {
		return Record{}, fmt.Errorf("decoding effective request of record %d: %w", rec.ID, err)
	}
	if changes.Valid {
		rec.Changes = json.RawMessage(changes.String)
	}
	if findings.Valid {
		rec.Findings = json.RawMessage(findings.String)
	}
	return rec, nil
}

// sqlTime scans a timestamp stored as TIMESTAMPTZ (PostgreSQL) or as sqlTimeLayout text
// (SQLite) and returns it in UTC.
type sqlTime struct{ t time.Time }

// Scan implements sql.Scanner.
func (st *sqlTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		st.t = v.UTC()
	case string:
		return st.parse(v)
	case []byte:
		return st.parse(string(v))
	default:
		return fmt.Errorf("cannot scan %T into a timestamp", src)
	}
	return nil
}

func (st *sqlTime) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("parsing timestamp %q: %w", s, err)
	}
	st.t = t.UTC()
	return nil
}

// sqliteTime encodes t as the sortable text SQLite stores.
func sqliteTime(t time.Time) any {
	return t.UTC().Truncate(time.Microsecond).Format(sqlTimeLayout)
}

// sqlText makes s storable in both databases: valid UTF-8 without NUL bytes, which
// PostgreSQL text refuses. Redacted request data is all text, so this only ever touches
// hostile or broken input.
func sqlText(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// encodeStoredRequest serialises a StoredRequest as JSON text. A Body that is not valid
// UTF-8 JSON is kept as Text instead, so that a broken body never makes a record unstorable.
func encodeStoredRequest(sr StoredRequest) (string, error) {
	if len(sr.Body) > 0 && (!utf8.Valid(sr.Body) || !json.Valid(sr.Body)) {
		if sr.Text == "" {
			sr.Text = strings.ToValidUTF8(string(sr.Body), "\uFFFD")
		}
		sr.Body = nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sr); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// jsonArg encodes an optional JSON document: NULL when empty or JSON null.
func jsonArg(raw json.RawMessage) (any, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if !utf8.Valid(trimmed) || !json.Valid(trimmed) {
		return nil, errors.New("not valid JSON")
	}
	return string(trimmed), nil
}

// sqlMigration is one numbered schema change.
type sqlMigration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads the files NNN_name.sql of dir in fsys, ordered by version.
func loadMigrations(fsys fs.FS, dir string) ([]sqlMigration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var out []sqlMigration
	seen := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNN_description.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		out = append(out, sqlMigration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrationsTable is created (if missing) before migrations run, inside their transaction.
const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// applyMigrations runs, inside one transaction tx, every migration not yet recorded in
// schema_migrations, in version order, and records it. It returns the versions applied.
func applyMigrations(ctx context.Context, tx sqlBackend, migrations []sqlMigration) ([]int64, error) {
	if _, err := tx.exec(ctx, migrationsTable); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	rows, err := tx.query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	done := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading schema_migrations: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	var applied []int64
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		if _, err := tx.exec(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("applying migration %s: %w", m.name, err)
		}
		if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, time.Now().UTC().Format(sqlTimeLayout)); err != nil {
			return nil, fmt.Errorf("recording migration %s: %w", m.name, err)
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}
