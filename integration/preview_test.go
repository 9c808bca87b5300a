package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// previewCaddyfile puts connection acme in preview, with the review API on a route.
const previewCaddyfile = `{
	admin {{ADMIN}}
	scim_shadow {
		{{STORE}}
		mode_refresh 200ms
	}
}
:{{PORT}} {
	route /scim/v2/* {
		scim_shadow {
			connection acme
			mode preview
			redact_header X-Api-Key
			map User {
				favoriteColor {
					from favorite_color
					warn_if_missing
				}
			}
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
}
`

// storeKinds are the stores every preview test runs on: SQLite always, PostgreSQL when
// SCIM_SHADOW_TEST_POSTGRES is set.
func storeKinds(t *testing.T) map[string]func(t *testing.T) string {
	kinds := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "store sqlite {{DB}}" },
	}
	kinds["postgres"] = func(t *testing.T) string {
		return "store postgres " + postgresDSN(t)
	}
	return kinds
}

// postgresDSN returns a DSN whose search_path is a fresh schema, dropped after the test.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SCIM_SHADOW_TEST_POSTGRES")
	if base == "" {
		t.Skip("PostgreSQL tests skipped: set SCIM_SHADOW_TEST_POSTGRES to a DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	schema := fmt.Sprintf("it_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func startPreview(t *testing.T, store string, be *testBackend) *caddyProc {
	t.Helper()
	return startCaddy(t, strings.ReplaceAll(previewCaddyfile, "{{STORE}}", store), be)
}

// review calls the review API on the route.
func (p *caddyProc) review(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	status, out := do(t, method, p.URL+"/review"+path, body, map[string]string{})
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return status, m
}

const oktaCreate = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com",
	"name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"primary":true,"value":"ada@example.com","type":"work"}],
	"displayName":"Ada Lovelace","locale":"en-US","externalId":"00u1","groups":[],"password":"hunter2",
	"favorite_color":"teal","active":true}`

func TestPreviewRecordsAndRejects(t *testing.T) {
	for name, store := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			be := startBackend(t)
			c := startPreview(t, store(t), be)

			// Reads pass through: Okta's connection test and lookup.
			status, out, _ := c.scim(t, http.MethodGet, "/Users?startIndex=1&count=2", nil)
			if status != http.StatusOK {
				t.Fatalf("connection test: %d %s", status, out)
			}
			status, out, _ = c.scim(t, http.MethodPost, "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"ada@example.com\""}`)
			if status == http.StatusTooManyRequests {
				t.Fatalf("a search was rejected: %s", out)
			}

			// A write is recorded and rejected with the retryable status.
			status, out, h := doH(t, http.MethodPost, c.URL+"/scim/v2/Users", oktaCreate, map[string]string{
				"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json; charset=utf-8",
				"Cookie": "session=s3cret", "X-Api-Key": "k3y", "User-Agent": "Okta SCIM Client 1.0.0",
			})
			if status != http.StatusTooManyRequests || h.Get("Retry-After") != "600" {
				t.Fatalf("status %d Retry-After %q, want 429 600: %s", status, h.Get("Retry-After"), out)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "application/scim+json") {
				t.Errorf("Content-Type %q", h.Get("Content-Type"))
			}
			body := decode(t, out)
			if body["status"] != "429" || !strings.Contains(body["detail"].(string), "recorded") {
				t.Errorf("error body %s", out)
			}
			id := h.Get("X-Scim-Shadow-Record")
			if id == "" || !strings.Contains(body["detail"].(string), id) {
				t.Fatalf("record id %q not in header and detail: %s", id, out)
			}
			if n := be.Writes(); n != 0 {
				t.Fatalf("backend received %d writes in preview", n)
			}

			// An identical retry bumps attempts instead of adding a record.
			_, _, h2 := c.scim(t, http.MethodPost, "/Users", oktaCreate)
			if h2.Get("X-Scim-Shadow-Record") != id {
				t.Errorf("retry got record %q, want %q", h2.Get("X-Scim-Shadow-Record"), id)
			}

			status, rec := c.review(t, http.MethodGet, "/connections/acme/records/"+id, nil)
			if status != http.StatusOK {
				t.Fatalf("record: %d %v", status, rec)
			}
			if rec["attempts"] != float64(2) || rec["status"] != "pending" || rec["method"] != "POST" ||
				rec["resource_type"] != "User" || rec["key"] != "ada@example.com" || rec["connection"] != "acme" {
				t.Errorf("record fields: %v", rec)
			}
			raw, _ := json.Marshal(rec)
			for _, secret := range []string{"hunter2", "s3cret", "k3y", backendToken} {
				if strings.Contains(string(raw), secret) {
					t.Errorf("record exposes secret %q: %s", secret, raw)
				}
			}
			eff := rec["effective"].(map[string]any)["body"].(map[string]any)
			if eff["favoriteColor"] != "teal" || eff["favorite_color"] != nil {
				t.Errorf("effective body not rewritten: %v", eff)
			}
			orig := rec["original"].(map[string]any)["body"].(map[string]any)
			if orig["favorite_color"] != "teal" {
				t.Errorf("original body changed: %v", orig)
			}

			status, list := c.review(t, http.MethodGet, "/connections", nil)
			if status != http.StatusOK {
				t.Fatalf("connections: %d", status)
			}
			conns := list["connections"].([]any)
			if len(conns) != 1 || conns[0].(map[string]any)["pending"] != float64(1) || conns[0].(map[string]any)["mode"] != "preview" {
				t.Errorf("connections = %v", conns)
			}

			// Switch to live: the next retry of the same request is forwarded and applied.
			status, _ = c.review(t, http.MethodPut, "/connections/acme/mode", `{"mode":"live"}`)
			if status != http.StatusOK {
				t.Fatalf("mode switch: %d", status)
			}
			status, out, _ = c.scim(t, http.MethodPost, "/Users", oktaCreate)
			if status != http.StatusCreated {
				t.Fatalf("retry after go-live: %d %s", status, out)
			}
			stored := be.Get(t, "/Users/"+decode(t, out)["id"].(string))
			if stored["favoriteColor"] != "teal" {
				t.Errorf("backend stored %v", stored)
			}
			if n := be.Writes(); n != 1 {
				t.Errorf("backend received %d writes, want 1", n)
			}

			// Back to preview and clear.
			c.review(t, http.MethodPut, "/connections/acme/mode", `{"mode":"preview"}`)
			status, out, _ = c.scim(t, http.MethodDelete, "/Users/"+decode(t, out)["id"].(string), nil)
			if status != http.StatusTooManyRequests {
				t.Errorf("DELETE in preview: %d %s", status, out)
			}
			status, del := c.review(t, http.MethodDelete, "/connections/acme/records", nil)
			if status != http.StatusOK || del["deleted"] != float64(2) {
				t.Errorf("clear: %d %v", status, del)
			}
			if n := be.Writes(); n != 1 {
				t.Errorf("backend received %d writes, want 1", n)
			}
		})
	}
}

