package integration

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// secrets are sent in every place an IdP can put one; none may show anywhere.
var secrets = []string{
	backendToken, "C00kieS3cret", "ApiK3ySecret", "BodyPassw0rd", "PatchPassw0rd",
	"PathlessPassw0rd", "EscapedPassw0rd", "ExtPassw0rd", "BulkPassw0rd",
}

// secretWrites are preview writes that carry the secrets.
var secretWrites = []struct{ method, path, body string }{
	{"POST", "/Users", `{"userName":"sec@example.com","password":"BodyPassw0rd","favorite_color":"red"}`},
	{"PATCH", "/Users/u-sec", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"password","value":"PatchPassw0rd"}]}`},
	{"PATCH", "/Users/u-sec2", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"password":"PathlessPassw0rd","active":true}}]}`},
	{"PUT", "/Users/u-sec3", `{"userName":"sec3@example.com","pass\u0077ord":"EscapedPassw0rd"}`},
	{"POST", "/Users", `{"userName":"sec4@example.com","urn:example:ext":{"credentials":{"password":"ExtPassw0rd"}}}`},
	{"POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"POST","path":"/Users","bulkId":"b1","data":{"userName":"bulk@example.com","password":"BulkPassw0rd"}}]}`},
}

// TestSecretsNeverShown sends secrets in headers and bodies of preview writes and looks for
// them in every place data goes: the store's files (SQLite db, -wal, -shm) and tables
// (PostgreSQL), Caddy's log, the review API (route and admin endpoint) and the review page.
func TestSecretsNeverShown(t *testing.T) {
	for name, store := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			be := startBackend(t)
			storeLine := store(t)
			c := startPreview(t, storeLine, be)
			for _, w := range secretWrites {
				status, out, h := doH(t, w.method, c.URL+"/scim/v2"+w.path, w.body, map[string]string{
					"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json",
					"Cookie": "session=C00kieS3cret", "X-Api-Key": "ApiK3ySecret",
				})
				if status != http.StatusTooManyRequests || h.Get("X-Scim-Shadow-Record") == "" {
					t.Fatalf("%s %s: %d %s", w.method, w.path, status, out)
				}
				for _, s := range secrets {
					if strings.Contains(string(out), s) {
						t.Errorf("the rejection shows %q: %s", s, out)
					}
				}
			}
			look := func(where string, data []byte) {
				t.Helper()
				for _, s := range secrets {
					if strings.Contains(string(data), s) {
						t.Errorf("%s contains %q", where, s)
					}
				}
			}
			// The review API and page, on the route and on the admin endpoint.
			var pages []string
			for _, p := range []string{"/connections", "/connections/acme/records", "/connections/acme/resources",
				"/connections/acme/warnings", "/connections/acme/warnings/users", "/ui/connections",
				"/ui/connections/acme/requests", "/ui/connections/acme/resources"} {
				pages = append(pages, c.URL+"/review"+p, c.AdminURL+"/scim_shadow"+p)
			}
			for id := 1; id <= len(secretWrites)+2; id++ {
				pages = append(pages, c.URL+"/review/connections/acme/records/"+strconv.Itoa(id), c.URL+"/review/ui/connections/acme/requests/"+strconv.Itoa(id))
			}
			seen := 0
			for _, u := range pages {
				status, body := do(t, http.MethodGet, u, nil, map[string]string{})
				if status == http.StatusOK {
					seen++
				}
				look(u, body)
			}
			if seen < len(pages)/2 {
				t.Errorf("only %d of %d review pages answered 200: the check proves little", seen, len(pages))
			}
			c.Stop()
			look("caddy log", []byte(c.log.String()))
			if name == "sqlite" {
				files, _ := filepath.Glob(filepath.Join(c.dir, "shadow.db*"))
				if len(files) == 0 {
					t.Fatal("no store files")
				}
				all := ""
				for _, f := range files {
					b, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					look(f, b)
					all += string(b)
				}
				if !strings.Contains(all, "bulk@example.com") {
					t.Error("the store files do not hold the recorded writes: the check proves nothing")
				}
				return
			}
			// PostgreSQL: every row of every table of the test's schema, as text.
			dsn := strings.TrimPrefix(storeLine, "store postgres ")
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			rows, err := conn.Query(context.Background(), `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
			if err != nil {
				t.Fatal(err)
			}
			var tables []string
			for rows.Next() {
				var n string
				_ = rows.Scan(&n)
				tables = append(tables, n)
			}
			rows.Close()
			if len(tables) == 0 {
				t.Fatal("no tables in the test schema")
			}
			all := ""
			for _, tbl := range tables {
				var dump string
				if err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+pgx.Identifier{tbl}.Sanitize()+` t`).Scan(&dump); err != nil {
					t.Fatal(err)
				}
				look("table "+tbl, []byte(dump))
				all += dump
			}
			if !strings.Contains(all, "bulk@example.com") {
				t.Error("the tables do not hold the recorded writes: the check proves nothing")
			}
		})
	}
}

// TestStoreFilesPrivate: the SQLite files Caddy creates are 0600, their directory 0700
// (the default path under Caddy's data directory).
func TestStoreFilesPrivate(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, reliabilityConfig("", "preview"), be) // no store line: the default path
	if status, _, _ := c.scim(t, http.MethodPost, "/Users", `{"userName":"mode@example.com"}`); status != http.StatusTooManyRequests {
		t.Fatalf("write: %d", status)
	}
	dir := filepath.Join(c.dir, "data", "caddy", "scim-shadow")
	want := map[string]fs.FileMode{dir: 0o700 | fs.ModeDir}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		want[filepath.Join(dir, "scim-shadow.db"+suffix)] = 0o600
	}
	for path, mode := range want {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), mode)
		}
	}
}

// TestReviewOnlyWhereMounted: the review API is served by scim_shadow_review where the
// operator mounts it and by the admin endpoint; not through the SCIM route, not elsewhere.
func TestReviewOnlyWhereMounted(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, strings.Replace(reliabilityConfig("store sqlite {{DB}}", "preview"),
		"handle_path /review/* {\n\t\tscim_shadow_review\n\t}", "respond \"not found\" 404", 1), be)
	c.scim(t, http.MethodPost, "/Users", `{"userName":"mounted@example.com"}`)
	for _, p := range []string{"/review/connections", "/connections", "/scim_shadow/connections", "/ui/connections"} {
		status, body := do(t, http.MethodGet, c.URL+p, nil, map[string]string{})
		if status != http.StatusNotFound || strings.Contains(string(body), "mounted@example.com") {
			t.Errorf("GET %s without a review handler: %d %s", p, status, body)
		}
	}
	// Through the SCIM route a review path is just a SCIM read, forwarded to the backend.
	status, body, _ := c.scim(t, http.MethodGet, "/connections/acme/records", nil)
	if strings.Contains(string(body), "mounted@example.com") {
		t.Errorf("review data through the SCIM route: %d %s", status, body)
	}
	status, body = do(t, http.MethodGet, c.AdminURL+"/scim_shadow/connections/acme/records", nil, map[string]string{})
	if status != http.StatusOK || !strings.Contains(string(body), "mounted@example.com") {
		t.Errorf("admin endpoint: %d %s", status, body)
	}
}

// TestConnectionIsolation: every review endpoint under one connection's name shows nothing
// of another's, and mutations under one name leave the other alone.
func TestConnectionIsolation(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, strings.Replace(reliabilityConfig("store sqlite {{DB}}", "preview"),
		"connection acme", "connection {http.request.header.X-Tenant}", 1), be)
	send := func(tenant, user string) string {
		_, _, h := doH(t, http.MethodPost, c.URL+"/scim/v2/Users", `{"userName":"`+user+`"}`, map[string]string{
			"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json", "X-Tenant": tenant,
		})
		return h.Get("X-Scim-Shadow-Record")
	}
	idA := send("tenant-a", "only-a@example.com") // no favoriteColor: a warning too
	send("tenant-b", "only-b@example.com")
	for _, base := range []string{c.URL + "/review", c.AdminURL + "/scim_shadow"} {
		for _, p := range []string{"/connections/tenant-b/records", "/connections/tenant-b/records/" + idA,
			"/connections/tenant-b/resources", "/connections/tenant-b/resources?user=only-a@example.com",
			"/connections/tenant-b/records?user=only-a@example.com", "/connections/tenant-b/warnings",
			"/connections/tenant-b/warnings/users", "/connections/tenant-b/warnings/users/only-a@example.com",
			"/ui/connections/tenant-b/requests", "/ui/connections/tenant-b/requests/" + idA,
			"/ui/connections/tenant-b/resources", "/connections/TENANT-A/records", "/connections/tenant-a%00/records"} {
			_, body := do(t, http.MethodGet, base+p, nil, map[string]string{})
			if strings.Contains(string(body), "only-a@example.com") && !strings.Contains(p, "only-a") {
				t.Errorf("%s shows tenant-a's data: %s", p, body)
			}
			if strings.Contains(p, "only-a") && strings.Count(string(body), "only-a@example.com") > 1 {
				t.Errorf("%s matched tenant-a's data: %s", p, body)
			}
		}
	}
	// Clearing tenant-b leaves tenant-a's record.
	if status, _ := do(t, http.MethodDelete, c.URL+"/review/connections/tenant-b/records", nil, map[string]string{}); status != http.StatusOK {
		t.Fatalf("clear tenant-b: %d", status)
	}
	if status, body := do(t, http.MethodGet, c.URL+"/review/connections/tenant-a/records/"+idA, nil, map[string]string{}); status != http.StatusOK || !strings.Contains(string(body), "only-a@example.com") {
		t.Errorf("tenant-a's record after clearing tenant-b: %d %s", status, body)
	}
}
