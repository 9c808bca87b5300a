package shadow

import (
	"encoding/json"
	"reflect"
	"testing"
)

// suiteDocuments: a record's documents are stored compressed together in the documents
// column (the six columns of before migration 010 hold JSON null or NULL), in fewer bytes
// than their text; and a row written before migration 010, with its documents in those
// columns, reads exactly as the same record written now, through Record,
// PendingProjection and PendingResourceGroups.
func suiteDocuments(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	core := storeCore(s)
	ctx := t.Context()
	record := func(conn string) *Record {
		rec := testRecord(conn, 1)
		rec.Method, rec.Path, rec.Operation, rec.ResourceID = "PATCH", "/scim/v2/Users/u1", "patch", "u1"
		body := json.RawMessage(`{"Operations":[{"op":"replace","path":"title","value":"Lead"}]}`)
		rec.Original = StoredRequest{Method: "PATCH", URL: "/scim/v2/Users/u1", Header: map[string][]string{"Content-Type": {"application/scim+json"}}, Body: body}
		rec.Effective = StoredRequest{Method: "PATCH", URL: "/scim/v2/Users/u1", Body: body}
		rec.Live = json.RawMessage(`{"id":"u1","userName":"ana@example.com","title":"Engineer"}`)
		rec.Projected = json.RawMessage(`{"id":"u1","userName":"ana@example.com","title":"Lead"}`)
		rec.Changes = json.RawMessage(`[{"op":"replace","path":"title","old":"Engineer","new":"Lead"}]`)
		rec.Findings = json.RawMessage(`[{"severity":"error","code":"invalid_value","path":"title","message":"no"}]`)
		rec.Errors = 1
		return rec
	}

	saved := mustSave(t, s, record("now"))
	var (
		original, effective string
		scan                documentScan
	)
	if err := core.db.queryRow(ctx, `SELECT original, effective, documents FROM records WHERE id = $1`, saved.ID).
		Scan(&original, &effective, &scan.blob); err != nil {
		t.Fatal(err)
	}
	var others int
	if err := core.db.queryRow(ctx, `SELECT count(*) FROM records WHERE id = $1 AND changes IS NULL
		AND findings IS NULL AND live IS NULL AND projected IS NULL`, saved.ID).Scan(&others); err != nil {
		t.Fatal(err)
	}
	if original != "null" || effective != "null" || others != 1 {
		t.Errorf("the columns of before migration 010 hold original %q, effective %q, %d rows with NULL others", original, effective, others)
	}
	docs, err := scan.documents()
	if err != nil {
		t.Fatal(err)
	}
	text := 0
	for _, d := range docs {
		text += len(d)
	}
	if len(scan.blob) >= text {
		t.Errorf("documents take %d bytes stored, %d as text", len(scan.blob), text)
	}

	// The same record as a release before migration 010 wrote it.
	args, err := core.recordArgs(record("before"))
	if err != nil {
		t.Fatal(err)
	}
	const firstDocument = 12 // recordArgs' arguments: 12 columns before original
	if args[firstDocument] != "null" || args[firstDocument+docCount] == nil {
		t.Fatalf("recordArgs' documents are not at %d: %v", firstDocument, args[firstDocument:firstDocument+docCount+1])
	}
	for i, d := range docs {
		args[firstDocument+i] = nil
		if d != nil {
			args[firstDocument+i] = string(d)
		}
	}
	args[firstDocument+docCount] = nil
	old, err := scanSaved(core.db.writeRow(ctx, insertRecord, args...))
	if err != nil {
		t.Fatal(err)
	}

	read := func(conn string, id int64) Record {
		t.Helper()
		rec, err := s.Record(ctx, conn, id)
		if err != nil {
			t.Fatal(err)
		}
		if proj, err := s.PendingProjection(ctx, conn, "User", "u1"); err != nil || string(proj) != string(rec.Projected) {
			t.Errorf("PendingProjection(%s) = %s, %v; Record's projection %s", conn, proj, err, rec.Projected)
		}
		groups, _, err := s.PendingResourceGroups(ctx, conn, ResourceQuery{})
		if err != nil || len(groups) != 1 || len(groups[0]) != 1 {
			t.Fatalf("PendingResourceGroups(%s) = %v, %v", conn, groups, err)
		}
		g := groups[0][0]
		if string(g.Live) != string(rec.Live) || string(g.Projected) != string(rec.Projected) || string(g.Findings) != string(rec.Findings) {
			t.Errorf("PendingResourceGroups(%s) live %s projected %s findings %s; Record's %s %s %s", conn,
				g.Live, g.Projected, g.Findings, rec.Live, rec.Projected, rec.Findings)
		}
		return rec
	}
	now, before := read("now", saved.ID), read("before", old.ID)
	if !reflect.DeepEqual(documentsOf(now), documentsOf(before)) {
		t.Errorf("a record read from documents:\n%v\nthe same from the columns of before migration 010:\n%v",
			documentsOf(now), documentsOf(before))
	}
	if string(now.Changes) != `[{"op":"replace","path":"title","old":"Engineer","new":"Lead"}]` || len(now.Original.Header["Content-Type"]) != 1 {
		t.Errorf("read back: changes %s, original %+v", now.Changes, now.Original)
	}
}

// documentsOf is what a record keeps in documents, as text.
func documentsOf(r Record) [docCount]string {
	o, _ := json.Marshal(r.Original)
	e, _ := json.Marshal(r.Effective)
	return [docCount]string{string(o), string(e), string(r.Changes), string(r.Findings), string(r.Live), string(r.Projected)}
}