func TestPreviewAdminAPI(t *testing.T) {
	be := startBackend(t)
	c := startPreview(t, "store sqlite {{DB}}", be)
	_, _, h := c.scim(t, http.MethodPost, "/Users", oktaCreate)
	id := h.Get("X-Scim-Shadow-Record")
	status, out := do(t, http.MethodGet, c.AdminURL+"/scim_shadow/connections/acme/records/"+id, nil, map[string]string{})
	if status != http.StatusOK || !strings.Contains(string(out), `"ada@example.com"`) {
		t.Fatalf("admin API: %d %s", status, out)
	}
	status, out = do(t, http.MethodGet, c.AdminURL+"/scim_shadow/connections/other/records/"+id, nil, map[string]string{})
	if status != http.StatusNotFound {
		t.Errorf("another connection's record: %d %s, want 404", status, out)
	}
	status, out = do(t, http.MethodGet, c.AdminURL+"/scim_shadow/connections/other/records", nil, map[string]string{})
	if status != http.StatusOK || strings.Contains(string(out), "ada@example.com") {
		t.Errorf("another connection's list: %d %s", status, out)
	}
}

// TestPreviewTenantsFromPlaceholder serves two tenants from one block, each in its own mode,
// and never shows one tenant's records under the other's name.
func TestPreviewTenantsFromPlaceholder(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, `{
	admin {{ADMIN}}
	scim_shadow {
		store sqlite {{DB}}
	}
}
:{{PORT}} {
	route /scim/v2/* {
		scim_shadow {
			connection {http.request.header.X-Tenant}
			mode preview
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
}`, be)
	send := func(tenant, user string) (int, string) {
		status, _, h := doH(t, http.MethodPost, c.URL+"/scim/v2/Users", `{"userName":"`+user+`"}`, map[string]string{
			"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json", "X-Tenant": tenant,
		})
		return status, h.Get("X-Scim-Shadow-Record")
	}
	_, idA := send("tenant-a", "a@example.com")
	if status, _ := c.review(t, http.MethodPut, "/connections/tenant-b/mode", `{"mode":"live"}`); status != http.StatusOK {
		t.Fatalf("mode switch: %d", status)
	}
	if status, _ := send("tenant-b", "b@example.com"); status != http.StatusCreated {
		t.Fatalf("tenant-b live create: %d", status)
	}
	if status, _ := send("tenant-a", "a2@example.com"); status != http.StatusTooManyRequests {
		t.Fatalf("tenant-a must stay in preview: %d", status)
	}
	if status, rec := c.review(t, http.MethodGet, "/connections/tenant-b/records/"+idA, nil); status != http.StatusNotFound {
		t.Errorf("tenant-a's record under tenant-b: %d %v", status, rec)
	}
	_, list := c.review(t, http.MethodGet, "/connections/tenant-a/records", nil)
	if n := len(list["records"].([]any)); n != 2 {
		t.Errorf("tenant-a has %d records, want 2", n)
	}
	if n := be.Writes(); n < 1 {
		t.Errorf("backend writes = %d", n)
	}
	for _, r := range be.Requests(http.MethodPost) {
		if strings.Contains(string(r.Body), "a@example.com") || strings.Contains(string(r.Body), "a2@example.com") {
			t.Errorf("a preview tenant's write reached the backend: %s", r.Body)
		}
	}
}

