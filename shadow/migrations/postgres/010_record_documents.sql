-- A record's six documents (original, effective, changes, findings, live, projected),
-- stored together and compressed (store_documents.go): ~10 KB of JSON per preview write,
-- each column compressed by pglz and moved out of line into the TOAST table, became ~3 KB
-- kept in the row (STORAGE MAIN: no out-of-line copy unless the row cannot fit a page).
-- Rows written before keep their documents in the six columns; a row written since has
-- original and effective 'null' and the others NULL.
ALTER TABLE records ADD COLUMN documents BYTEA;
ALTER TABLE records ALTER COLUMN documents SET STORAGE MAIN;
