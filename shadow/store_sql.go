package shadow

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	// anonymousParams: the multi-row INSERTs use "?" parameters (SQLite), not "$N".
	anonymousParams bool
	insertCache     sync.Map // insertKey → string: insertSQL

	// pendingErrorsIndex follows "FROM records m" where a query must read the pending
	// records with errors through records_pending_errors (migration 008): SQLite, which
	// has no statistics, prefers records_connection_status_flags and reads every row
	// unless told (" INDEXED BY records_pending_errors"); PostgreSQL chooses it ("").
	pendingErrorsIndex string
	// saver batches SaveRecord calls into group commits (store_batch.go); nil: one
	// transaction per call.
	saver *groupCommit
}

// recordColumns are the columns scanRecord reads, in order; savedColumns the ones
// scanSaved reads: all but the six documents.
const (
	recordColumns     = recordHeadColumns + `, ` + documentColumns + `, ` + recordTailColumns
	savedColumns      = recordHeadColumns + `, ` + recordTailColumns
	recordHeadColumns = `id, connection, created_at, last_seen_at, attempts, method, path,
	resource_type, resource_id, resource_key, operation, status, dedupe_hash`
	recordTailColumns = `errors, deprovision, hold_reason, backend_status, backend_error`
	// documentColumns hold a record's documents: in documents (compressed together) since
	// migration 010, in the six others before it (store_documents.go).
	documentColumns = `original, effective, changes, findings, live, projected, documents`
)

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
	call := &saveCall{
		rec:      rec,
		args:     args,
		subjects: normalizeSubjects(rec.Subjects),
		dedupe:   rec.DedupeHash != "" && (rec.Status == "" || rec.Status == StatusPending),
	}
	var out Record
	if c.saver != nil {
		out, err = c.saver.do(ctx, call) // group commit: store_batch.go
	} else {
		err = c.db.inTx(ctx, func(tx sqlBackend) error {
			out, err = c.saveRecordTx(ctx, tx, call)
			return err
		})
	}
	if err != nil {
		return Record{}, fmt.Errorf("%s: save record of %q: %w", c.name, rec.Connection, err)
	}
	return out, nil
}

// saveRecordTx saves one record in transaction tx (which may hold other records of a
// group commit): as a new row unless a pending record with the same connection and dedupe
// hash exists, else as one more attempt of that record. The INSERT comes first because a
// retry is the exception: most records cost one statement. Under PostgreSQL a concurrent
// transaction may commit or settle the same pending write between the two statements:
// each is then run again, up to three times.
func (c *sqlCore) saveRecordTx(ctx context.Context, tx sqlBackend, call *saveCall) (Record, error) {
	args := call.args
	for range 3 {
		inserted, err := scanSaved(tx.writeRow(ctx, insertRecord, args...))
		if err == nil {
			if err := c.insertSubjects(ctx, tx, []recordSubjects{{inserted.ID, call.rec.Connection, call.subjects}}); err != nil {
				return Record{}, fmt.Errorf("subjects: %w", err)
			}
			inserted.Subjects = call.subjects
			return inserted, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Record{}, err
		}
		if !call.dedupe {
			continue
		}
		stored, err := c.countAttempt(ctx, tx, args)
		if !errors.Is(err, ErrNotFound) {
			return stored, err
		}
	}
	return Record{}, errConcurrentRetry
}

// countAttempt adds an attempt to the pending record of args' connection and dedupe hash
// and returns it with its own subjects; ErrNotFound when there is none.
func (c *sqlCore) countAttempt(ctx context.Context, tx sqlBackend, args []any) (Record, error) {
	stored, err := scanSaved(tx.writeRow(ctx, `UPDATE records
		SET attempts = attempts + 1, last_seen_at = `+c.greatest+`(last_seen_at, $3)
		WHERE connection = $1 AND dedupe_hash = $2 AND status = 'pending'
		RETURNING `+savedColumns, args[0], args[11], args[2]))
	if err != nil {
		return Record{}, err
	}
	err = loadSubjects(ctx, tx, []Record{stored}, func(i int, s []Subject) { stored.Subjects = s })
	return stored, err
}

// saveRecordsTx saves calls in transaction tx with the outcome of saveRecordTx for each,
// in order, but with one multi-row INSERT per chunk of new rows and one INSERT of all
// their subjects: per record, one statement and (PostgreSQL) one trigger run less, and
// one round trip per chunk instead of two per record. A call whose row the INSERT skipped
// (a retry of a pending write, before or earlier in the batch) then goes through
// saveRecordTx, which counts its attempt. Chunks have power-of-two sizes, so that a few
// statement texts serve every batch (prepared once each).
func (c *sqlCore) saveRecordsTx(ctx context.Context, tx sqlBackend, calls []*saveCall) ([]Record, error) {
	outs := make([]Record, len(calls))
	saved := make([]bool, len(calls))
	for start := 0; start < len(calls); {
		n := 1
		for n*2 <= len(calls)-start && n*2 <= maxSaveBatch {
			n *= 2
		}
		if err := c.insertRecords(ctx, tx, calls[start:start+n], outs[start:start+n], saved[start:start+n]); err != nil {
			return nil, err
		}
		start += n
	}
	var subjects []recordSubjects
	for i, call := range calls {
		if saved[i] && len(call.subjects) > 0 {
			subjects = append(subjects, recordSubjects{outs[i].ID, call.rec.Connection, call.subjects})
			outs[i].Subjects = call.subjects
		}
	}
	if err := c.insertSubjects(ctx, tx, subjects); err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	for i, call := range calls {
		if saved[i] {
			continue
		}
		out, err := c.saveRecordTx(ctx, tx, call)
		if err != nil {
			return nil, err
		}
		outs[i] = out
	}
	return outs, nil
}

