-- The per-resource view (PendingResourceGroups, bench/NOTES.md) reads its walk and each
-- resource's records from migration 007's partial indexes; it read a table row for every
-- record it met (the walk's resource identity, a record's attempts and flags): ?type=Group
-- read ~5,000 rows for a page of 50 groups, ?errors=1 ~10,000 at a million records.
-- The same indexes, rebuilt with those columns after their keys, answer both from the
-- index alone; no index is added on the path of every write. The errors column lets the
-- walk of ?errors=1 ask whether a resource has a pending record with errors from the index.
DROP INDEX records_pending_id;
CREATE INDEX records_pending_id ON records (connection, id DESC, resource_type, resource_id, resource_key, errors)
	WHERE status = 'pending';
DROP INDEX records_pending_type;
CREATE INDEX records_pending_type ON records (connection, lower(resource_type), id DESC, resource_type, resource_id,
	resource_key, errors) WHERE status = 'pending';
DROP INDEX records_pending_resource_id;
CREATE INDEX records_pending_resource_id ON records (connection, resource_id, lower(resource_type), id, errors, attempts,
	deprovision, resource_key, resource_type) WHERE status = 'pending';
DROP INDEX records_pending_resource_key;
CREATE INDEX records_pending_resource_key ON records (connection, lower(resource_key), lower(resource_type), id, errors,
	attempts, deprovision, resource_key, resource_type, resource_id) WHERE status = 'pending' AND resource_id = '';
-- The pending records with errors, with their resource identity: ?errors=1 maps them to
-- their resources when its walk does not fill a page. Only records with errors enter it.
CREATE INDEX records_pending_errors ON records (connection, id DESC, resource_type, resource_id, resource_key, errors)
	WHERE status = 'pending' AND errors > 0;
