-- The per-resource view (PendingResourceGroups, bench/NOTES.md) walks the pending records
-- of a connection newest first and keeps a record when it is the newest pending record of
-- its resource: one index seek per record walked, on these partial indexes. The last
-- column makes max(id) of a resource one seek.
CREATE INDEX records_pending_id ON records (connection, id DESC) WHERE status = 'pending';
-- The same walk for ?type= (without it PostgreSQL read every record of the type and
-- sorted them: 748 ms → 6 ms on 200,000 records).
CREATE INDEX records_pending_type ON records (connection, lower(resource_type), id DESC) WHERE status = 'pending';
CREATE INDEX records_pending_resource_id ON records (connection, resource_id, lower(resource_type), id)
	WHERE status = 'pending';
CREATE INDEX records_pending_resource_key ON records (connection, lower(resource_key), lower(resource_type), id)
	WHERE status = 'pending' AND resource_id = '';

-- The counts of GET /connections (Connections), kept by a trigger in the transaction of
-- every statement that inserts, deletes or updates records
-- (SaveRecord, the hold and stage decisions, DeleteRecords, Purge): reading them is
-- O(connections) instead of a COUNT over every pending record (bench/NOTES.md).
-- records counts every row (the connection is listed while it has one); the others as
-- in Connections. A connection's counts are the sums over its shards: each session adds
-- to the shard of its backend (pid % 16), so that concurrent writers of one connection
-- do not queue on one row lock until their commits.
CREATE TABLE record_counts (
	connection   TEXT NOT NULL,
	shard        INTEGER NOT NULL DEFAULT 0,
	records      BIGINT NOT NULL DEFAULT 0,
	pending      BIGINT NOT NULL DEFAULT 0,
	errors       BIGINT NOT NULL DEFAULT 0, -- pending with errors > 0
	deprovisions BIGINT NOT NULL DEFAULT 0, -- pending and deprovision
	held         BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (connection, shard)
);

INSERT INTO record_counts (connection, shard, records, pending, errors, deprovisions, held)
SELECT connection, 0, COUNT(*),
	COUNT(*) FILTER (WHERE status = 'pending'),
	COUNT(*) FILTER (WHERE status = 'pending' AND errors > 0),
	COUNT(*) FILTER (WHERE status = 'pending' AND deprovision),
	COUNT(*) FILTER (WHERE status = 'held')
FROM records GROUP BY connection;

-- Statement-level triggers: one upsert per statement and connection, from the transition
-- tables (per-row triggers would update one counter row once per record in the same
-- transaction: a DELETE or Purge of a million records piles a million row versions).
CREATE FUNCTION records_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO record_counts AS c (connection, shard, records, pending, errors, deprovisions, held)
		SELECT connection, pg_backend_pid() % 16, COUNT(*),
			COUNT(*) FILTER (WHERE status = 'pending'),
			COUNT(*) FILTER (WHERE status = 'pending' AND errors > 0),
			COUNT(*) FILTER (WHERE status = 'pending' AND deprovision),
			COUNT(*) FILTER (WHERE status = 'held')
		FROM new_rows GROUP BY connection ORDER BY connection
		ON CONFLICT (connection, shard) DO UPDATE SET
			records = c.records + excluded.records, pending = c.pending + excluded.pending,
			errors = c.errors + excluded.errors, deprovisions = c.deprovisions + excluded.deprovisions,
			held = c.held + excluded.held;
	ELSIF TG_OP = 'DELETE' THEN
		INSERT INTO record_counts AS c (connection, shard, records, pending, errors, deprovisions, held)
		SELECT connection, pg_backend_pid() % 16, -COUNT(*),
			-COUNT(*) FILTER (WHERE status = 'pending'),
			-COUNT(*) FILTER (WHERE status = 'pending' AND errors > 0),
			-COUNT(*) FILTER (WHERE status = 'pending' AND deprovision),
			-COUNT(*) FILTER (WHERE status = 'held')
		FROM old_rows GROUP BY connection ORDER BY connection
		ON CONFLICT (connection, shard) DO UPDATE SET
			records = c.records + excluded.records, pending = c.pending + excluded.pending,
			errors = c.errors + excluded.errors, deprovisions = c.deprovisions + excluded.deprovisions,
			held = c.held + excluded.held;
	ELSE
		INSERT INTO record_counts AS c (connection, shard, records, pending, errors, deprovisions, held)
		SELECT connection, pg_backend_pid() % 16, SUM(n), SUM(pending), SUM(errors), SUM(deprovisions), SUM(held)
		FROM (
			SELECT connection, 1 AS n, (status = 'pending')::int AS pending,
				(status = 'pending' AND errors > 0)::int AS errors,
				(status = 'pending' AND deprovision)::int AS deprovisions, (status = 'held')::int AS held
			FROM new_rows
			UNION ALL
			SELECT connection, -1, -(status = 'pending')::int, -(status = 'pending' AND errors > 0)::int,
				-(status = 'pending' AND deprovision)::int, -(status = 'held')::int
			FROM old_rows
		) d
		GROUP BY connection
		HAVING SUM(n) <> 0 OR SUM(pending) <> 0 OR SUM(errors) <> 0 OR SUM(deprovisions) <> 0 OR SUM(held) <> 0
		ORDER BY connection
		ON CONFLICT (connection, shard) DO UPDATE SET
			records = c.records + excluded.records, pending = c.pending + excluded.pending,
			errors = c.errors + excluded.errors, deprovisions = c.deprovisions + excluded.deprovisions,
			held = c.held + excluded.held;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER records_counts_insert AFTER INSERT ON records
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION records_count_change();
CREATE TRIGGER records_counts_delete AFTER DELETE ON records
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION records_count_change();
-- Every UPDATE (transition tables allow no column list); a statement that changes no
-- count (a retry's attempts) writes nothing.
CREATE TRIGGER records_counts_update AFTER UPDATE ON records
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION records_count_change();
