package shadow

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// spyBackend notes the text of every statement a store sends.
type spyBackend struct {
	inner sqlBackend
	mu    *sync.Mutex
	seen  *[]string
}

func (s spyBackend) note(q string) {
	s.mu.Lock()
	*s.seen = append(*s.seen, q)
	s.mu.Unlock()
}

func (s spyBackend) queryRow(ctx context.Context, q string, args ...any) sqlRowScanner {
	s.note(q)
	return s.inner.queryRow(ctx, q, args...)
}

func (s spyBackend) writeRow(ctx context.Context, q string, args ...any) sqlRowScanner {
	s.note(q)
	return s.inner.writeRow(ctx, q, args...)
}

func (s spyBackend) query(ctx context.Context, q string, args ...any) (sqlRows, error) {
	s.note(q)
	return s.inner.query(ctx, q, args...)
}

func (s spyBackend) exec(ctx context.Context, q string, args ...any) (int64, error) {
	s.note(q)
	return s.inner.exec(ctx, q, args...)
}

func (s spyBackend) timeArg(t time.Time) any { return s.inner.timeArg(t) }

func (s spyBackend) inTx(ctx context.Context, fn func(tx sqlBackend) error) error {
	return s.inner.inTx(ctx, func(tx sqlBackend) error { return fn(spyBackend{tx, s.mu, s.seen}) })
}

// hostileMarker is in every value the test gives the store; it must never be in a
// statement's text, only in its parameters.
const hostileMarker = "zq'x\"--;/*"

// TestSQLOnlyParameters drives every store operation with values that carry a marker and
// checks that no statement text holds it: input reaches SQL only as parameters.
func TestSQLOnlyParameters(t *testing.T) {
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		mu   sync.Mutex
		seen []string
	)
	s.sqlCore.db = spyBackend{s.sqlCore.db, &mu, &seen}
	ctx := context.Background()
	h := func(s string) string { return s + hostileMarker }
	conn := h("conn")
	rec := &Record{
		Connection: conn, CreatedAt: time.Now(), LastSeenAt: time.Now(), Attempts: 1,
		Method: "POST", Path: h("/Users/"), ResourceType: h("User"), ResourceID: h("id"), Key: h("key"),
		Operation: h("create"), Status: StatusPending, DedupeHash: h("hash"),
		Original:  StoredRequest{Method: "POST", URL: h("/u?"), Body: []byte(`{"userName":"` + strings.ReplaceAll(h("k"), `"`, `\"`) + `"}`)},
		Effective: StoredRequest{Method: "POST", URL: h("/u?"), Text: h("text")},
		Subjects:  []Subject{{Kind: "user", ID: h("sid"), Key: h("skey"), Change: "added"}},
	}
	saved, err := s.SaveRecord(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { _, err := s.SaveRecord(ctx, rec); return err }, // the dedupe path
		func() error { _, err := s.Record(ctx, conn, saved.ID); return err },
		func() error {
			_, err := s.PendingProjection(ctx, conn, h("User"), h("id"))
			return ignoreNotFound(err)
		},
		func() error {
			_, _, err := s.Records(ctx, conn, RecordQuery{User: h("u"), Group: h("g"), ResourceType: h("t"),
				Method: h("m"), Status: RecordStatus(h("s")), ErrorsOnly: true, Deprovisions: true, Cursor: encodeCursor(saved.ID + 1)})
			return err
		},
		func() error { return s.SetMode(ctx, conn, ModePreview) },
		func() error { _, err := s.Modes(ctx); return err },
		func() error { _, err := s.Connections(ctx); return err },
		func() error {
			_, err := s.NoteWarnings(ctx, WarningNote{Connection: conn, ResourceType: h("User"), Key: h("key"), ResourceID: h("id"),
				Missing: []string{h("attr")}, Present: []string{h("present")}, Fallbacks: []FallbackUse{{Attribute: h("a"), Source: h("s")}},
				ExampleRecordID: saved.ID})
			return err
		},
		func() error { _, err := s.WarningSummary(ctx, conn); return err },
		func() error {
			_, _, err := s.WarningUsers(ctx, conn, h("attr"), encodeWarningCursor(h("User"), h("k")), 10)
			return err
		},
		func() error { _, err := s.UserWarnings(ctx, conn, h("key")); return err },
		func() error { _, err := s.DeleteRecords(ctx, conn); return err },
		func() error { _, err := s.Purge(ctx, time.Now().Add(-time.Hour)); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if len(seen) < len(steps) {
		t.Fatalf("only %d statements seen: the spy is not in the path", len(seen))
	}
	for _, q := range seen {
		if strings.Contains(q, hostileMarker) || strings.Contains(q, "zq'x") {
			t.Errorf("input in statement text: %s", q)
		}
	}
}

func ignoreNotFound(err error) error {
	if err == ErrNotFound {
		return nil
	}
	return err
}

// sqlKeyword finds SQL in a string literal (the package writes SQL keywords in capitals).
var sqlKeyword = regexp.MustCompile(`\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bDELETE FROM\b|\bWHERE\b|\bORDER BY\b|\bLIMIT\b|\b(AND|OR) \(?[a-z_.]+\(?[a-z_]*\)? *(=|<|>|IN\b)`)

// TestSQLNotFormatted is a vet-like check over the package's source: no SQL is built with
// fmt (Sprintf and friends), and a string literal holding SQL is only ever concatenated
// with constants, placeholders from param(…), or the fragments of allowedSQLParts.
func TestSQLNotFormatted(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "S") || ok && pkg.Name == "fmt" && sel.Sel.Name == "Fprintf" {
					for _, a := range n.Args {
						if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING && sqlKeyword.MatchString(lit.Value) {
							t.Errorf("%s: SQL built with fmt.%s", fset.Position(n.Pos()), sel.Sel.Name)
						}
					}
				}
			case *ast.BinaryExpr:
				if n.Op != token.ADD || !hasSQLLiteral(n) {
					return true
				}
				checked++
				for _, operand := range flattenAdd(n) {
					if !safeSQLPart(operand) {
						t.Errorf("%s: SQL concatenated with %s", fset.Position(operand.Pos()), exprString(fset, operand))
					}
				}
				return false
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no SQL concatenation found: the check looks at nothing")
	}
}

