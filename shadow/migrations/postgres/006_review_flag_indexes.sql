-- The records list filtered by errors=1 or deprovisions=1 walks (connection, id DESC)
-- until a page of matches: with 1% of a million records matching, ~10,000 full rows.
-- These partial indexes hold only the matching records (bench/NOTES.md).
CREATE INDEX records_connection_errors ON records (connection, id DESC) WHERE errors > 0;
CREATE INDEX records_connection_deprovision ON records (connection, id DESC) WHERE deprovision;
