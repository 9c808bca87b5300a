-- Run-time mode overrides, set through the review API.
CREATE TABLE connections (
	name       TEXT PRIMARY KEY,
	mode       TEXT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

-- Recorded writes. original and effective hold a StoredRequest; JSON (not JSONB) keeps
-- the text as written.
CREATE TABLE records (
	id            BIGSERIAL PRIMARY KEY,
	connection    TEXT NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	last_seen_at  TIMESTAMPTZ NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 1,
	method        TEXT NOT NULL,
	path          TEXT NOT NULL,
	resource_type TEXT NOT NULL DEFAULT '',
	resource_id   TEXT NOT NULL DEFAULT '',
	resource_key  TEXT NOT NULL DEFAULT '',
	operation     TEXT NOT NULL DEFAULT '',
	status        TEXT NOT NULL DEFAULT 'pending',
	dedupe_hash   TEXT,
	original      JSON NOT NULL,
	effective     JSON NOT NULL,
	changes       JSON,
	findings      JSON
);

CREATE INDEX records_connection_id ON records (connection, id DESC);
CREATE INDEX records_connection_key ON records (connection, lower(resource_key));
CREATE INDEX records_connection_resource_id ON records (connection, resource_id);
CREATE INDEX records_connection_status ON records (connection, status);
CREATE INDEX records_last_seen ON records (last_seen_at);
-- An identical retry of a pending write bumps attempts instead of adding a row.
CREATE UNIQUE INDEX records_pending_dedupe ON records (connection, dedupe_hash) WHERE status = 'pending';
