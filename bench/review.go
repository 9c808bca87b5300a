package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// The seeded store of scenario 4: n records of connection "bench", of which 10% group
// PATCHes (each adding 3 and removing 2 members) over 1,000 groups (~100 records each),
// the rest user creates, PATCHes and PUTs over n/5 users (4–5 records each); 1% have an
// error finding, 2% deprovision. Every record has a target subject. One user in twenty
// has an open warning. Rows carry ~1.3 KB of JSON (original, effective, live, projected,
// changes).

// seedSQL is the INSERT … SELECT of the records; {SEQ} yields n, {TS} is n as a
// timestamp, {J} casts text to the JSON column type, {B} opens a boolean and {BE} closes it.
const seedSQL = `INSERT INTO records (connection, created_at, last_seen_at, attempts, method, path,
	resource_type, resource_id, resource_key, operation, status, dedupe_hash,
	original, effective, changes, findings, live, projected, errors, deprovision)
SELECT 'bench', {TS}, {TS}, 1, m, p, rt, rid, rkey, op, 'pending', 'h' || n,
	('{"method":"' || m || '","url":"' || p || '","header":{"Authorization":["[REDACTED]"],"Content-Type":["application/scim+json"]},"body":' || body || '}'){J},
	('{"method":"' || m || '","url":"' || p || '","header":{"Authorization":["[REDACTED]"],"Content-Type":["application/scim+json"]},"body":' || body || '}'){J},
	'[{"op":"replace","path":"title","old":"Engineer","new":"Senior Engineer"},{"op":"add","path":"favoriteColor","new":"teal"}]'{J},
	(CASE WHEN n % 100 = 7 THEN '[{"severity":"error","code":"not_found","message":"the backend has no User with id: it would answer 404"}]'
		WHEN n % 4 = 0 THEN '[{"severity":"info","code":"fallback_used","attribute":"favoriteColor","source":"favorite_color","message":"favoriteColor taken from favorite_color"}]'
		ELSE NULL END){J},
	(CASE WHEN op = 'create' THEN NULL ELSE res END){J},
	res{J},
	CASE WHEN n % 100 = 7 THEN 1 ELSE 0 END,
	{B}n % 50 = 3{BE}
FROM (SELECT n, rt, rid, rkey, op,
		CASE op WHEN 'create' THEN 'POST' WHEN 'patch' THEN 'PATCH' ELSE 'PUT' END AS m,
		CASE WHEN rt = 'Group' THEN '/scim/v2/Groups/' || rid WHEN op = 'create' THEN '/scim/v2/Users' ELSE '/scim/v2/Users/' || rid END AS p,
		CASE WHEN rt = 'Group' THEN '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u2"},{"value":"u3"}]},{"op":"remove","path":"members[value eq \"u4\"]"}]}'
			ELSE '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' || rkey || '","name":{"givenName":"Isabel","familyName":"Moreno"},"emails":[{"primary":true,"value":"' || rkey || '","type":"work"}],"displayName":"Isabel Moreno","active":true,"title":"Senior Engineer","favoriteColor":"teal"}' END AS body,
		CASE WHEN rt = 'Group' THEN '{"id":"' || rid || '","displayName":"' || rkey || '","members":[{"value":"u1"},{"value":"u2"},{"value":"u3"}]}'
			ELSE '{"id":"u' || n || '","userName":"' || rkey || '","name":{"givenName":"Isabel","familyName":"Moreno"},"emails":[{"primary":true,"value":"' || rkey || '","type":"work"}],"active":true,"title":"Senior Engineer","favoriteColor":"teal","locale":"es-ES","meta":{"resourceType":"User"}}' END AS res
	FROM (SELECT n,
			CASE WHEN n % 10 = 0 THEN 'Group' ELSE 'User' END AS rt,
			CASE WHEN n % 10 = 0 THEN 'g' || ((n / 10) % {G}) WHEN n % 3 = 0 THEN '' ELSE 'u' || ((n - n / 10 - 1) % {U}) END AS rid,
			CASE WHEN n % 10 = 0 THEN 'group-' || ((n / 10) % {G}) ELSE 'user' || ((n - n / 10 - 1) % {U}) || '@example.org' END AS rkey,
			CASE WHEN n % 10 = 0 THEN 'patch' WHEN n % 3 = 0 THEN 'create' WHEN n % 3 = 1 THEN 'patch' ELSE 'replace' END AS op
		FROM {SEQ}) s1) s2`

