package shadow

import (
	"context"
	"fmt"
	"time"
)

// FallbackDelta is a number of uses of one from path, summed in memory by the
// WarningRecorder (see FallbackNoter).
type FallbackDelta struct {
	Connection   string
	ResourceType string
	Attribute    string
	Source       string
	Count        int64     // uses, > 0
	FirstSeen    time.Time // the earliest use (first_seen_at of a new count)
	LastSeen     time.Time // the latest use
}

// FallbackNoter adds many fallback counts in one transaction; every Store is one. The
// WarningRecorder sums the fallback uses of live and preview writes in memory and flushes
// them through it every FallbackFlushInterval (and on Flush and Close).
type FallbackNoter interface {
	// NoteFallbacks adds each delta's Count to its (connection, resource type, attribute,
	// source) count, and moves its last use to LastSeen when later, in one transaction.
	NoteFallbacks(ctx context.Context, deltas []FallbackDelta) error
}

// upsertFallbacksSQL adds a count of uses of a from path.
var upsertFallbacksSQL = func(greatest string) string {
	return `INSERT INTO warning_fallbacks (connection, resource_type, attribute, source, count, first_seen_at, last_seen_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (connection, resource_type, attribute, source) DO UPDATE SET
		count = warning_fallbacks.count + excluded.count,
		last_seen_at = ` + greatest + `(warning_fallbacks.last_seen_at, excluded.last_seen_at)`
}

// NoteFallbacks implements FallbackNoter.
func (c *sqlCore) NoteFallbacks(ctx context.Context, deltas []FallbackDelta) error {
	type row struct {
		conn, typ, attr, src string
		n                    int64
		first, last          any
	}
	var rows []row
	for _, d := range deltas {
		if d.Connection == "" {
			return fmt.Errorf("%s: note fallbacks: empty connection name", c.name)
		}
		attr := sqlText(d.Attribute)
		if attr == "" || d.Count <= 0 {
			continue
		}
		first, last := d.FirstSeen, d.LastSeen
		if last.IsZero() {
			last = time.Now()
		}
		if first.IsZero() || first.After(last) {
			first = last
		}
		rows = append(rows, row{sqlText(d.Connection), sqlText(d.ResourceType), attr, sqlText(d.Source), d.Count,
			c.db.timeArg(first), c.db.timeArg(last)})
	}
	if len(rows) == 0 {
		return nil
	}
	upsert := upsertFallbacksSQL(c.greatest)
	err := c.db.inTx(ctx, func(tx sqlBackend) error {
		for _, r := range rows {
			if _, err := tx.exec(ctx, upsert, r.conn, r.typ, r.attr, r.src, r.n, r.first, r.last); err != nil {
				return fmt.Errorf("fallback %s from %s: %w", r.attr, r.src, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: note fallbacks: %w", c.name, err)
	}
	return nil
}
