-- Warnings: a resource whose writes lack an attribute its rule marks warn_if_missing.
-- One row per (connection, resource type, key, attribute); key_fold is the key lower-cased
-- by the store (Unicode folding, the same in both databases), resource_key its spelling as
-- last seen. A write carrying the attribute resolves the warning (resolved_at set); a
-- later miss reopens it. example_record_id is a record showing a request without the
-- attribute (the preview record, or one kept with status 'observed' in live mode); it
-- becomes NULL when that record is deleted, and the warning stays.
CREATE TABLE warnings (
	connection        TEXT NOT NULL,
	resource_type     TEXT NOT NULL,
	key_fold          TEXT NOT NULL,
	resource_key      TEXT NOT NULL,
	resource_id       TEXT NOT NULL DEFAULT '',
	attribute         TEXT NOT NULL,
	count             BIGINT NOT NULL DEFAULT 1, -- writes seen without it since it opened
	first_seen_at     TIMESTAMPTZ NOT NULL,
	last_seen_at      TIMESTAMPTZ NOT NULL,
	resolved_at       TIMESTAMPTZ,               -- NULL while open
	example_record_id BIGINT REFERENCES records (id) ON DELETE SET NULL,
	PRIMARY KEY (connection, resource_type, key_fold, attribute)
);

-- A PATCH knows only the resource id.
CREATE INDEX warnings_resource_id ON warnings (connection, resource_type, resource_id);
-- ON DELETE SET NULL finds the warnings of a deleted record through it.
CREATE INDEX warnings_example ON warnings (example_record_id);

-- Uses of a rule's from paths (fallback_used findings), counted per source.
CREATE TABLE warning_fallbacks (
	connection    TEXT NOT NULL,
	resource_type TEXT NOT NULL,
	attribute     TEXT NOT NULL,
	source        TEXT NOT NULL,
	count         BIGINT NOT NULL DEFAULT 1,
	first_seen_at TIMESTAMPTZ NOT NULL,
	last_seen_at  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (connection, resource_type, attribute, source)
);
