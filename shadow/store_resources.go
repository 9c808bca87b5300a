package shadow

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// newestOfResource is the id of the newest pending record of the resource record m
// targets, as PendingResources groups them (resourceIdentity): by type (case-insensitive)
// and id; by type and key (case-insensitive) when m has no id; m itself when it has
// neither. Each branch is one seek of records_pending_resource_id or
// records_pending_resource_key (migration 007).
const newestOfResource = `CASE
	WHEN m.resource_id <> '' THEN (SELECT max(n.id) FROM records n WHERE n.connection = $1 AND n.status = 'pending'
		AND n.resource_id = m.resource_id AND lower(n.resource_type) = lower(m.resource_type))
	WHEN m.resource_key <> '' THEN (SELECT max(n.id) FROM records n WHERE n.connection = $1 AND n.status = 'pending'
		AND n.resource_id = '' AND lower(n.resource_key) = lower(m.resource_key) AND lower(n.resource_type) = lower(m.resource_type))
	ELSE m.id END`

// resourceHasErrors is true when the resource of record m has a pending record with
// errors (same identity as newestOfResource): one range of records_pending_resource_id
// or _key, read from the index (migration 008). The unary plus keeps SQLite, which has
// no statistics, from driving the subquery by an index on errors instead: that would
// read every pending record with errors of the connection, once per resource.
const resourceHasErrors = `CASE
	WHEN m.resource_id <> '' THEN EXISTS (SELECT 1 FROM records n WHERE n.connection = $1 AND n.status = 'pending'
		AND n.resource_id = m.resource_id AND lower(n.resource_type) = lower(m.resource_type) AND +n.errors > 0)
	WHEN m.resource_key <> '' THEN EXISTS (SELECT 1 FROM records n WHERE n.connection = $1 AND n.status = 'pending'
		AND n.resource_id = '' AND lower(n.resource_key) = lower(m.resource_key)
		AND lower(n.resource_type) = lower(m.resource_type) AND +n.errors > 0)
	ELSE m.errors > 0 END`

// resourceHead is the newest pending record of a resource of the page.
type resourceHead struct {
	id            int64
	typ, rid, key string
}

// PendingResourceGroups selects one page of the resources of PendingResources in SQL and
// returns, per resource, its pending records newest first, the resources most recently
// written first, and whether a next page exists. The records carry what the view shows:
// their ids, resource, key, attempts, errors and deprovision flag; only the oldest has
// Live and only the newest Projected; Findings only where Errors > 0 (Errors counts the
// error findings); Changes only when the resource's net diff has a change without a
// display name (carryDisplays looks for one in them). No Subjects, request bodies or
// times.
//
// Without User, Group or ErrorsOnly it walks the connection's pending records newest first
// (records_pending_id) and keeps a record when it is the newest of its resource (one index
// seek each) until a page is full: the cost follows the records of the page's resources,
// not the connection's. ErrorsOnly alone walks the same way and also asks whether the
// resource has a record with errors (one index range each), but at most as many records
// as the connection has pending records with errors; if that does not fill the page, the
// rest comes from mapping the pending records with errors below the walk to their
// resources. With User or Group it reads the matching records (through the same indexes
// as Records), maps each to its resource's newest record, and sorts those: the cost
// follows the matching records. Then it lists each selected resource's records from
// records_pending_resource_id / _key (migration 008 made both covering), and reads rows
// only for Live, Projected, and the Findings and Changes above.
//
// Keys are compared with the database's lower() (ASCII-only in SQLite); the Go grouping
// folds non-ASCII letters too.
func (c *sqlCore) PendingResourceGroups(ctx context.Context, connection string, q ResourceQuery) ([][]Record, bool, error) {
	groups, more, err := c.pendingResourceGroups(ctx, connection, q)
	if err != nil {
		return nil, false, fmt.Errorf("%s: pending resources of %q: %w", c.name, connection, err)
	}
	return groups, more, nil
}