// seedSubjectsSQL adds the target subject of every record, then {K} members per group record.
const seedTargetsSQL = `INSERT INTO record_subjects (record_id, pos, connection, kind, subject_id, subject_key, change)
SELECT id, 0, connection, lower(resource_type), resource_id, resource_key, '' FROM records`

const seedMembersSQL = `INSERT INTO record_subjects (record_id, pos, connection, kind, subject_id, subject_key, change)
SELECT id, {K}, connection, 'user', 'u' || ((id * 7 + {K}) % {U}), 'user' || ((id * 7 + {K}) % {U}) || '@example.org',
	CASE WHEN {K} > 3 THEN 'removed' ELSE 'added' END
FROM records WHERE resource_type = 'Group'`

const seedWarningsSQL = `INSERT INTO warnings (connection, resource_type, key_fold, resource_key, resource_id, attribute,
	count, first_seen_at, last_seen_at, resolved_at, example_record_id)
SELECT 'bench', 'User', 'user' || n || '@example.org', 'user' || n || '@example.org', 'u' || n,
	'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department', 3, {TS}, {TS}, NULL, NULL
FROM {SEQ} WHERE n % 20 = 0`

const seedFallbacksSQL = `INSERT INTO warning_fallbacks (connection, resource_type, attribute, source, count, first_seen_at, last_seen_at)
VALUES ('bench', 'User', 'favoriteColor', 'favorite_color', 250000, {TS0}, {TS0}),
	('bench', 'User', 'nickName', 'preferences.nickname', 1000, {TS0}, {TS0})`

// seedShape is the size of a seeded store.
type seedShape struct{ records, users, groups int }

func shapeOf(n int) seedShape {
	return seedShape{records: n, users: max(n/5, 1), groups: max(min(1000, n/10), 1)}
}

// dialect fills the placeholders of the seed statements.
func (s seedShape) sql(q string, postgres bool, seqN int, k int) string {
	r := strings.NewReplacer("{U}", fmt.Sprint(s.users), "{G}", fmt.Sprint(s.groups), "{K}", fmt.Sprint(k))
	if postgres {
		r2 := strings.NewReplacer("{SEQ}", fmt.Sprintf("generate_series(1, %d) AS g(n)", seqN), "{TS}", "to_timestamp(1700000000 + n)",
			"{TS0}", "to_timestamp(1700000000)", "{J}", "::json", "{B}", "(", "{BE}", ")")
		return r2.Replace(r.Replace(q))
	}
	r2 := strings.NewReplacer("{SEQ}", fmt.Sprintf("(WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < %d) SELECT n FROM seq)", seqN),
		"{TS}", "strftime('%Y-%m-%dT%H:%M:%S.000000Z', 1700000000 + n, 'unixepoch')",
		"{TS0}", "'2023-11-14T22:13:20.000000Z'", "{J}", "", "{B}", "CASE WHEN ", "{BE}", " THEN 1 ELSE 0 END")
	return r2.Replace(r.Replace(q))
}

// seedStatements are the statements that fill a store, in order.
func (s seedShape) seedStatements(postgres bool) []string {
	out := []string{s.sql(seedSQL, postgres, s.records, 0), s.sql(seedTargetsSQL, postgres, 0, 0)}
	for k := 1; k <= 5; k++ {
		out = append(out, s.sql(seedMembersSQL, postgres, 0, k))
	}
	return append(out, s.sql(seedWarningsSQL, postgres, s.users, 0), s.sql(seedFallbacksSQL, postgres, 0, 0))
}

// seedTables are the tables whose secondary indexes are dropped during the load and
// built again after it (faster than maintaining them row by row).
var seedTables = []string{"records", "record_subjects", "warnings"}

