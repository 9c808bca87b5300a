package shadow

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// HoldStore is the part of a Store that keeps the hold queue of live mode: held writes,
// the operator's approve and ignore, the outcome of an approved write, and the counts
// guards need. Open holds (held, approved, forwarding, failed) are unique per connection
// and dedupe hash.
type HoldStore interface {
	// RetryHold finds the newest record of connection with dedupeHash whose status is
	// held, approved, forwarding, failed or ignored, counts one more attempt (LastSeenAt
	// becomes at when that is later) and returns it; ErrNotFound when there is none.
	RetryHold(ctx context.Context, connection, dedupeHash string, at time.Time) (Record, error)
	// ClaimApproved moves an approved record to forwarding, claimed at at, and reports
	// whether it did (false: not approved any more, e.g. a concurrent retry claimed it).
	// A record forwarding since a claim more than ForwardClaimTimeout before at (or of
	// unknown age) is claimed again: its forwarder crashed or hung, and the retry would
	// otherwise be answered "being forwarded" forever.
	ClaimApproved(ctx context.Context, connection string, id int64, at time.Time) (bool, error)
	// FinishHold sets the outcome of a forwarding record: StatusForwarded or StatusFailed,
	// with the backend's status and, on failure, its error detail.
	FinishHold(ctx context.Context, connection string, id int64, status RecordStatus, backendStatus int, backendError string) error
	// DecideRecords approves (to = StatusApproved: held and failed records) or ignores
	// (to = StatusIgnored: held, failed and approved records) records of connection by
	// id, and returns the ids it changed; other ids are left alone.
	DecideRecords(ctx context.Context, connection string, ids []int64, to RecordStatus) ([]int64, error)
	// CountDeprovisions counts the User records of connection created at or after since
	// that deprovision (deactivate or delete) and were forwarded or are being forwarded.
	CountDeprovisions(ctx context.Context, connection string, since time.Time) (int64, error)
}

// openHoldStatuses, in SQL: the statuses RetryHold finds.
const openHoldStatuses = `('held', 'approved', 'forwarding', 'failed', 'ignored')`

// RetryHold implements HoldStore.
func (c *sqlCore) RetryHold(ctx context.Context, connection, dedupeHash string, at time.Time) (Record, error) {
	if dedupeHash == "" {
		return Record{}, fmt.Errorf("%s: retry hold of %q: %w", c.name, connection, ErrNotFound)
	}
	var out Record
	err := c.db.inTx(ctx, func(tx sqlBackend) error {
		rec, err := scanRecord(tx.writeRow(ctx, `UPDATE records
			SET attempts = attempts + 1, last_seen_at = `+c.greatest+`(last_seen_at, $3)
			WHERE id = (SELECT id FROM records WHERE connection = $1 AND dedupe_hash = $2
				AND status IN `+openHoldStatuses+` ORDER BY id DESC LIMIT 1)
			RETURNING `+recordColumns, sqlText(connection), sqlText(dedupeHash), tx.timeArg(at)))
		if err != nil {
			return err
		}
		out = rec
		return loadSubjects(ctx, tx, []Record{out}, func(_ int, s []Subject) { out.Subjects = s })
	})
	if err != nil {
		return Record{}, fmt.Errorf("%s: retry hold of %q: %w", c.name, connection, err)
	}
	return out, nil
}

// ClaimApproved implements HoldStore.
func (c *sqlCore) ClaimApproved(ctx context.Context, connection string, id int64, at time.Time) (bool, error) {
	n, err := c.db.exec(ctx, `UPDATE records SET status = 'forwarding', claimed_at = $3
		WHERE connection = $1 AND id = $2 AND (status = 'approved'
			OR (status = 'forwarding' AND (claimed_at IS NULL OR claimed_at < $4)))`,
		connection, id, c.db.timeArg(at), c.db.timeArg(at.Add(-ForwardClaimTimeout)))
	if err != nil {
		return false, fmt.Errorf("%s: claim approved record %d of %q: %w", c.name, id, connection, err)
	}
	return n == 1, nil
}

// FinishHold implements HoldStore.
func (c *sqlCore) FinishHold(ctx context.Context, connection string, id int64, status RecordStatus, backendStatus int, backendError string) error {
	if status != StatusForwarded && status != StatusFailed {
		return fmt.Errorf("%s: finish record %d of %q: status must be forwarded or failed, got %q", c.name, id, connection, status)
	}
	n, err := c.db.exec(ctx, `UPDATE records SET status = $3, backend_status = $4, backend_error = $5
		WHERE connection = $1 AND id = $2 AND status = 'forwarding'`,
		connection, id, string(status), int64(backendStatus), sqlText(backendError))
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%s: finish record %d of %q: %w", c.name, id, connection, err)
	}
	return nil
}

// DecideRecords implements HoldStore: one UPDATE per id, in one transaction.
func (c *sqlCore) DecideRecords(ctx context.Context, connection string, ids []int64, to RecordStatus) ([]int64, error) {
	var stmt string
	switch to {
	case StatusApproved:
		stmt = `UPDATE records SET status = 'approved'
			WHERE connection = $1 AND id = $2 AND status IN ('held', 'failed')`
	case StatusIgnored:
		stmt = `UPDATE records SET status = 'ignored'
			WHERE connection = $1 AND id = $2 AND status IN ('held', 'failed', 'approved')`
	default:
		return nil, fmt.Errorf("%s: decide records of %q: status must be approved or ignored, got %q", c.name, connection, to)
	}
	var changed []int64
	err := c.db.inTx(ctx, func(tx sqlBackend) error {
		changed = changed[:0]
		for _, id := range ids {
			n, err := tx.exec(ctx, stmt, connection, id)
			if err != nil {
				return fmt.Errorf("record %d: %w", id, err)
			}
			if n == 1 {
				changed = append(changed, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %s records of %q: %w", c.name, decisionVerb(to), connection, err)
	}
	return changed, nil
}

// decisionVerb is "approve" or "ignore", for messages.
func decisionVerb(to RecordStatus) string {
	if to == StatusApproved {
		return "approve"
	}
	return "ignore"
}

// CountDeprovisions implements HoldStore.
func (c *sqlCore) CountDeprovisions(ctx context.Context, connection string, since time.Time) (int64, error) {
	var n int64
	err := c.db.queryRow(ctx, `SELECT COUNT(*) FROM records
		WHERE connection = $1 AND created_at >= $2 AND deprovision
			AND resource_type = 'User' AND status IN ('forwarding', 'forwarded')`,
		connection, c.db.timeArg(since)).Scan(&n)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("%s: count deprovisions of %q: %w", c.name, connection, err)
	}
	return n, nil
}
