-- A record's six documents (original, effective, changes, findings, live, projected),
-- stored together and compressed (store_documents.go): ~10 KB of JSON per preview write
-- became ~3 KB in one page instead of three overflow pages. Rows written before keep their
-- documents in the six columns; a row written since has original and effective 'null' and
-- the others NULL.
ALTER TABLE records ADD COLUMN documents BLOB;
