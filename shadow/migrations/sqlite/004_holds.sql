-- Holds and approvals (live mode): why a write was held (a hold policy or a guard), and
-- what the backend answered when it was forwarded after approval.
ALTER TABLE records ADD COLUMN hold_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN backend_status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN backend_error TEXT NOT NULL DEFAULT '';

-- At most one open hold per identical request: an identical retry finds it (and bumps
-- attempts) instead of adding a row.
CREATE UNIQUE INDEX records_open_hold ON records (connection, dedupe_hash)
	WHERE status IN ('held', 'approved', 'forwarding', 'failed');
-- Guards count a connection's recent user deprovisions.
CREATE INDEX records_deprovisions ON records (connection, created_at) WHERE deprovision;

-- Per-connection credentials: the SHA-256 of a bearer token the IdP presents. The token
-- itself is never stored.
CREATE TABLE credentials (
	connection TEXT PRIMARY KEY NOT NULL,
	token_hash TEXT NOT NULL UNIQUE, -- hex SHA-256
	created_at TEXT NOT NULL
) STRICT;

-- Staged go-live: which writes of a connection in preview go live (JSON Stage).
CREATE TABLE stages (
	connection TEXT PRIMARY KEY NOT NULL,
	stage      TEXT NOT NULL,
	updated_at TEXT NOT NULL
) STRICT;
