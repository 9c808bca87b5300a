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
	// inTx runs fn in one transaction, committed when fn returns nil; a backend that is
	// already a transaction runs fn in it.
	inTx(ctx context.Context, fn func(tx sqlBackend) error) error
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
	original, effective, changes, findings, live, projected, errors, deprovision`

// SaveRecord commits rec and its Subjects in one transaction; an identical pending record
// (same connection and DedupeHash) gets one more attempt and the later LastSeenAt instead
// of a new row, and keeps its own subjects. Only a pending rec is deduplicated, and an
// empty DedupeHash never is. Timestamps are kept in UTC to the microsecond.
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
	subjects := normalizeSubjects(rec.Subjects)
	dedupe := rec.DedupeHash != "" && (rec.Status == "" || rec.Status == StatusPending)
	var out Record
	err = c.db.inTx(ctx, func(tx sqlBackend) error {
		// First the retry of a pending write, then a new row. Under PostgreSQL a concurrent
		// transaction may commit the same pending write between the two: the INSERT then
		// does nothing, and the UPDATE, run again, sees that row.
		for range 3 {
			if dedupe {
				stored, err := scanRecord(tx.writeRow(ctx, `UPDATE records
					SET attempts = attempts + 1, last_seen_at = `+c.greatest+`(last_seen_at, $3)
					WHERE connection = $1 AND dedupe_hash = $2 AND status = 'pending'
					RETURNING `+recordColumns, args[0], args[11], args[2]))
				if err == nil {
					out = stored
					return loadSubjects(ctx, tx, []Record{out}, func(i int, s []Subject) { out.Subjects = s })
				}
				if !errors.Is(err, ErrNotFound) {
					return err
				}
			}
			inserted, err := scanRecord(tx.writeRow(ctx, insertRecord, args...))
			if err == nil {
				if err := insertSubjects(ctx, tx, inserted.ID, rec.Connection, subjects); err != nil {
					return fmt.Errorf("subjects: %w", err)
				}
				out = inserted
				out.Subjects = subjects
				return nil
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return errors.New("a concurrent write of the same request kept changing the record")
	})
	if err != nil {
		return Record{}, fmt.Errorf("%s: save record of %q: %w", c.name, rec.Connection, err)
	}
	return out, nil
}

// insertRecord adds a row for the 20 parameters of recordArgs, or none (no row returned)
// when a pending record with the same connection and dedupe hash exists.
const insertRecord = `INSERT INTO records (connection, created_at, last_seen_at, attempts, method, path,
		resource_type, resource_id, resource_key, operation, status, dedupe_hash,
		original, effective, changes, findings, live, projected, errors, deprovision)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
	ON CONFLICT (connection, dedupe_hash) WHERE status = 'pending' DO NOTHING
	RETURNING ` + recordColumns

// subjectRowsPerInsert bounds the rows of one INSERT into record_subjects (7 parameters
// each), well below the parameter limits of SQLite (32766) and PostgreSQL (65535).
const subjectRowsPerInsert = 500

// insertSubjects stores the subjects of record id, in order.
func insertSubjects(ctx context.Context, tx sqlBackend, id int64, connection string, subjects []Subject) error {
	for start := 0; start < len(subjects); start += subjectRowsPerInsert {
		chunk := subjects[start:min(start+subjectRowsPerInsert, len(subjects))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO record_subjects (record_id, pos, connection, kind, subject_id, subject_key, change) VALUES `)
		args := make([]any, 0, 7*len(chunk))
		for i, s := range chunk {
			if i > 0 {
				sb.WriteString(", ")
			}
			n := len(args)
			sb.WriteString("(")
			for j := 1; j <= 7; j++ {
				if j > 1 {
					sb.WriteString(", ")
				}
				sb.WriteString("$" + strconv.Itoa(n+j))
			}
			sb.WriteString(")")
			args = append(args, id, int64(start+i), sqlText(connection), s.Kind, s.ID, s.Key, s.Change)
		}
		if _, err := tx.exec(ctx, sb.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// normalizeSubjects is subjects as the store keeps them: kinds and changes in lower case,
// text storable (sqlText); nil when there are none. Kinds other than "user" and "group"
// are kept (a record is never refused for them) but no filter finds them.
func normalizeSubjects(subjects []Subject) []Subject {
	if len(subjects) == 0 {
		return nil
	}
	out := make([]Subject, len(subjects))
	for i, s := range subjects {
		out[i] = Subject{
			Kind:   strings.ToLower(sqlText(s.Kind)),
			ID:     sqlText(s.ID),
			Key:    sqlText(s.Key),
			Change: strings.ToLower(sqlText(s.Change)),
		}
	}
	return out
}

// loadSubjects reads the subjects of recs in one query and hands each record's (in
// order) to set with the record's index; records without subjects are not set.
func loadSubjects(ctx context.Context, db sqlBackend, recs []Record, set func(i int, s []Subject)) error {
	if len(recs) == 0 {
		return nil
	}
	index := make(map[int64]int, len(recs))
	args := make([]any, 0, len(recs))
	var sb strings.Builder
	sb.WriteString(`SELECT record_id, kind, subject_id, subject_key, change FROM record_subjects WHERE record_id IN (`)
	for i, r := range recs {
		if _, dup := index[r.ID]; dup {
			continue
		}
		index[r.ID] = i
		if len(args) > 0 {
			sb.WriteString(", ")
		}
		args = append(args, r.ID)
		sb.WriteString("$" + strconv.Itoa(len(args)))
	}
	sb.WriteString(`) ORDER BY record_id, pos`)
	rows, err := db.query(ctx, sb.String(), args...)
	if err != nil {
		return fmt.Errorf("reading subjects: %w", err)
	}
	defer rows.Close()
	byRecord := map[int64][]Subject{}
	for rows.Next() {
		var (
			id int64
			s  Subject
		)
		if err := rows.Scan(&id, &s.Kind, &s.ID, &s.Key, &s.Change); err != nil {
			return fmt.Errorf("reading subjects: %w", err)
		}
		byRecord[id] = append(byRecord[id], s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading subjects: %w", err)
	}
	for id, s := range byRecord {
		set(index[id], s)
	}
	return nil
}

// recordArgs encodes rec as the 20 parameters of insertRecord.
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
	live, err := jsonArg(rec.Live)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	projected, err := jsonArg(rec.Projected)
	if err != nil {
		return nil, fmt.Errorf("projected: %w", err)
	}
	return []any{
		sqlText(rec.Connection), c.db.timeArg(created), c.db.timeArg(seen), int64(attempts),
		sqlText(rec.Method), sqlText(rec.Path), sqlText(rec.ResourceType), sqlText(rec.ResourceID),
		sqlText(rec.Key), sqlText(rec.Operation), sqlText(string(status)), hash,
		original, effective, changes, findings,
		live, projected, int64(max(rec.Errors, 0)), rec.Deprovision,
	}, nil
}

// Record returns record id of connection with its subjects, or ErrNotFound (also when
// the id belongs to another connection).
func (c *sqlCore) Record(ctx context.Context, connection string, id int64) (Record, error) {
	rec, err := c.oneRecord(ctx,
		`SELECT `+recordColumns+` FROM records WHERE connection = $1 AND id = $2`, connection, id)
	if err != nil {
		return Record{}, fmt.Errorf("%s: record %d of %q: %w", c.name, id, connection, err)
	}
	return rec, nil
}

// oneRecord runs a query for one record and reads its subjects.
func (c *sqlCore) oneRecord(ctx context.Context, query string, args ...any) (Record, error) {
	rec, err := scanRecord(c.db.queryRow(ctx, query, args...))
	if err != nil {
		return Record{}, err
	}
	if err := loadSubjects(ctx, c.db, []Record{rec}, func(_ int, s []Subject) { rec.Subjects = s }); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// LatestPending returns the newest pending record of connection whose target has the
// type resourceType (case-insensitive) and the id (exact), or, when id is empty, the key
// (case-insensitive); ErrNotFound when there is none or both id and key are empty.
func (c *sqlCore) LatestPending(ctx context.Context, connection, resourceType, id, key string) (Record, error) {
	var (
		rec Record
		err error
	)
	switch {
	case id != "":
		rec, err = c.oneRecord(ctx, `SELECT `+recordColumns+` FROM records
			WHERE connection = $1 AND resource_id = $2 AND lower(resource_type) = lower($3) AND status = 'pending'
			ORDER BY id DESC LIMIT 1`, connection, id, resourceType)
	case key != "":
		rec, err = c.oneRecord(ctx, `SELECT `+recordColumns+` FROM records
			WHERE connection = $1 AND lower(resource_key) = lower($2) AND lower(resource_type) = lower($3) AND status = 'pending'
			ORDER BY id DESC LIMIT 1`, connection, key, resourceType)
	default:
		err = ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("%s: latest pending %s (id %q, key %q) of %q: %w", c.name, resourceType, id, key, connection, err)
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
	rows.Close() // before the next query: SQLite's pool is small
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(out[limit-1].ID)
	}
	if err := loadSubjects(ctx, c.db, out, func(i int, s []Subject) { out[i].Subjects = s }); err != nil {
		return nil, "", fmt.Errorf("%s: records of %q: %w", c.name, connection, err)
	}
	return out, next, nil
}

// recordsQuery builds the SELECT of Records from constant fragments, chosen by which
// filters are set; the values are parameters. It asks for one row more than the limit to
// know whether a next page exists. The plan stays a walk of (connection, id DESC) that
// stops after one page (see subjectFilter).
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
		sb.WriteString(subjectFilter("user", param(q.User)))
	}
	if q.Group != "" {
		sb.WriteString(subjectFilter("group", param(q.Group)))
	}
	if q.ErrorsOnly {
		sb.WriteString(` AND errors > 0`)
	}
	if q.Deprovisions {
		sb.WriteString(` AND deprovision`)
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

// subjectFilter is the condition "record touches the subject of kind (a constant, "user"
// or "group") whose key (case-insensitive) or id is parameter p": a subject row of the
// record, or the record's own target. The subject rows are an uncorrelated IN subquery,
// run once per query through the indexes (connection, kind, lower(subject_key)) and
// (connection, kind, subject_id) — a UNION ALL, as an OR would make SQLite scan every
// subject of the kind — while the rows are still walked along (connection, id DESC).
// (A correlated EXISTS would probe record_subjects once per record walked, or worse:
// without statistics, SQLite probes it by (connection, kind) alone.)
func subjectFilter(kind, p string) string {
	return ` AND (id IN (SELECT record_id FROM record_subjects WHERE connection = $1 AND kind = '` + kind + `'` +
		` AND lower(subject_key) = lower(` + p + `)` +
		` UNION ALL SELECT record_id FROM record_subjects WHERE connection = $1 AND kind = '` + kind + `'` +
		` AND subject_id = ` + p + `)` +
		` OR (lower(resource_type) = '` + kind + `' AND (lower(resource_key) = lower(` + p + `) OR resource_id = ` + p + `)))`
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

// DeleteRecords removes every record of connection (their subjects go with them, ON
// DELETE CASCADE) and returns how many.
func (c *sqlCore) DeleteRecords(ctx context.Context, connection string) (int64, error) {
	n, err := c.db.exec(ctx, `DELETE FROM records WHERE connection = $1`, connection)
	if err != nil {
		return 0, fmt.Errorf("%s: delete records of %q: %w", c.name, connection, err)
	}
	return n, nil
}

// Connections lists every connection with records or a stored mode, with its counts of
// pending records (all, with errors, deprovisioning), sorted by name (byte order, the
// same in both databases).
func (c *sqlCore) Connections(ctx context.Context) ([]ConnectionInfo, error) {
	// Two cheap statements rather than one: the counts are a scan of the covering index
	// (connection, status, errors, deprovision) without a temporary B-tree.
	rows, err := c.db.query(ctx, `SELECT connection,
			COUNT(*) FILTER (WHERE status = 'pending'),
			COUNT(*) FILTER (WHERE status = 'pending' AND errors > 0),
			COUNT(*) FILTER (WHERE status = 'pending' AND deprovision)
		FROM records GROUP BY connection`)
	if err != nil {
		return nil, fmt.Errorf("%s: list connections: %w", c.name, err)
	}
	byName := map[string]*ConnectionInfo{}
	var out []*ConnectionInfo
	for rows.Next() {
		info := &ConnectionInfo{}
		if err := rows.Scan(&info.Name, &info.Pending, &info.Errors, &info.Deprovisions); err != nil {
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

// Purge removes the records last seen before t (and their subjects) and returns how many.
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
		live, projected     sql.NullString
		status              string
	)
	err := row.Scan(&rec.ID, &rec.Connection, &created, &seen, &rec.Attempts, &rec.Method, &rec.Path,
		&rec.ResourceType, &rec.ResourceID, &rec.Key, &rec.Operation, &status, &hash,
		&original, &effective, &changes, &findings, &live, &projected, &rec.Errors, &rec.Deprovision)
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
	if live.Valid {
		rec.Live = json.RawMessage(live.String)
	}
	if projected.Valid {
		rec.Projected = json.RawMessage(projected.String)
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
