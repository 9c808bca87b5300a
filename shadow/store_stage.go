package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// StageStore keeps the staged go-live of connections in preview (see Stage).
type StageStore interface {
	// SetStage stores the stage of a connection; a nil stage removes it.
	SetStage(ctx context.Context, connection string, stage *Stage) error
	// Stages returns every stored stage by connection name.
	Stages(ctx context.Context) (map[string]Stage, error)
	// MarkPendingForwarded sets the pending records of connection with dedupeHash to
	// forwarded (or failed, with the backend's error) when a staged write went live, and
	// returns how many it changed.
	MarkPendingForwarded(ctx context.Context, connection, dedupeHash string, status RecordStatus, backendStatus int, backendError string) (int64, error)
}

// SetStage implements StageStore.
func (c *sqlCore) SetStage(ctx context.Context, connection string, stage *Stage) error {
	var err error
	if stage == nil {
		_, err = c.db.exec(ctx, `DELETE FROM stages WHERE connection = $1`, connection)
	} else {
		var b []byte
		if b, err = json.Marshal(stage); err != nil {
			return fmt.Errorf("%s: set stage of %q: %w", c.name, connection, err)
		}
		_, err = c.db.exec(ctx, `INSERT INTO stages (connection, stage, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (connection) DO UPDATE SET stage = excluded.stage, updated_at = excluded.updated_at`,
			sqlText(connection), string(b), c.db.timeArg(time.Now()))
	}
	if err != nil {
		return fmt.Errorf("%s: set stage of %q: %w", c.name, connection, err)
	}
	return nil
}

// Stages implements StageStore.
func (c *sqlCore) Stages(ctx context.Context) (map[string]Stage, error) {
	rows, err := c.db.query(ctx, `SELECT connection, stage FROM stages`)
	if err != nil {
		return nil, fmt.Errorf("%s: list stages: %w", c.name, err)
	}
	defer rows.Close()
	out := map[string]Stage{}
	for rows.Next() {
		var name, raw string
		if err := rows.Scan(&name, &raw); err != nil {
			return nil, fmt.Errorf("%s: list stages: %w", c.name, err)
		}
		var st Stage
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			return nil, fmt.Errorf("%s: stage of %q: %w", c.name, name, err)
		}
		out[name] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list stages: %w", c.name, err)
	}
	return out, nil
}

// MarkPendingForwarded implements StageStore.
func (c *sqlCore) MarkPendingForwarded(ctx context.Context, connection, dedupeHash string, status RecordStatus, backendStatus int, backendError string) (int64, error) {
	if status != StatusForwarded && status != StatusFailed {
		return 0, fmt.Errorf("%s: mark pending records of %q: status must be forwarded or failed, got %q", c.name, connection, status)
	}
	n, err := c.db.exec(ctx, `UPDATE records SET status = $3, backend_status = $4, backend_error = $5
		WHERE connection = $1 AND dedupe_hash = $2 AND status = 'pending'`,
		sqlText(connection), sqlText(dedupeHash), string(status), int64(backendStatus), sqlText(backendError))
	if err != nil {
		return 0, fmt.Errorf("%s: mark pending records of %q: %w", c.name, connection, err)
	}
	return n, nil
}
