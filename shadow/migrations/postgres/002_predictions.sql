-- Predictions: the target as the backend had it (live) and after the write (projected),
-- JSON or NULL; the count of error findings; whether the write deprovisions.
ALTER TABLE records
	ADD COLUMN live        JSON,
	ADD COLUMN projected   JSON,
	ADD COLUMN errors      INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN deprovision BOOLEAN NOT NULL DEFAULT FALSE;

-- The users and groups a record touches: its target (change '') and every member added
-- or removed. pos keeps the order of Record.Subjects. connection repeats the record's,
-- so lookups by subject stay within one connection without a join.
CREATE TABLE record_subjects (
	record_id   BIGINT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
	pos         INTEGER NOT NULL,
	connection  TEXT NOT NULL,
	kind        TEXT NOT NULL,            -- 'user' or 'group'
	subject_id  TEXT NOT NULL DEFAULT '',
	subject_key TEXT NOT NULL DEFAULT '',
	change      TEXT NOT NULL DEFAULT '', -- 'added', 'removed' or ''
	PRIMARY KEY (record_id, pos)
);

CREATE INDEX record_subjects_key ON record_subjects (connection, kind, lower(subject_key));
CREATE INDEX record_subjects_id ON record_subjects (connection, kind, subject_id);

-- Counts of Connections (pending, with errors, deprovisioning) from one covering index;
-- it replaces (connection, status), a prefix of it.
DROP INDEX records_connection_status;
CREATE INDEX records_connection_status_flags ON records (connection, status, errors, deprovision);