// insertRecords inserts the rows of calls that conflict with no pending record in one
// statement, sets outs[i] and saved[i] for each row inserted, and leaves the others.
// Rows are matched to calls in id order: both databases number the rows of one INSERT in
// the order of its VALUES, and a skipped row is one whose pending twin (same connection
// and dedupe hash) is not the next row returned.
func (c *sqlCore) insertRecords(ctx context.Context, tx sqlBackend, calls []*saveCall, outs []Record, saved []bool) error {
	args := make([]any, 0, len(calls)*recordArgCount)
	for _, call := range calls {
		args = append(args, call.args...)
	}
	rows, err := tx.query(ctx, c.insertSQL(insertRecordHead, insertRecordTail, len(calls), recordArgCount), args...)
	if err != nil {
		return err
	}
	var inserted []Record
	for rows.Next() {
		rec, err := scanSaved(rows)
		if err != nil {
			rows.Close()
			return err
		}
		inserted = append(inserted, rec)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	slices.SortFunc(inserted, func(a, b Record) int { return cmp.Compare(a.ID, b.ID) })
	next := 0
	for i, call := range calls {
		if next < len(inserted) && sameStoredKey(inserted[next], call) {
			outs[i], saved[i] = inserted[next], true
			next++
			continue
		}
		if !call.dedupe {
			// Only a pending write with a dedupe hash can be skipped.
			return fmt.Errorf("a batch insert did not return the row of record %d of %d", i+1, len(calls))
		}
	}
	if next != len(inserted) {
		return fmt.Errorf("a batch insert returned %d rows, %d matched its records", len(inserted), next)
	}
	return nil
}

// sameStoredKey reports whether rec, as stored, has the connection and dedupe hash of
// call's arguments.
func sameStoredKey(rec Record, call *saveCall) bool {
	hash, _ := call.args[11].(string) // nil: no hash
	return rec.Connection == call.args[0] && rec.DedupeHash == hash
}

// insertRecordHead and insertRecordTail surround the VALUES rows of an insert of the 24
// parameters of recordArgs per row; a row that conflicts with a pending record with the
// same connection and dedupe hash (stored or earlier in the statement) is skipped and
// returns no row.
const (
	insertRecordHead = `INSERT INTO records (connection, created_at, last_seen_at, attempts, method, path,
		resource_type, resource_id, resource_key, operation, status, dedupe_hash,
		original, effective, changes, findings, live, projected, documents, errors, deprovision,
		hold_reason, backend_status, backend_error)
	VALUES `
	insertRecordTail = `
	ON CONFLICT (connection, dedupe_hash) WHERE status = 'pending' DO NOTHING
	RETURNING ` + savedColumns
)

// recordArgCount is the number of parameters recordArgs makes for one record.
const recordArgCount = 24

// insertRecord adds a row for the parameters of recordArgs, or none (no row returned)
// when a pending record with the same connection and dedupe hash exists.
var insertRecord = insertRecordHead + valuesList(1, recordArgCount, false) + insertRecordTail

// valuesList is the VALUES list of a multi-row INSERT: rows tuples of cols parameters,
// numbered in order ("($1, $2), ($3, $4)"), or anonymous ("(?, ?), (?, ?)").
func valuesList(rows, cols int, anonymous bool) string {
	var sb strings.Builder
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range cols {
			if c > 0 {
				sb.WriteString(", ")
			}
			if anonymous {
				sb.WriteByte('?')
			} else {
				sb.WriteString("$" + strconv.Itoa(r*cols+c+1))
			}
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

// insertKey names a statement of sqlCore.insertSQL.
type insertKey struct {
	head, tail string
	rows, cols int
}

// insertSQL is the multi-row INSERT head + VALUES list + tail of this store, made once per
// shape: numbered parameters, or on SQLite anonymous ones. SQLite looks a numbered
// parameter's name up in a list for each one the driver binds (modernc's bind asks every
// parameter's name), so a 128-record batch of 24 columns made ~4.7 million comparisons;
// anonymous parameters have no name to look up.
func (c *sqlCore) insertSQL(head, tail string, rows, cols int) string {
	k := insertKey{head, tail, rows, cols}
	if v, ok := c.insertCache.Load(k); ok {
		return v.(string)
	}
	v := head + valuesList(rows, cols, c.anonymousParams) + tail
	c.insertCache.Store(k, v)
	return v
}

// insertSubjectsHead precedes the VALUES rows of an insert of subjects (7 parameters each).
const insertSubjectsHead = `INSERT INTO record_subjects (record_id, pos, connection, kind, subject_id, subject_key, change) VALUES `

// subjectRowsPerInsert bounds the rows of one INSERT into record_subjects (7 parameters
// each), well below the parameter limits of SQLite (32766) and PostgreSQL (65535). It is
// a power of two, like every chunk's size, so that a few statement texts serve all.
const subjectRowsPerInsert = 512

// recordSubjects are the subjects of one record.
type recordSubjects struct {
	recordID   int64
	connection string
	subjects   []Subject
}

// insertSubjects stores the subjects of records, each record's in order, in as few
// statements as chunks of at most subjectRowsPerInsert rows allow.
func (c *sqlCore) insertSubjects(ctx context.Context, tx sqlBackend, records []recordSubjects) error {
	type row struct {
		rec *recordSubjects
		pos int
	}
	var all []row
	for i := range records {
		for pos := range records[i].subjects {
			all = append(all, row{&records[i], pos})
		}
	}
	for start := 0; start < len(all); {
		n := 1
		for n*2 <= len(all)-start && n*2 <= subjectRowsPerInsert {
			n *= 2
		}
		chunk := all[start : start+n]
		args := make([]any, 0, 7*len(chunk))
		for _, r := range chunk {
			s := r.rec.subjects[r.pos]
			args = append(args, r.rec.recordID, int64(r.pos), sqlText(r.rec.connection), s.Kind, s.ID, s.Key, s.Change)
		}
		if _, err := tx.exec(ctx, c.insertSQL(insertSubjectsHead, "", len(chunk), 7), args...); err != nil {
			return err
		}
		start += n
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
			ID:     identityText(s.ID),
			Key:    identityText(s.Key),
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

// recordArgs encodes rec as the recordArgCount parameters of insertRecord.
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
	var (
		docs recordDocuments
		err  error
	)
	if docs[docOriginal], err = encodeStoredRequest(rec.Original); err != nil {
		return nil, fmt.Errorf("encoding original request: %w", err)
	}
	if docs[docEffective], err = encodeStoredRequest(rec.Effective); err != nil {
		return nil, fmt.Errorf("encoding effective request: %w", err)
	}
	if docs[docChanges], err = jsonArg(rec.Changes, rec.docsValid); err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	if docs[docFindings], err = jsonArg(rec.Findings, rec.docsValid); err != nil {
		return nil, fmt.Errorf("findings: %w", err)
	}
	if docs[docLive], err = jsonArg(rec.Live, false); err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	if docs[docProjected], err = jsonArg(rec.Projected, rec.docsValid); err != nil {
		return nil, fmt.Errorf("projected: %w", err)
	}
	return []any{
		sqlText(rec.Connection), c.db.timeArg(created), c.db.timeArg(seen), int64(attempts),
		sqlText(rec.Method), sqlText(rec.Path), sqlText(rec.ResourceType), identityText(rec.ResourceID),
		identityText(rec.Key), sqlText(rec.Operation), sqlText(string(status)), hash,
		// The six document columns of rows written before migration 010: JSON null in the
		// two that are NOT NULL, NULL in the others.
		"null", "null", nil, nil, nil, nil, encodeDocuments(&docs), int64(max(rec.Errors, 0)), rec.Deprovision,
		sqlText(rec.HoldReason), int64(rec.BackendStatus), sqlText(rec.BackendError),
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

// PendingProjection returns the Projected document of the newest pending record of
// connection whose target has the type resourceType (case-insensitive) and the id
// (exact); ErrNotFound when there is none or id is empty; nil when that record has no
// projection (a DELETE, a write predicted to fail).
func (c *sqlCore) PendingProjection(ctx context.Context, connection, resourceType, id string) (json.RawMessage, error) {
	fail := func(err error) (json.RawMessage, error) {
		return nil, fmt.Errorf("%s: pending projection of %s %q of %q: %w", c.name, resourceType, id, connection, err)
	}
	if id == "" {
		return fail(ErrNotFound)
	}
	var ds documentScan // queryRow reports no row as ErrNotFound
	if err := c.db.queryRow(ctx, pendingProjectionByID, connection, identityText(id), resourceType).Scan(ds.dest(nil)...); err != nil {
		return fail(err)
	}
	docs, err := ds.documents()
	if err != nil {
		return fail(err)
	}
	return docs[docProjected], nil // nil for none: SaveRecord stores JSON null as none (jsonArg)
}

// pendingProjectionByID is the statement of PendingProjection: the document columns only,
// with NULL for the five old ones it does not need. CAST: SQLite checks whether
// "resource_id = $2" implies the partial index condition (an empty resource_id) by the
// value bound, and then compiles the statement again for every new id (~5% of a preview
// write's CPU); a cast is not a bare parameter, and still seeks the index.
const pendingProjectionByID = `SELECT NULL, NULL, NULL, NULL, NULL, projected, documents FROM records
	WHERE connection = $1 AND resource_id = CAST($2 AS TEXT) AND lower(resource_type) = lower($3) AND status = 'pending'
	ORDER BY id DESC LIMIT 1`

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
// know whether a next page exists. The plan is a walk of (connection, id DESC) that
// stops after one page, or, with a subject filter, a walk of the subject's record ids
// (see subjectFilter).
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
		sb.WriteString(subjectFilter("user", param(identityText(q.User))))
	}
	if q.Group != "" {
		sb.WriteString(subjectFilter("group", param(identityText(q.Group))))
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
// record, or the record's own target. It is one uncorrelated IN subquery, a UNION ALL
// of four index lookups — subject rows by (connection, kind, lower(subject_key)) and
// (connection, kind, subject_id), targets by (connection, lower(resource_key)) and
// (connection, resource_id) — so the matching ids drive the query, in id order, through
// (connection, id): its cost follows the subject's records, not the connection's. (With
// the target test as an OR beside the IN, both databases walked every record of the
// connection: 1.7 s for a page on 200,000 records, 1.2 ms this way; bench/NOTES.md.
// A correlated EXISTS would probe record_subjects once per record walked.)
func subjectFilter(kind, p string) string {
	return ` AND id IN (SELECT record_id FROM record_subjects WHERE connection = $1 AND kind = '` + kind + `'` +
		` AND lower(subject_key) = lower(` + p + `)` +
		` UNION ALL SELECT record_id FROM record_subjects WHERE connection = $1 AND kind = '` + kind + `'` +
		` AND subject_id = ` + p +
		` UNION ALL SELECT id FROM records WHERE connection = $1 AND lower(resource_key) = lower(` + p + `)` +
		` AND lower(resource_type) = '` + kind + `'` +
		` UNION ALL SELECT id FROM records WHERE connection = $1 AND resource_id = ` + p +
		` AND lower(resource_type) = '` + kind + `')`
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

// Connections lists every connection with records, warnings or a stored mode, with its
// counts of pending records (all, with errors, deprovisioning) and of open warnings,
// sorted by name (byte order, the same in both databases).
func (c *sqlCore) Connections(ctx context.Context) ([]ConnectionInfo, error) {
	// The counts are kept by triggers of migration 007 (record_counts, a row per
	// connection, or per connection and shard in PostgreSQL): O(connections), not a count
	// of every pending record. records > 0 lists the connections that have records.
	rows, err := c.db.query(ctx, `SELECT connection,
			CAST(SUM(pending) AS BIGINT), CAST(SUM(errors) AS BIGINT),
			CAST(SUM(deprovisions) AS BIGINT), CAST(SUM(held) AS BIGINT)
		FROM record_counts GROUP BY connection HAVING SUM(records) > 0`)
	if err != nil {
		return nil, fmt.Errorf("%s: list connections: %w", c.name, err)
	}
	byName := map[string]*ConnectionInfo{}
	var out []*ConnectionInfo
	for rows.Next() {
		info := &ConnectionInfo{}
		if err := rows.Scan(&info.Name, &info.Pending, &info.Errors, &info.Deprovisions, &info.Held); err != nil {
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
	if err := c.openWarnings(ctx, byName, &out); err != nil {
		return nil, fmt.Errorf("%s: list connections: warnings: %w", c.name, err)
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
// Open warnings stay (an example among the records purged becomes 0); warnings resolved
// before t go.
func (c *sqlCore) Purge(ctx context.Context, before time.Time) (int64, error) {
	n, err := c.db.exec(ctx, `DELETE FROM records WHERE last_seen_at < $1`, c.db.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("%s: purge records before %s: %w", c.name, before.UTC().Format(time.RFC3339), err)
	}
	if _, err := c.db.exec(ctx, `DELETE FROM warnings WHERE resolved_at < $1`, c.db.timeArg(before)); err != nil {
		return n, fmt.Errorf("%s: purge warnings resolved before %s: %w", c.name, before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// scanRecord reads the recordColumns of one row.
func scanRecord(row sqlRowScanner) (Record, error) { return scanRecordOf(row, true) }

// scanSaved reads the savedColumns of one row: a record without its documents.
func scanSaved(row sqlRowScanner) (Record, error) { return scanRecordOf(row, false) }

// scanRecordOf reads the recordColumns (docs) or savedColumns of one row.
func scanRecordOf(row sqlRowScanner, docs bool) (Record, error) {
	var (
		rec           Record
		created, seen sqlTime
		hash          sql.NullString
		status        string
		columns       documentScan
	)
	dest := []any{&rec.ID, &rec.Connection, &created, &seen, &rec.Attempts, &rec.Method, &rec.Path,
		&rec.ResourceType, &rec.ResourceID, &rec.Key, &rec.Operation, &status, &hash}
	if docs {
		dest = columns.dest(dest)
	}
	dest = append(dest, &rec.Errors, &rec.Deprovision, &rec.HoldReason, &rec.BackendStatus, &rec.BackendError)
	if err := row.Scan(dest...); err != nil {
		return Record{}, err
	}
	rec.CreatedAt, rec.LastSeenAt = created.t, seen.t
	rec.Status = RecordStatus(status)
	rec.DedupeHash = hash.String
	if !docs {
		return rec, nil
	}
	stored, err := columns.documents()
	if err != nil {
		return Record{}, fmt.Errorf("record %d: %w", rec.ID, err)
	}
	if err := json.Unmarshal(stored[docOriginal], &rec.Original); err != nil {
		return Record{}, fmt.Errorf("decoding original request of record %d: %w", rec.ID, err)
	}
	if err := json.Unmarshal(stored[docEffective], &rec.Effective); err != nil {
		return Record{}, fmt.Errorf("decoding effective request of record %d: %w", rec.ID, err)
	}
	rec.Changes, rec.Findings = stored[docChanges], stored[docFindings]
	rec.Live, rec.Projected = stored[docLive], stored[docProjected]
	return rec, nil
}

// documentScan receives the documentColumns of a row.
type documentScan struct {
	columns [docCount]sql.NullString // rows written before migration 010
	blob    []byte
}

// dest appends the scan destinations of documentColumns to dest.
func (d *documentScan) dest(dest []any) []any {
	for i := range d.columns {
		dest = append(dest, &d.columns[i])
	}
	return append(dest, &d.blob)
}

// documents are the row's documents: from its documents column when set, else from the
// six columns that held them before migration 010.
func (d *documentScan) documents() (recordDocuments, error) {
	if d.blob != nil {
		return decodeDocuments(d.blob)
	}
	var docs recordDocuments
	for i, c := range d.columns {
		if c.Valid {
			docs[i] = []byte(c.String)
		}
	}
	return docs, nil
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

// maxIdentityBytes bounds a resource id, key or subject as the store keeps it. These
// columns are indexed, and PostgreSQL refuses an index entry over ~2.7 KB: without the
// bound, a write with a longer (incompressible) id or userName could never be recorded.
// Several of them share an index entry (id, key and its lower case), so each gets 512.
const maxIdentityBytes = 512

// identityText is s as a stored resource identity (sqlText): a longer s is cut at a rune
// boundary and ends with "…" and a hash of the whole, so distinct long values stay
// distinct and the same value always maps to the same text — a lookup passes its value
// through identityText too.
func identityText(s string) string {
	s = sqlText(s)
	if len(s) <= maxIdentityBytes {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	suffix := "…" + hex.EncodeToString(sum[:16])
	cut := maxIdentityBytes - len(suffix)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}

// encodeStoredRequest serialises a StoredRequest as JSON text. A Body that is not valid
// UTF-8 JSON is kept as Text instead, so that a broken body never makes a record unstorable.
// A valid Body goes in as it is: encoding/json would check and compact it once more, and
// a preview write stores two bodies.
func encodeStoredRequest(sr StoredRequest) ([]byte, error) {
	body := sr.Body
	sr.Body = nil
	if len(body) > 0 && !sr.bodyValid && !validJSON(body) {
		if sr.Text == "" {
			sr.Text = strings.ToValidUTF8(string(body), "\uFFFD")
		}
		body = nil
	}
	out, err := encodeJSONLibrary(sr)
	if err != nil {
		return nil, err
	}
	if body = bytes.TrimSpace(body); len(body) > 0 {
		// The last member, as sjson.SetRawBytes added it: out is an object without a
		// body (omitempty) and ends in '}'. Spliced, not set: sjson looked the path up
		// and copied the document twice (~3 KB and ~0.7% of a recorded write's CPU).
		spliced := make([]byte, 0, len(out)+len(`,"body":`)+len(body))
		spliced = append(append(append(spliced, out[:len(out)-1]...), `,"body":`...), body...)
		out = append(spliced, '}')
	}
	return out, nil
}

// jsonArg is an optional JSON document as stored: nil (NULL) when empty or JSON null. It
// must be valid UTF-8 JSON, which is checked unless the caller knows it is (valid).
func jsonArg(raw json.RawMessage, valid bool) ([]byte, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if !valid && !validJSON(trimmed) {
		return nil, errors.New("not valid JSON")
	}
	return trimmed, nil
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

// Limits of one page of WarningUsers.
const (
	DefaultWarningUserLimit = 100  // limit 0
	MaxWarningUserLimit     = 1000 // larger limits are lowered to this
)

// foldKey is a resource key as warnings are keyed: lower case by Go's Unicode rules, so
// that both databases fold alike (their lower() do not).
func foldKey(key string) string { return identityText(strings.ToLower(sqlText(key))) }

// upsertWarning opens a warning (count 1), bumps an open one, or reopens a resolved one
// (count 1 again, new first seen and example) unless it was resolved after this miss. It
// returns the count, or no row when the miss is older than the resolution.
var upsertWarningSQL = func(greatest string) string {
	return `INSERT INTO warnings (connection, resource_type, key_fold, resource_key, resource_id, attribute,
		count, first_seen_at, last_seen_at, resolved_at, example_record_id)
	VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, NULL, $8)
	ON CONFLICT (connection, resource_type, key_fold, attribute) DO UPDATE SET
		count = CASE WHEN warnings.resolved_at IS NULL THEN warnings.count + 1 ELSE 1 END,
		first_seen_at = CASE WHEN warnings.resolved_at IS NULL THEN warnings.first_seen_at ELSE excluded.first_seen_at END,
		last_seen_at = CASE WHEN warnings.resolved_at IS NULL THEN ` + greatest + `(warnings.last_seen_at, excluded.last_seen_at)
			ELSE excluded.last_seen_at END,
		example_record_id = CASE WHEN warnings.resolved_at IS NULL
			THEN COALESCE(warnings.example_record_id, excluded.example_record_id) ELSE excluded.example_record_id END,
		resource_key = excluded.resource_key,
		resource_id = CASE WHEN excluded.resource_id <> '' THEN excluded.resource_id ELSE warnings.resource_id END,
		resolved_at = NULL
	WHERE warnings.resolved_at IS NULL OR warnings.resolved_at <= excluded.last_seen_at
	RETURNING count`
}

// upsertFallbackSQL counts one use of a from path.
var upsertFallbackSQL = func(greatest string) string {
	return `INSERT INTO warning_fallbacks (connection, resource_type, attribute, source, count, first_seen_at, last_seen_at)
	VALUES ($1, $2, $3, $4, 1, $5, $5)
	ON CONFLICT (connection, resource_type, attribute, source) DO UPDATE SET
		count = warning_fallbacks.count + 1,
		last_seen_at = ` + greatest + `(warning_fallbacks.last_seen_at, excluded.last_seen_at)`
}

// uniqueStrings is list without empty and repeated entries, in order.
func uniqueStrings(list []string) []string {
	var out []string
	for _, s := range list {
		s = sqlText(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// NoteWarnings applies note in one transaction (see Store). Missing attributes need a
// Key; Present ones resolve by key, or by ResourceID when there is no key. Each attribute
// and each fallback (attribute, source) counts once per note. A resolution or a reopening
// older than the warning's last change is ignored, so notes that arrive out of order (from
// several instances) do not undo newer ones.
func (c *sqlCore) NoteWarnings(ctx context.Context, note WarningNote) (NoteResult, error) {
	if note.Connection == "" {
		return NoteResult{}, fmt.Errorf("%s: note warnings: empty connection name", c.name)
	}
	at := note.At
	if at.IsZero() {
		at = time.Now()
	}
	conn, typ := sqlText(note.Connection), sqlText(note.ResourceType)
	key, id := identityText(note.Key), identityText(note.ResourceID)
	fold := foldKey(note.Key)
	missing := uniqueStrings(note.Missing)
	var present []string
	for _, p := range uniqueStrings(note.Present) {
		if !slices.Contains(missing, p) {
			present = append(present, p)
		}
	}
	if key == "" {
		missing = nil
		if id == "" {
			present = nil
		}
	}
	var fallbacks []FallbackUse
	for _, f := range note.Fallbacks {
		f = FallbackUse{Attribute: sqlText(f.Attribute), Source: sqlText(f.Source)}
		if f.Attribute != "" && !slices.Contains(fallbacks, f) {
			fallbacks = append(fallbacks, f)
		}
	}
	if len(missing) == 0 && len(present) == 0 && len(fallbacks) == 0 {
		return NoteResult{}, nil
	}
	var example *Record
	var exampleArgs []any
	if note.ExampleRecordID == 0 && note.Example != nil && len(missing) > 0 {
		rec := *note.Example
		rec.Connection, rec.Status, rec.DedupeHash, rec.Subjects = note.Connection, StatusObserved, "", nil
		args, err := c.recordArgs(&rec)
		if err != nil {
			return NoteResult{}, fmt.Errorf("%s: note warnings of %q: example: %w", c.name, note.Connection, err)
		}
		example, exampleArgs = &rec, args
	}
	ts := c.db.timeArg(at)
	var res NoteResult
	err := c.db.inTx(ctx, func(tx sqlBackend) error {
		res = NoteResult{}
		exampleID, saved := note.ExampleRecordID, false
		if example != nil {
			need, err := c.needsExample(ctx, tx, conn, typ, fold, missing)
			if err != nil {
				return err
			}
			if need {
				rec, err := scanSaved(tx.writeRow(ctx, insertRecord, exampleArgs...))
				if err != nil {
					return fmt.Errorf("saving the example: %w", err)
				}
				exampleID, saved = rec.ID, true
			}
		}
		var exampleArg any
		if exampleID > 0 {
			exampleArg = exampleID
		}
		upsert := upsertWarningSQL(c.greatest)
		for _, attr := range missing {
			var count int64
			err := tx.writeRow(ctx, upsert, conn, typ, fold, key, id, attr, ts, exampleArg).Scan(&count)
			switch {
			case errors.Is(err, ErrNotFound): // resolved after this miss
			case err != nil:
				return fmt.Errorf("warning %s: %w", attr, err)
			case count == 1:
				res.Opened = append(res.Opened, attr)
			}
		}
		if saved || len(res.Opened) > 0 {
			res.ExampleRecordID = exampleID
		}
		if key != "" && id != "" {
			// Remember the id, so that a PATCH (which knows only the id) can resolve.
			if _, err := tx.exec(ctx, `UPDATE warnings SET resource_id = $4
				WHERE connection = $1 AND resource_type = $2 AND key_fold = $3 AND resource_id <> $4 AND resolved_at IS NULL`,
				conn, typ, fold, id); err != nil {
				return fmt.Errorf("resource id: %w", err)
			}
		}
		for _, attr := range present {
			var (
				n   int64
				err error
			)
			if key != "" {
				n, err = tx.exec(ctx, `UPDATE warnings SET resolved_at = $5
					WHERE connection = $1 AND resource_type = $2 AND key_fold = $3 AND attribute = $4
					AND resolved_at IS NULL AND last_seen_at <= $5`, conn, typ, fold, attr, ts)
			} else {
				n, err = tx.exec(ctx, `UPDATE warnings SET resolved_at = $5
					WHERE connection = $1 AND resource_type = $2 AND resource_id = $3 AND attribute = $4
					AND resolved_at IS NULL AND last_seen_at <= $5`, conn, typ, id, attr, ts)
			}
			if err != nil {
				return fmt.Errorf("resolving %s: %w", attr, err)
			}
			if n > 0 {
				res.Resolved = append(res.Resolved, attr)
			}
		}
		fallback := upsertFallbackSQL(c.greatest)
		for _, f := range fallbacks {
			if _, err := tx.exec(ctx, fallback, conn, typ, f.Attribute, f.Source, ts); err != nil {
				return fmt.Errorf("fallback %s from %s: %w", f.Attribute, f.Source, err)
			}
		}
		return nil
	})
	if err != nil {
		return NoteResult{}, fmt.Errorf("%s: note warnings of %q: %w", c.name, note.Connection, err)
	}
	return res, nil
}

// needsExample reports whether one of the attributes has no open warning with an example
// for the resource (type, key fold).
func (c *sqlCore) needsExample(ctx context.Context, tx sqlBackend, conn, typ, fold string, attrs []string) (bool, error) {
	rows, err := tx.query(ctx, `SELECT attribute FROM warnings
		WHERE connection = $1 AND resource_type = $2 AND key_fold = $3
		AND resolved_at IS NULL AND example_record_id IS NOT NULL`, conn, typ, fold)
	if err != nil {
		return false, fmt.Errorf("reading open warnings: %w", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return false, fmt.Errorf("reading open warnings: %w", err)
		}
		have[a] = true
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("reading open warnings: %w", err)
	}
	for _, a := range attrs {
		if !have[a] {
			return true, nil
		}
	}
	return false, nil
}

// WarningSummary lists every attribute of connection with warnings (open or resolved) or
// fallback uses, sorted by resource type and attribute (byte order); fallbacks most used
// first.
func (c *sqlCore) WarningSummary(ctx context.Context, connection string) ([]WarningAttribute, error) {
	fail := func(err error) ([]WarningAttribute, error) {
		return nil, fmt.Errorf("%s: warning summary of %q: %w", c.name, connection, err)
	}
	byAttr := map[[2]string]*WarningAttribute{}
	get := func(typ, attr string) *WarningAttribute {
		k := [2]string{typ, attr}
		if byAttr[k] == nil {
			byAttr[k] = &WarningAttribute{ResourceType: typ, Attribute: attr, Fallbacks: []FallbackCount{}}
		}
		return byAttr[k]
	}
	rows, err := c.db.query(ctx, `SELECT resource_type, attribute, COUNT(*) FILTER (WHERE resolved_at IS NULL)
		FROM warnings WHERE connection = $1 GROUP BY resource_type, attribute`, connection)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var (
			typ, attr string
			n         int64
		)
		if err := rows.Scan(&typ, &attr, &n); err != nil {
			rows.Close()
			return fail(err)
		}
		get(typ, attr).UsersMissing = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	rows, err = c.db.query(ctx, `SELECT resource_type, attribute, source, count, last_seen_at
		FROM warning_fallbacks WHERE connection = $1`, connection)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var (
			typ, attr string
			fc        FallbackCount
			seen      sqlTime
		)
		if err := rows.Scan(&typ, &attr, &fc.Source, &fc.Count, &seen); err != nil {
			rows.Close()
			return fail(err)
		}
		fc.LastSeenAt = seen.t
		a := get(typ, attr)
		a.Fallbacks = append(a.Fallbacks, fc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	out := make([]WarningAttribute, 0, len(byAttr))
	for _, a := range byAttr {
		sort.Slice(a.Fallbacks, func(i, j int) bool {
			if a.Fallbacks[i].Count != a.Fallbacks[j].Count {
				return a.Fallbacks[i].Count > a.Fallbacks[j].Count
			}
			return a.Fallbacks[i].Source < a.Fallbacks[j].Source
		})
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ResourceType != out[j].ResourceType {
			return out[i].ResourceType < out[j].ResourceType
		}
		return out[i].Attribute < out[j].Attribute
	})
	return out, nil
}

// WarningUsers lists one page of the resources of connection with open warnings, ordered
// by resource type and folded key in the database's text order (see Store).
func (c *sqlCore) WarningUsers(ctx context.Context, connection, attribute, cursor string, limit int) ([]WarningUser, string, error) {
	fail := func(err error) ([]WarningUser, string, error) {
		return nil, "", fmt.Errorf("%s: warning users of %q: %w", c.name, connection, err)
	}
	switch {
	case limit <= 0:
		limit = DefaultWarningUserLimit
	case limit > MaxWarningUserLimit:
		limit = MaxWarningUserLimit
	}
	var sb strings.Builder
	sb.WriteString(`SELECT resource_type, key_fold, MAX(resource_key), CAST(SUM(count) AS BIGINT), MAX(last_seen_at)
		FROM warnings WHERE connection = $1 AND resolved_at IS NULL`)
	args := []any{connection}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if cursor != "" {
		typ, fold, err := decodeWarningCursor(cursor)
		if err != nil {
			return fail(err)
		}
		pt, pk := param(typ), param(fold)
		sb.WriteString(` AND (resource_type > ` + pt + ` OR (resource_type = ` + pt + ` AND key_fold > ` + pk + `))`)
	}
	sb.WriteString(` GROUP BY resource_type, key_fold`)
	if attribute != "" {
		sb.WriteString(` HAVING SUM(CASE WHEN lower(attribute) = lower(` + param(attribute) + `) THEN 1 ELSE 0 END) > 0`)
	}
	sb.WriteString(` ORDER BY resource_type, key_fold LIMIT ` + param(int64(limit+1)))
	rows, err := c.db.query(ctx, sb.String(), args...)
	if err != nil {
		return fail(err)
	}
	var (
		out   []WarningUser
		folds []string
	)
	for rows.Next() {
		var (
			u    WarningUser
			fold string
			seen sqlTime
		)
		if err := rows.Scan(&u.ResourceType, &fold, &u.Key, &u.Count, &seen); err != nil {
			rows.Close()
			return fail(err)
		}
		u.LastSeenAt = seen.t
		u.Attributes = []string{}
		out = append(out, u)
		folds = append(folds, fold)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	next := ""
	if len(out) > limit {
		out, folds = out[:limit], folds[:limit]
		next = encodeWarningCursor(out[limit-1].ResourceType, folds[limit-1])
	}
	if len(out) == 0 {
		return nil, "", nil
	}
	// Their attributes, in one query.
	index := make(map[[2]string]int, len(out))
	sb.Reset()
	sb.WriteString(`SELECT resource_type, key_fold, attribute FROM warnings
		WHERE connection = $1 AND resolved_at IS NULL AND key_fold IN (`)
	args = []any{connection}
	for i, u := range out {
		index[[2]string{u.ResourceType, folds[i]}] = i
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(param(folds[i]))
	}
	sb.WriteString(`)`)
	rows, err = c.db.query(ctx, sb.String(), args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, fold, attr string
		if err := rows.Scan(&typ, &fold, &attr); err != nil {
			return fail(err)
		}
		if i, ok := index[[2]string{typ, fold}]; ok {
			out[i].Attributes = append(out[i].Attributes, attr)
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	for i := range out {
		sort.Strings(out[i].Attributes)
	}
	return out, next, nil
}

// encodeWarningCursor makes the opaque cursor that continues after the resource (type,
// folded key).
func encodeWarningCursor(typ, fold string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("w" + typ + "\x00" + fold))
}

// decodeWarningCursor reverses encodeWarningCursor.
func decodeWarningCursor(s string) (typ, fold string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'w' || !utf8.Valid(b) {
		return "", "", fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	typ, fold, ok := strings.Cut(string(b[1:]), "\x00")
	if !ok || fold == "" {
		return "", "", fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	return typ, fold, nil
}

// UserWarnings lists the open warnings of the resources of connection whose key is key
// (case-insensitive), by resource type and attribute (byte order).
func (c *sqlCore) UserWarnings(ctx context.Context, connection, key string) ([]Warning, error) {
	fail := func(err error) ([]Warning, error) {
		return nil, fmt.Errorf("%s: warnings of %q in %q: %w", c.name, key, connection, err)
	}
	rows, err := c.db.query(ctx, `SELECT resource_type, resource_key, resource_id, attribute, count,
			first_seen_at, last_seen_at, example_record_id
		FROM warnings WHERE connection = $1 AND key_fold = $2 AND resolved_at IS NULL`, connection, foldKey(key))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []Warning
	for rows.Next() {
		var (
			w           Warning
			first, seen sqlTime
			example     sql.NullInt64
		)
		if err := rows.Scan(&w.ResourceType, &w.Key, &w.ResourceID, &w.Attribute, &w.Count, &first, &seen, &example); err != nil {
			return fail(err)
		}
		w.FirstSeenAt, w.LastSeenAt, w.ExampleRecordID = first.t, seen.t, example.Int64
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ResourceType != out[j].ResourceType {
			return out[i].ResourceType < out[j].ResourceType
		}
		return out[i].Attribute < out[j].Attribute
	})
	return out, nil
}

// openWarnings adds to the connections of byName (and to out, for connections not in it
// yet) their counts of open warnings; a connection with warnings or fallback uses only is
// listed too.
func (c *sqlCore) openWarnings(ctx context.Context, byName map[string]*ConnectionInfo, out *[]*ConnectionInfo) error {
	rows, err := c.db.query(ctx, `SELECT connection, COUNT(*) FILTER (WHERE resolved_at IS NULL) FROM warnings GROUP BY connection
		UNION ALL SELECT connection, 0 FROM warning_fallbacks GROUP BY connection`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			n    int64
		)
		if err := rows.Scan(&name, &n); err != nil {
			return err
		}
		info := byName[name]
		if info == nil {
			info = &ConnectionInfo{Name: name}
			byName[name] = info
			*out = append(*out, info)
		}
		info.Warnings += n
	}
	return rows.Err()
}
