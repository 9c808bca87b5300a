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