func (c *sqlCore) pendingResourceGroups(ctx context.Context, connection string, q ResourceQuery) ([][]Record, bool, error) {
	limit := resourceLimit(q.Limit)
	var before int64
	if q.Cursor != "" {
		id, err := decodeResourceCursor(q.Cursor)
		if err != nil {
			return nil, false, err
		}
		before = id
	}
	var heads []resourceHead
	var err error
	switch {
	case q.User == "" && q.Group == "" && !q.ErrorsOnly:
		heads, err = c.walkHeads(ctx, connection, q.ResourceType, before, limit+1, 0)
	case q.User == "" && q.Group == "":
		heads, err = c.errorHeads(ctx, connection, q, before, limit+1)
	default:
		heads, err = c.mappedHeads(ctx, connection, q, before, limit+1, false)
	}
	if err != nil {
		return nil, false, err
	}
	more := len(heads) > limit
	if more {
		heads = heads[:limit]
	}
	groups := make([][]Record, 0, len(heads))
	for _, h := range heads {
		recs, err := c.resourceRecords(ctx, connection, h)
		if err != nil {
			return nil, false, err
		}
		if len(recs) > 0 { // gone meanwhile (approved, purged): skipped
			groups = append(groups, recs)
		}
	}
	return groups, more, nil
}

// walkHeads walks the pending records of connection (of type typ, if set) below before
// (0: all) newest first and returns the first n that are the newest of their resource.
// With walk > 0 it walks at most that many records and keeps only resources with a
// pending record with errors (resourceHasErrors).
func (c *sqlCore) walkHeads(ctx context.Context, connection, typ string, before int64, n, walk int) ([]resourceHead, error) {
	args := []any{connection}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var sb strings.Builder
	if walk > 0 {
		sb.WriteString(`SELECT m.id, m.resource_type, m.resource_id, m.resource_key FROM (
			SELECT id, resource_type, resource_id, resource_key, errors FROM records
			WHERE connection = $1 AND status = 'pending'`)
	} else {
		sb.WriteString(`SELECT m.id, m.resource_type, m.resource_id, m.resource_key FROM records m
			WHERE m.connection = $1 AND m.status = 'pending'`)
	}
	if before > 0 {
		sb.WriteString(` AND id < ` + param(before))
	}
	if typ != "" {
		sb.WriteString(` AND lower(resource_type) = lower(` + param(typ) + `)`)
	}
	if walk > 0 {
		sb.WriteString(` ORDER BY id DESC LIMIT ` + param(int64(walk)) + `) m WHERE`)
	} else {
		sb.WriteString(` AND`)
	}
	sb.WriteString(` m.id = ` + newestOfResource)
	if walk > 0 {
		sb.WriteString(` AND ` + resourceHasErrors)
	}
	sb.WriteString(` ORDER BY m.id DESC LIMIT ` + param(int64(n)))
	return c.queryHeads(ctx, sb.String(), args)
}