// TestPreviewFailsClosedWhenStoreIsLocked holds an exclusive lock on the SQLite file, so
// the store cannot commit: the write is still rejected with the retryable status, not
// forwarded, and the failure logged; once the lock is gone, the retry is recorded.
func TestPreviewFailsClosedWhenStoreIsLocked(t *testing.T) {
	be := startBackend(t)
	c := startPreview(t, "store sqlite {{DB}}", be)
	unlock := lockSQLite(t, filepath.Join(c.dir, "shadow.db"))
	status, out, h := c.scim(t, http.MethodPost, "/Users", oktaCreate)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("store down: %d %s, want the retryable 429", status, out)
	}
	if h.Get("X-Scim-Shadow-Record") != "" || strings.Contains(string(out), "recorded as") {
		t.Errorf("answered recorded although the store could not commit: %s", out)
	}
	if be.Writes() != 0 {
		t.Fatal("a write reached the backend while the store was down")
	}
	if !c.waitLog(`"outcome":"error"`) {
		t.Errorf("store failure not logged")
	}
	unlock()
	status, _, h = c.scim(t, http.MethodPost, "/Users", oktaCreate)
	if status != http.StatusTooManyRequests || h.Get("X-Scim-Shadow-Record") == "" {
		t.Fatalf("retry after the store came back: %d, record %q", status, h.Get("X-Scim-Shadow-Record"))
	}
}