// seedSQLite creates (migrates through the Store API) and fills a SQLite store at path.
func seedSQLite(ctx context.Context, path string, s seedShape) error {
	st, err := shadow.OpenSQLite(ctx, path)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=synchronous(OFF)&_pragma=foreign_keys(0)")
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var indexes []string
	rows, err := db.QueryContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('records', 'record_subjects', 'warnings')`)
	if err != nil {
		return fmt.Errorf("seeding: listing indexes: %w", err)
	}
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			rows.Close()
			return fmt.Errorf("seeding: %w", err)
		}
		indexes = append(indexes, q)
	}
	rows.Close()
	var stmts []string
	for _, q := range indexes {
		name := strings.Fields(strings.TrimPrefix(strings.TrimPrefix(q, "CREATE UNIQUE INDEX "), "CREATE INDEX "))[0]
		stmts = append(stmts, "DROP INDEX "+name)
	}
	stmts = append(stmts, s.seedStatements(false)...)
	stmts = append(stmts, indexes...)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seeding: %.80s…: %w", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("seeding: checkpoint: %w", err)
	}
	return nil
}

// seedPostgres migrates (through the Store API) and fills the PostgreSQL schema of pg,
// then runs VACUUM ANALYZE, as autovacuum would have by then.
func seedPostgres(ctx context.Context, pg *pgSchema, s seedShape) error {
	st, err := shadow.OpenPostgres(ctx, pg.DSN)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1
		AND tablename = ANY($2) AND indexname NOT LIKE '%\_pkey'`, pg.Name, seedTables)
	if err != nil {
		return fmt.Errorf("seeding: listing indexes: %w", err)
	}
	var names, defs []string
	for rows.Next() {
		var n, d string
		if err := rows.Scan(&n, &d); err != nil {
			rows.Close()
			return fmt.Errorf("seeding: %w", err)
		}
		names, defs = append(names, n), append(defs, d)
	}
	rows.Close()
	var stmts []string
	for _, n := range names {
		stmts = append(stmts, "DROP INDEX "+pgx.Identifier{pg.Name, n}.Sanitize())
	}
	stmts = append(stmts, s.seedStatements(true)...)
	stmts = append(stmts, defs...)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%.80s…: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE records, record_subjects, warnings"); err != nil {
		return fmt.Errorf("seeding: analyze: %w", err)
	}
	return nil
}

// reviewQuery is one endpoint of scenario 4; path makes its i-th request.
type reviewQuery struct {
	name string
	kind string // "list" or "view": which target applies
	path func(rng *rand.Rand) string
}

func reviewQueries(s seedShape) []reviewQuery {
	user := func(rng *rand.Rand) string { return fmt.Sprintf("user%d@example.org", rng.IntN(s.users)) }
	group := func(rng *rand.Rand) string { return fmt.Sprintf("group-%d", rng.IntN(s.groups)) }
	c := "/review/connections/bench"
	return []reviewQuery{
		{"connections (counts)", "list", func(*rand.Rand) string { return "/review/connections" }},
		{"records (no filter)", "list", func(*rand.Rand) string { return c + "/records" }},
		{"records ?user=", "list", func(rng *rand.Rand) string { return c + "/records?user=" + user(rng) }},
		{"records ?group=", "list", func(rng *rand.Rand) string { return c + "/records?group=" + group(rng) }},
		{"records ?errors=1", "list", func(*rand.Rand) string { return c + "/records?errors=1" }},
		{"records ?deprovisions=1", "list", func(*rand.Rand) string { return c + "/records?deprovisions=1" }},
		{"records ?user=&errors=1", "list", func(rng *rand.Rand) string { return c + "/records?errors=1&user=" + user(rng) }},
		{"warnings (summary)", "list", func(*rand.Rand) string { return c + "/warnings" }},
		{"warnings/users", "list", func(*rand.Rand) string { return c + "/warnings/users" }},
		{"warnings/users/{key}", "list", func(rng *rand.Rand) string {
			return c + "/warnings/users/" + fmt.Sprintf("user%d@example.org", 20*rng.IntN(max(s.users/20, 1)))
		}},
		{"record view /records/{id}", "view", func(rng *rand.Rand) string { return fmt.Sprintf("%s/records/%d", c, 1+rng.IntN(s.records)) }},
		{"resources ?user= (per-resource view)", "view", func(rng *rand.Rand) string { return c + "/resources?user=" + user(rng) }},
		{"resources ?group= (per-resource view)", "view", func(rng *rand.Rand) string { return c + "/resources?group=" + group(rng) }},
		{"resources (no filter, first page)", "view", func(*rand.Rand) string { return c + "/resources" }},
		{"resources ?errors=1 (per-resource view)", "view", func(*rand.Rand) string { return c + "/resources?errors=1" }},
		{"resources ?type=Group (per-resource view)", "view", func(*rand.Rand) string { return c + "/resources?type=Group" }},
		{"resources ?type=User (per-resource view)", "view", func(*rand.Rand) string { return c + "/resources?type=User" }},
	}
}

