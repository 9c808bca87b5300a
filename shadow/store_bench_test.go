package shadow

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkPendingLookup is the store lookup of a preview PATCH, PUT or DELETE on a
// resource with pending records, here a 1,000-member group whose newest pending PATCH
// added 100 members (101 subjects): PendingProjection (what the engine calls) reads the
// projection; Record, for comparison, reads the whole record as the lookup did before
// (its subjects by a second query, both stored requests decoded). SQLite, and PostgreSQL
// when SCIM_SHADOW_TEST_POSTGRES is set.
func BenchmarkPendingLookup(b *testing.B) {
	stores := map[string]func(b *testing.B) Store{
		"sqlite": func(b *testing.B) Store {
			s, err := OpenSQLite(b.Context(), filepath.Join(b.TempDir(), "shadow.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	if dsn := os.Getenv("SCIM_SHADOW_TEST_POSTGRES"); dsn != "" {
		stores["postgres"] = func(b *testing.B) Store {
			s, err := OpenPostgres(b.Context(), postgresTestSchema(b, postgresAdmin(b, dsn), dsn))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	for _, name := range []string{"sqlite", "postgres"} {
		open := stores[name]
		if open == nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			s := open(b)
			defer s.Close()
			group := everyoneGroup()
			var newest int64
			for n := range 50 {
				saved, err := s.SaveRecord(b.Context(), pendingGroupPatch(n, group))
				if err != nil {
					b.Fatal(err)
				}
				newest = saved.ID
			}
			b.Run("Record", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if r, err := s.Record(b.Context(), "bench", newest); err != nil || len(r.Subjects) != 101 {
						b.Fatalf("%d subjects, %v", len(r.Subjects), err)
					}
				}
			})
			b.Run("PendingProjection", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if p, err := s.PendingProjection(b.Context(), "bench", "Group", "g1"); err != nil || len(p) < 40_000 {
						b.Fatalf("%d bytes, %v", len(p), err)
					}
				}
			})
		})
	}
}

// everyoneGroup is group g1 with 1,000 members.
func everyoneGroup() json.RawMessage {
	var group strings.Builder
	group.WriteString(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1","displayName":"everyone","members":[`)
	for i := range 1000 {
		if i > 0 {
			group.WriteByte(',')
		}
		fmt.Fprintf(&group, `{"value":"u%d","display":"user%d@example.org"}`, i, i)
	}
	group.WriteString(`]}`)
	return json.RawMessage(group.String())
}

// pendingGroupPatch is the n-th pending PATCH of group g1 adding 100 members, with group
// as its live state and projection.
func pendingGroupPatch(n int, group json.RawMessage) *Record {
	var ops strings.Builder
	subjects := []Subject{{Kind: "group", ID: "g1"}}
	ops.WriteString(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[`)
	for i := range 100 {
		if i > 0 {
			ops.WriteByte(',')
		}
		fmt.Fprintf(&ops, `{"value":"u%d"}`, n*100+i)
		subjects = append(subjects, Subject{Kind: "user", ID: fmt.Sprintf("u%d", n*100+i), Change: "added"})
	}
	ops.WriteString(`]}]}`)
	req := StoredRequest{Method: "PATCH", URL: "/scim/v2/Groups/g1", Body: json.RawMessage(ops.String())}
	return &Record{Connection: "bench", Method: "PATCH", Path: req.URL, ResourceType: "Group", ResourceID: "g1",
		Operation: "patch", Status: StatusPending, DedupeHash: fmt.Sprint("patch-", n), Original: req, Effective: req,
		Live: group, Projected: group, Subjects: subjects}
}