// errorHeads selects the first n resources of ErrorsOnly (without User and Group). The
// walk of walkHeads finds them among the newest records at the cost of a few index
// seeks per record walked; mapping every pending record with errors to its resource
// (mappedHeads) costs as much per record with errors, however few resources the page
// needs. So it walks as many records as the connection has pending records with errors
// (counted by migration 007's triggers) and maps only the records below the walk when
// that does not fill the page: at most twice the cost of mapping alone, and a page in
// a few ms when resources with errors are among the recent ones.
func (c *sqlCore) errorHeads(ctx context.Context, connection string, q ResourceQuery, before int64, n int) ([]resourceHead, error) {
	var errs int64
	if err := c.db.queryRow(ctx, `SELECT CAST(COALESCE(SUM(errors), 0) AS BIGINT) FROM record_counts WHERE connection = $1`,
		connection).Scan(&errs); err != nil {
		return nil, err
	}
	walk := int(max(errs, int64(n)))
	heads, err := c.walkHeads(ctx, connection, q.ResourceType, before, n, walk)
	if err != nil || len(heads) >= n {
		return heads, err
	}
	// Where the walk stopped: every resource whose newest record is at or above it was
	// seen there, and every record of a resource below it is below it.
	args := []any{connection}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var sb strings.Builder
	sb.WriteString(`SELECT COUNT(*), COALESCE(MIN(id), 0) FROM (SELECT id FROM records WHERE connection = $1 AND status = 'pending'`)
	if before > 0 {
		sb.WriteString(` AND id < ` + param(before))
	}
	if q.ResourceType != "" {
		sb.WriteString(` AND lower(resource_type) = lower(` + param(q.ResourceType) + `)`)
	}
	sb.WriteString(` ORDER BY id DESC LIMIT ` + param(int64(walk)) + `) w`)
	var walked, last int64
	if err := c.db.queryRow(ctx, sb.String(), args...).Scan(&walked, &last); err != nil {
		return nil, err
	}
	if walked < int64(walk) { // the walk met every pending record
		return heads, nil
	}
	rest, err := c.mappedHeads(ctx, connection, q, last, n-len(heads), true)
	if err != nil {
		return nil, err
	}
	// A record saved between the two queries moves the boundary up: a resource can then
	// come from both, and the page must still hold it once, newest first.
	for _, h := range rest {
		if !slices.ContainsFunc(heads, func(w resourceHead) bool { return w.id == h.id }) {
			heads = append(heads, h)
		}
	}
	slices.SortFunc(heads, func(a, b resourceHead) int { return cmp.Compare(b.id, a.id) })
	return heads, nil
}

// mappedHeads maps the pending records of connection that match q's User, Group and
// ErrorsOnly (and type) to the newest records of their resources and returns the first n
// below before (0: all), newest first. below also bounds the matching records (a record
// at or above before has its resource's newest record there too): errorHeads maps only
// what its walk did not reach, through records_pending_errors, which SQLite (no
// statistics) must be told to use.
func (c *sqlCore) mappedHeads(ctx context.Context, connection string, q ResourceQuery, before int64, n int, below bool) ([]resourceHead, error) {
	args := []any{connection}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var sb strings.Builder
	sb.WriteString(`SELECT r.id, r.resource_type, r.resource_id, r.resource_key FROM records r WHERE r.id IN (
		SELECT ` + newestOfResource + ` FROM records m`)
	if below {
		sb.WriteString(c.pendingErrorsIndex)
	}
	sb.WriteString(` WHERE m.connection = $1 AND m.status = 'pending'`)
	if q.User != "" {
		sb.WriteString(subjectFilter("user", param(identityText(q.User))))
	}
	if q.Group != "" {
		sb.WriteString(subjectFilter("group", param(identityText(q.Group))))
	}
	if q.ErrorsOnly {
		sb.WriteString(` AND m.errors > 0`)
	}
	if q.ResourceType != "" {
		sb.WriteString(` AND lower(m.resource_type) = lower(` + param(q.ResourceType) + `)`)
	}
	if before > 0 && below {
		sb.WriteString(` AND m.id < ` + param(before))
	}
	sb.WriteString(`)`)
	if before > 0 {
		sb.WriteString(` AND r.id < ` + param(before))
	}
	sb.WriteString(` ORDER BY r.id DESC LIMIT ` + param(int64(n)))
	return c.queryHeads(ctx, sb.String(), args)
}

// queryHeads runs a query of resourceHead columns.
func (c *sqlCore) queryHeads(ctx context.Context, query string, args []any) ([]resourceHead, error) {
	rows, err := c.db.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(r sqlRows) (resourceHead, error) {
		var h resourceHead
		return h, r.Scan(&h.id, &h.typ, &h.rid, &h.key)
	})
}

// maxFindingIDs is how many records with errors resourceRecords reads the findings of
// by id; with more it reads the resource's rows.
const maxFindingIDs = 64

