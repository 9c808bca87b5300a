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

-- The counts of GET /connections (Connections), kept by triggers in the transaction of
-- every statement that inserts, deletes or changes the status or flags of a record
-- (SaveRecord, the hold and stage decisions, DeleteRecords, Purge): reading them is
-- O(connections) instead of a COUNT over every pending record (bench/NOTES.md).
-- records counts every row (the connection is listed while it has one); the others as
-- in Connections. shard is always 0 here (PostgreSQL spreads concurrent writers).
CREATE TABLE record_counts (
	connection   TEXT NOT NULL,
	shard        INTEGER NOT NULL DEFAULT 0,
	records      INTEGER NOT NULL DEFAULT 0,
	pending      INTEGER NOT NULL DEFAULT 0,
	errors       INTEGER NOT NULL DEFAULT 0, -- pending with errors > 0
	deprovisions INTEGER NOT NULL DEFAULT 0, -- pending and deprovision
	held         INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (connection, shard)
) STRICT;

INSERT INTO record_counts (connection, shard, records, pending, errors, deprovisions, held)
SELECT connection, 0, COUNT(*),
	COUNT(*) FILTER (WHERE status = 'pending'),
	COUNT(*) FILTER (WHERE status = 'pending' AND errors > 0),
	COUNT(*) FILTER (WHERE status = 'pending' AND deprovision),
	COUNT(*) FILTER (WHERE status = 'held')
FROM records GROUP BY connection;

CREATE TRIGGER records_counts_insert AFTER INSERT ON records BEGIN
	INSERT INTO record_counts (connection, shard, records, pending, errors, deprovisions, held)
	VALUES (NEW.connection, 0, 1, NEW.status = 'pending', NEW.status = 'pending' AND NEW.errors > 0,
		NEW.status = 'pending' AND NEW.deprovision <> 0, NEW.status = 'held')
	ON CONFLICT (connection, shard) DO UPDATE SET
		records = records + excluded.records, pending = pending + excluded.pending,
		errors = errors + excluded.errors, deprovisions = deprovisions + excluded.deprovisions,
		held = held + excluded.held;
END;

CREATE TRIGGER records_counts_delete AFTER DELETE ON records BEGIN
	UPDATE record_counts SET records = records - 1,
		pending = pending - (OLD.status = 'pending'),
		errors = errors - (OLD.status = 'pending' AND OLD.errors > 0),
		deprovisions = deprovisions - (OLD.status = 'pending' AND OLD.deprovision <> 0),
		held = held - (OLD.status = 'held')
	WHERE connection = OLD.connection AND shard = 0;
END;

CREATE TRIGGER records_counts_update AFTER UPDATE OF connection, status, errors, deprovision ON records BEGIN
	UPDATE record_counts SET records = records - 1,
		pending = pending - (OLD.status = 'pending'),
		errors = errors - (OLD.status = 'pending' AND OLD.errors > 0),
		deprovisions = deprovisions - (OLD.status = 'pending' AND OLD.deprovision <> 0),
		held = held - (OLD.status = 'held')
	WHERE connection = OLD.connection AND shard = 0;
	UPDATE record_counts SET records = records + 1,
		pending = pending + (NEW.status = 'pending'),
		errors = errors + (NEW.status = 'pending' AND NEW.errors > 0),
		deprovisions = deprovisions + (NEW.status = 'pending' AND NEW.deprovision <> 0),
		held = held + (NEW.status = 'held')
	WHERE connection = NEW.connection AND shard = 0;
END;
