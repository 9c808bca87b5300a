-- Run-time mode overrides, set through the review API.
CREATE TABLE connections (
	name       TEXT PRIMARY KEY NOT NULL,
	mode       TEXT NOT NULL,
	updated_at TEXT NOT NULL -- UTC, 2006-01-02T15:04:05.000000Z
) STRICT;

-- Recorded writes. Timestamps are fixed-width UTC text, so text order is time order.
-- original and effective hold a StoredRequest as JSON; changes and findings JSON or NULL.
CREATE TABLE records (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	connection    TEXT NOT NULL,
	created_at    TEXT NOT NULL,
	last_seen_at  TEXT NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 1,
	method        TEXT NOT NULL,
	path          TEXT NOT NULL,
	resource_type TEXT NOT NULL DEFAULT '',
	resource_id   TEXT NOT NULL DEFAULT '',
	resource_key  TEXT NOT NULL DEFAULT '',
	operation     TEXT NOT NULL DEFAULT '',
	status        TEXT NOT NULL DEFAULT 'pending',
	dedupe_hash   TEXT,
	original      TEXT NOT NULL,
	effective     TEXT NOT NULL,
	changes       TEXT,
	findings      TEXT
) STRICT;

CREATE INDEX records_connection_id ON records (connection, id DESC);
CREATE INDEX records_connection_key ON records (connection, lower(resource_key));
CREATE INDEX records_connection_resource_id ON records (connection, resource_id);
CREATE INDEX records_connection_status ON records (connection, status);
CREATE INDEX records_last_seen ON records (last_seen_at);
-- An identical retry of a pending write bumps attempts instead of adding a row.
CREATE UNIQUE INDEX records_pending_dedupe ON records (connection, dedupe_hash) WHERE status = 'pending';
