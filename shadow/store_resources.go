package shadow

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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

// groupColumns are recordColumns without what PendingResources does not show: the
// request bodies, and Live and Projected (read for the oldest and newest record alone).
const groupColumns = `id, connection, created_at, last_seen_at, attempts, method, path,
	resource_type, resource_id, resource_key, operation, status, dedupe_hash,
	'{}', '{}', changes, findings, NULL, NULL, errors, deprovision,
	hold_reason, backend_status, backend_error`

// PendingResourceGroups selects one page of the resources of PendingResources in SQL and
// returns, per resource, its pending records newest first, the resources most recently
// written first, and whether a next page exists. The records come without Subjects and
// request bodies, and only the oldest has Live and only the newest Projected: what the
// view shows.
//
// Without User, Group or ErrorsOnly it walks the connection's pending records newest first
// (records_pending_id) and keeps a record when it is the newest of its resource (one index
// seek each) until a page is full: the cost follows the records of the page's resources,
// not the connection's. With a filter it reads the matching records (through the same
// indexes as Records), maps each to its resource's newest record, and sorts those: the
// cost follows the matching records. Then it reads each selected resource's records
// through records_pending_resource_id / _key.
//
// Keys are compared with the database's lower() (ASCII-only in SQLite), as LatestPending
// does; the Go grouping folds non-ASCII letters too.
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
	args := []any{connection}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var sb strings.Builder
	if q.User == "" && q.Group == "" && !q.ErrorsOnly {
		sb.WriteString(`SELECT m.id, m.resource_type, m.resource_id, m.resource_key FROM records m
			WHERE m.connection = $1 AND m.status = 'pending'`)
		if before > 0 {
			sb.WriteString(` AND m.id < ` + param(before))
		}
		if q.ResourceType != "" {
			sb.WriteString(` AND lower(m.resource_type) = lower(` + param(q.ResourceType) + `)`)
		}
		sb.WriteString(` AND m.id = ` + newestOfResource + ` ORDER BY m.id DESC LIMIT ` + param(int64(limit+1)))
	} else {
		sb.WriteString(`SELECT r.id, r.resource_type, r.resource_id, r.resource_key FROM records r WHERE r.id IN (
			SELECT ` + newestOfResource + ` FROM records m WHERE m.connection = $1 AND m.status = 'pending'`)
		if q.User != "" {
			sb.WriteString(subjectFilter("user", param(q.User)))
		}
		if q.Group != "" {
			sb.WriteString(subjectFilter("group", param(q.Group)))
		}
		if q.ErrorsOnly {
			sb.WriteString(` AND m.errors > 0`)
		}
		if q.ResourceType != "" {
			sb.WriteString(` AND lower(m.resource_type) = lower(` + param(q.ResourceType) + `)`)
		}
		sb.WriteString(`)`)
		if before > 0 {
			sb.WriteString(` AND r.id < ` + param(before))
		}
		sb.WriteString(` ORDER BY r.id DESC LIMIT ` + param(int64(limit+1)))
	}
	type head struct {
		id            int64
		typ, rid, key string
	}
	rows, err := c.db.query(ctx, sb.String(), args...)
	if err != nil {
		return nil, false, err
	}
	heads, err := collectRows(rows, func(r sqlRows) (head, error) {
		var h head
		return h, r.Scan(&h.id, &h.typ, &h.rid, &h.key)
	})
	if err != nil {
		return nil, false, err
	}
	more := len(heads) > limit
	if more {
		heads = heads[:limit]
	}
	groups := make([][]Record, 0, len(heads))
	var c1, c2 sql.NullString
	for _, h := range heads {
		var query string
		var args []any
		switch {
		case h.rid != "":
			query = `SELECT ` + groupColumns + ` FROM records WHERE connection = $1 AND status = 'pending'
				AND resource_id = $2 AND lower(resource_type) = lower($3) AND id <= $4 ORDER BY id DESC`
			args = []any{connection, h.rid, h.typ, h.id}
		case h.key != "":
			query = `SELECT ` + groupColumns + ` FROM records WHERE connection = $1 AND status = 'pending'
				AND resource_id = '' AND lower(resource_key) = lower($2) AND lower(resource_type) = lower($3)
				AND id <= $4 ORDER BY id DESC`
			args = []any{connection, h.key, h.typ, h.id}
		default:
			query = `SELECT ` + groupColumns + ` FROM records WHERE connection = $1 AND id = $2`
			args = []any{connection, h.id}
		}
		rows, err := c.db.query(ctx, query, args...)
		if err != nil {
			return nil, false, err
		}
		recs, err := collectRows(rows, func(r sqlRows) (Record, error) { return scanRecord(r) })
		if err != nil {
			return nil, false, err
		}
		if len(recs) == 0 { // gone meanwhile (approved, purged): skipped
			continue
		}
		newest, oldest := &recs[0], &recs[len(recs)-1]
		if err := c.db.queryRow(ctx, `SELECT (SELECT live FROM records WHERE id = $1), (SELECT projected FROM records WHERE id = $2)`,
			oldest.ID, newest.ID).Scan(&c1, &c2); err != nil {
			return nil, false, err
		}
		oldest.Live, newest.Projected = rawOrNil(c1), rawOrNil(c2)
		groups = append(groups, recs)
	}
	return groups, more, nil
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

// rawOrNil is a nullable JSON column as a Record holds it.
func rawOrNil(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}