// resourceRecords returns the pending records of the resource whose newest pending
// record is h, newest first, as PendingResourceGroups describes them.
func (c *sqlCore) resourceRecords(ctx context.Context, connection string, h resourceHead) ([]Record, error) {
	// The resource's records, from the index alone (migration 008), and the same range
	// with row columns when they are needed.
	var resourceWhere string // fixed conditions, chosen here
	var args []any
	switch {
	case h.rid != "":
		// CAST: as in PendingProjection, so SQLite does not compile the statement again for
		// every id it is run with.
		resourceWhere = `connection = $1 AND status = 'pending' AND resource_id = CAST($2 AS TEXT) AND lower(resource_type) = lower($3) AND id <= $4`
		args = []any{connection, h.rid, h.typ, h.id}
	case h.key != "":
		resourceWhere = `connection = $1 AND status = 'pending' AND resource_id = '' AND lower(resource_key) = lower($2)
			AND lower(resource_type) = lower($3) AND id <= $4`
		args = []any{connection, h.key, h.typ, h.id}
	default:
		resourceWhere = `connection = $1 AND id = $2`
		args = []any{connection, h.id}
	}
	rows, err := c.db.query(ctx, `SELECT id, attempts, deprovision, errors, resource_key, resource_type, resource_id
		FROM records WHERE `+resourceWhere+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, err
	}
	recs, err := collectRows(rows, func(r sqlRows) (Record, error) {
		rec := Record{Connection: connection, Status: StatusPending}
		return rec, r.Scan(&rec.ID, &rec.Attempts, &rec.Deprovision, &rec.Errors, &rec.Key, &rec.ResourceType, &rec.ResourceID)
	})
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	newest, oldest := &recs[0], &recs[len(recs)-1]
	ends, err := c.db.query(ctx, `SELECT id, `+documentColumns+` FROM records WHERE id = $1 OR id = $2`, oldest.ID, newest.ID)
	if err != nil {
		return nil, err
	}
	if err := scanDocuments(ends, func(id int64, docs *recordDocuments) {
		if id == oldest.ID {
			oldest.Live = docs[docLive]
		}
		if id == newest.ID {
			newest.Projected = docs[docProjected]
		}
	}); err != nil {
		return nil, err
	}

	needChanges := slices.ContainsFunc(Diff(oldest.Live, newest.Projected), func(ch Change) bool { return ch.Display == "" })
	var withErrors []any
	for i := range recs {
		if recs[i].Errors > 0 {
			withErrors = append(withErrors, recs[i].ID)
		}
	}
	var query string
	switch {
	case needChanges || len(withErrors) > maxFindingIDs:
		query = `SELECT id, ` + documentColumns + ` FROM records WHERE ` + resourceWhere
	case len(withErrors) > 0:
		args = []any{connection}
		param := func(v any) string {
			args = append(args, v)
			return "$" + strconv.Itoa(len(args))
		}
		var sb strings.Builder
		sb.WriteString(`SELECT id, ` + documentColumns + ` FROM records WHERE connection = $1 AND id IN (`)
		for i, id := range withErrors {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(param(id))
		}
		sb.WriteString(`)`)
		query = sb.String()
	default:
		return recs, nil
	}
	byID := make(map[int64]*Record, len(recs))
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	rows, err = c.db.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	if err := scanDocuments(rows, func(id int64, docs *recordDocuments) {
		if rec := byID[id]; rec != nil {
			if needChanges {
				rec.Changes = docs[docChanges]
			}
			if rec.Errors > 0 {
				rec.Findings = docs[docFindings]
			}
		}
	}); err != nil {
		return nil, err
	}
	return recs, nil
}

// scanDocuments calls use with the id and documents of each row of rows (id and
// documentColumns), and closes rows.
func scanDocuments(rows sqlRows, use func(id int64, docs *recordDocuments)) error {
	_, err := collectRows(rows, func(r sqlRows) (struct{}, error) {
		var (
			id   int64
			scan documentScan
		)
		if err := r.Scan(scan.dest([]any{&id})...); err != nil {
			return struct{}{}, err
		}
		docs, err := scan.documents()
		if err != nil {
			return struct{}{}, fmt.Errorf("record %d: %w", id, err)
		}
		use(id, &docs)
		return struct{}{}, nil
	})
	return err
}

// collectRows reads every row of rows with scan, and closes rows.
func collectRows[T any](rows sqlRows, scan func(sqlRows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