// TestPreviewClientAbort: a client that sends a whole body and hangs up is still recorded
// (its retry finds the record); one that hangs up mid-body is neither recorded nor forwarded.
func TestPreviewClientAbort(t *testing.T) {
	be := startBackend(t)
	c := startPreview(t, "store sqlite {{DB}}", be)
	addr := strings.TrimPrefix(c.URL, "http://")
	send := func(body string, declared int) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/scim+json\r\nContent-Length: %d\r\n\r\n%s", backendToken, declared, body)
		conn.Close()
	}
	whole := `{"userName":"abort@example.com"}`
	send(whole, len(whole))
	send(`{"userName":"half`, 100)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, list := c.review(t, http.MethodGet, "/connections/acme/records", nil)
		recs, _ := list["records"].([]any)
		if len(recs) == 1 {
			if k := recs[0].(map[string]any)["key"]; k != "abort@example.com" {
				t.Errorf("recorded %v", k)
			}
			break
		}
		if len(recs) > 1 || time.Now().After(deadline) {
			t.Fatalf("records after aborts: %v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if be.Writes() != 0 {
		t.Fatal("an aborted write reached the backend")
	}
}

// burst sends n distinct preview writes from workers goroutines and returns the record ids
// answered, by userName. Errors (Caddy going away) are tolerated.
func burst(c *caddyProc, prefix string, n, workers int) map[string]string {
	var mu sync.Mutex
	answered := map[string]string{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				user := fmt.Sprintf("%s-%d@example.com", prefix, i)
				req, _ := http.NewRequest(http.MethodPost, c.URL+"/scim/v2/Users", strings.NewReader(`{"userName":"`+user+`","favorite_color":"red"}`))
				req.Header.Set("Authorization", "Bearer "+backendToken)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if id := resp.Header.Get("X-Scim-Shadow-Record"); id != "" && resp.StatusCode == http.StatusTooManyRequests {
					mu.Lock()
					answered[user] = id
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return answered
}

// recordedKeys reads every record key of connection acme through the review API.
func recordedKeys(t *testing.T, c *caddyProc) map[string]string {
	t.Helper()
	keys := map[string]string{}
	cursor := ""
	for {
		_, list := c.review(t, http.MethodGet, "/connections/acme/records?limit=1000&cursor="+url.QueryEscape(cursor), nil)
		for _, r := range list["records"].([]any) {
			r := r.(map[string]any)
			keys[r["key"].(string)] = strconv.FormatFloat(r["id"].(float64), 'f', -1, 64)
		}
		cursor, _ = list["next_cursor"].(string)
		if cursor == "" {
			return keys
		}
	}
}

// TestPreviewCrashKeepsAnsweredRecords kills Caddy with SIGKILL during a burst of preview
// writes; after a restart on the same file every write answered with a record id is there.
func TestPreviewCrashKeepsAnsweredRecords(t *testing.T) {
	be := startBackend(t)
	dir := t.TempDir()
	cfg := strings.ReplaceAll(previewCaddyfile, "{{STORE}}", "store sqlite {{DB}}")
	c := startCaddyIn(t, dir, cfg, be)
	var answered map[string]string
	done := make(chan struct{})
	go func() { answered = burst(c, "crash", 3000, 16); close(done) }()
	time.Sleep(700 * time.Millisecond)
	c.Kill()
	<-done
	if len(answered) == 0 {
		t.Fatal("no write was answered before the kill; the test proves nothing")
	}
	c2 := startCaddyIn(t, dir, cfg, be)
	keys := recordedKeys(t, c2)
	for user, id := range answered {
		if keys[user] != id {
			t.Errorf("write for %s answered as record %s, store has %q", user, id, keys[user])
		}
	}
	t.Logf("answered before SIGKILL: %d; records after restart: %d", len(answered), len(keys))
	if be.Writes() != 0 {
		t.Errorf("backend received %d writes", be.Writes())
	}
}

// TestPreviewReloadUnderLoad reloads the config while preview writes flow: none is
// forwarded, and every answered record is in the store.
func TestPreviewReloadUnderLoad(t *testing.T) {
	be := startBackend(t)
	c := startPreview(t, "store sqlite {{DB}}", be)
	done := make(chan map[string]string)
	go func() { done <- burst(c, "reload", 1500, 8) }()
	cfg, err := os.ReadFile(filepath.Join(c.dir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		time.Sleep(150 * time.Millisecond)
		// A changed config forces a real reload (same store, new handlers).
		changed := strings.Replace(string(cfg), "warn_if_missing", "warn_if_missing\n\t\t\t\t\tfrom fav_color_"+strconv.Itoa(i), 1)
		status, out := do(t, http.MethodPost, c.AdminURL+"/load", changed, map[string]string{"Content-Type": "text/caddyfile"})
		if status != http.StatusOK {
			t.Fatalf("reload: %d %s", status, out)
		}
	}
	answered := <-done
	// A request cut off by the reload (an idle keep-alive connection closed under it) got no
	// answer; the IdP sends it again. Retry those once, as it would.
	if missing := 1500 - len(answered); missing > 0 {
		t.Logf("%d requests got no answer during reloads; retrying them", missing)
		for user, id := range burst(c, "reload", 1500, 8) {
			if answered[user] == "" {
				answered[user] = id
			} else if answered[user] != id {
				t.Errorf("retry of %s recorded as %s, first answer was %s", user, id, answered[user])
			}
		}
	}
	keys := recordedKeys(t, c)
	for user, id := range answered {
		if keys[user] != id {
			t.Errorf("%s answered as %s, store has %q", user, id, keys[user])
		}
	}
	if len(answered) != 1500 {
		t.Errorf("answered %d of 1500 writes with a record", len(answered))
	}
	if be.Writes() != 0 {
		t.Errorf("backend received %d writes during reloads", be.Writes())
	}
}

// TestReloadDoesNotWaitForWarningBookkeeping: a config reload returns while the old
// config's warning bookkeeping cannot reach the store (its SQLite write lock is held
// here), and that bookkeeping is not dropped: once the store is free again the warnings
// of the writes before the reload are there. Before, the reload waited up to 5 s for the
// queue, then dropped what was left.
func TestReloadDoesNotWaitForWarningBookkeeping(t *testing.T) {
	be := startBackend(t)
	live := strings.Replace(previewCaddyfile, "mode preview", "mode live", 1)
	c := startCaddy(t, strings.ReplaceAll(live, "{{STORE}}", "store sqlite {{DB}}"), be)
	unlock := lockSQLite(t, filepath.Join(c.dir, "shadow.db"))
	const users = 5
	for i := range users {
		// Live: forwarded at once; the missing favoriteColor queues a warning.
		status, out, _ := c.scim(t, http.MethodPost, "/Users", userJSON(fmt.Sprintf("reload-%d", i), ""))
		if status != http.StatusCreated {
			t.Fatalf("live POST %d: %d %s", i, status, out)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(c.dir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(cfg), "redact_header X-Api-Key", "redact_header X-Api-Key X-Other", 1)
	status, out := do(t, http.MethodPost, c.AdminURL+"/load", changed, map[string]string{"Content-Type": "text/caddyfile"})
	if status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, out)
	}
	// The reload has returned and the lock is still held here: the old config's warning
	// queue cannot have been written yet. Free the store; it must arrive.
	var found int
	unlock()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, out, _ := afterReload(t, http.MethodGet, c.URL+"/review/connections/acme/warnings/users", nil, map[string]string{})
		var page struct {
			Users []any `json:"users"`
		}
		_ = json.Unmarshal(out, &page)
		list := page.Users
		if found = len(list); found == users {
			break
		}
	}
	if found != users {
		t.Errorf("%d of %d warnings of the writes before the reload are in the store", found, users)
	}
	if l := c.log.String(); strings.Contains(l, "dropping the warning bookkeeping") || strings.Contains(l, "warning bookkeeping dropped") {
		t.Error("the old config dropped warning bookkeeping")
	}
}

// lockSQLite holds an exclusive lock on the SQLite file at path until the returned func
// (or the test's end) releases it.
func lockSQLite(t *testing.T, path string) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("locking %s: %v", path, err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Errorf("unlocking %s: %v", path, err)
			}
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}