// reviewBudget bounds the sampling of one endpoint, so that a slow one cannot blow the
// run's time: sampling stops after it (with at least one sample) and says so.
const reviewBudget = 10 * time.Second

// reviewTimeout bounds one review request.
const reviewTimeout = 15 * time.Second

// RunReview is scenario 4: the review API's latency over a store of ReviewRecords records.
func (r *Runner) RunReview(ctx context.Context) error {
	c := r.Cfg
	shape := shapeOf(c.ReviewRecords)
	return r.eachStore(ctx, "review", c.ReviewStores, func(name, kind string, st *storeHandle) error {
		began := time.Now()
		var err error
		if st.PG != nil {
			err = seedPostgres(ctx, st.PG, shape)
		} else {
			err = seedSQLite(ctx, st.Path, shape)
		}
		if err != nil {
			return err
		}
		res := ReviewResult{Store: kind, Records: shape.records, SeedTime: time.Since(began)}
		if res.StoreBytes, err = st.Size(); err != nil {
			return err
		}
		r.logf("review %s: seeded %d records in %s (%d MiB)", kind, shape.records, res.SeedTime.Round(time.Millisecond), res.StoreBytes>>20)
		p, err := StartCaddy(ctx, c.CaddyBin, c.WorkDir, name, r.caddyfile(storeApp(st.Directive), siteShadow, "preview"))
		if err != nil {
			return err
		}
		defer p.Stop()
		if n, err := pending(ctx, p); err != nil {
			return err
		} else if n != int64(shape.records) {
			r.note("review %s: %d pending records, want %d", kind, n, shape.records)
		}
		client := newClient(1)
		client.Timeout = reviewTimeout
		rng := rand.New(rand.NewPCG(1, 2))
		for _, q := range reviewQueries(shape) {
			var lat []time.Duration
			censored := false // a sample is the timeout, not a measurement
			warm := 2         // warm-up requests, not counted
			if c.ReviewSamples < 10 {
				warm = 0
			}
			began := time.Now()
			for i := 0; i < c.ReviewSamples+warm; i++ {
				if len(lat) > 0 && time.Since(began) > reviewBudget {
					r.limit("review %s %s: stopped after %d of %d samples (%s budget per endpoint)", kind, q.name, len(lat), c.ReviewSamples, reviewBudget)
					break
				}
				u := p.URL + q.path(rng)
				t0 := time.Now()
				resp, err := client.Get(u)
				if err != nil {
					// A request slower than the client's timeout counts as one sample of the
					// timeout (a lower bound) and ends this endpoint.
					r.limit("review %s %s: GET %s: %v (counted as %s, a lower bound)", kind, q.name, u, err, reviewTimeout)
					lat = append(lat, reviewTimeout)
					censored = true
					break
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(t0)
				if resp.StatusCode != http.StatusOK || n == 0 {
					r.note("review %s: GET %s: status %d", kind, u, resp.StatusCode)
				}
				if i >= warm {
					lat = append(lat, took)
				}
			}
			st := statsOf(Result{Requests: int64(len(lat)), Lat: sortDur(lat), Elapsed: sumDur(lat)})
			res.Queries = append(res.Queries, ReviewQueryResult{Name: q.name, Kind: q.kind, Stats: st, Censored: censored})
			r.logf("review %s %-40s p50 %8s p95 %8s", kind, q.name, st.P50.Round(10*time.Microsecond), st.P95.Round(10*time.Microsecond))
		}
		client.CloseIdleConnections()
		r.Report.Review = append(r.Report.Review, res)
		return nil
	})
}