// allowedSQLParts are the non-literal pieces SQL may be joined from: constant column
// lists, the dialect's function name, placeholders and fixed kinds chosen by the code.
var allowedSQLParts = map[string]bool{
	"recordColumns": true, "documentColumns": true, "greatest": true, "kind": true, "p": true, "pt": true, "pk": true,
	"param": true, "strconv.Itoa": true, "subjectFilter": true,
	"resourceWhere": true,                   // one of three fixed conditions (store_resources.go)
	"valuesList":    true, "c.values": true, // placeholders only (store_sql.go)
}

func hasSQLLiteral(e ast.Expr) bool {
	for _, p := range flattenAdd(e) {
		if lit, ok := p.(*ast.BasicLit); ok && lit.Kind == token.STRING && sqlKeyword.MatchString(lit.Value) {
			return true
		}
	}
	return false
}

func flattenAdd(e ast.Expr) []ast.Expr {
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.ADD {
		return append(flattenAdd(b.X), flattenAdd(b.Y)...)
	}
	if p, ok := e.(*ast.ParenExpr); ok {
		return flattenAdd(p.X)
	}
	return []ast.Expr{e}
}

func safeSQLPart(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return allowedSQLParts[e.Name] || isConstName(e)
	case *ast.SelectorExpr: // a field holding a dialect constant, e.g. c.greatest
		return allowedSQLParts[e.Sel.Name]
	case *ast.CallExpr:
		switch fn := e.Fun.(type) {
		case *ast.Ident:
			return allowedSQLParts[fn.Name]
		case *ast.SelectorExpr:
			if x, ok := fn.X.(*ast.Ident); ok {
				return allowedSQLParts[x.Name+"."+fn.Sel.Name]
			}
		}
	}
	return false
}

// isConstName reports whether an identifier resolves to a constant declaration.
func isConstName(id *ast.Ident) bool {
	if id.Obj == nil {
		return false
	}
	return id.Obj.Kind == ast.Con
}

func exprString(fset *token.FileSet, e ast.Expr) string {
	return fset.Position(e.Pos()).String() + ": " + strconv.Quote(typeName(e))
}

func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.CallExpr:
		return "call"
	case *ast.SelectorExpr:
		return "selector " + e.Sel.Name
	}
	return "expression"
}
