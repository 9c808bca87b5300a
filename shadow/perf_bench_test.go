package shadow_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/bench"
	"github.com/scim-shadow/caddy-scim-shadow/rules"
	. "github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// benchLive is a user as a backend returns it (~1 KB), the live state of the benchmarks.
const benchLive = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],` +
	`"id":"u7","userName":"user7@example.org","name":{"givenName":"Isabel","familyName":"Moreno","formatted":"Isabel Moreno"},` +
	`"emails":[{"primary":true,"value":"user7@example.org","type":"work"},{"value":"u7@home.example","type":"home"}],` +
	`"displayName":"Isabel Moreno","externalId":"00u7","active":true,"title":"Platform Engineer","nickName":"Isa",` +
	`"favoriteColor":"blue","locale":"es-ES","phoneNumbers":[{"value":"+34 600 000 000","type":"mobile","primary":true}],` +
	`"addresses":[{"type":"work","streetAddress":"Calle de Alcala 1","locality":"Madrid","postalCode":"28014","country":"ES","primary":true}],` +
	`"entitlements":[{"value":"vpn-access"},{"value":"prod-read"}],"roles":[{"value":"engineer","primary":true}],` +
	`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Platform","employeeNumber":"E-1","costCenter":"CC-5100"},` +
	`"meta":{"resourceType":"User","created":"2024-01-01T00:00:00Z","lastModified":"2024-01-01T00:00:00Z","location":"/scim/v2/Users/u7"}}`

// benchPatchOp is an effective user PATCH (after the rules): paths and a path-less value.
const benchPatchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` +
	`{"op":"replace","path":"favoriteColor","value":"teal"},` +
	`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Dept 7","title":"Engineer 7"}},` +
	`{"op":"add","path":"emails[type eq \"work\"].value","value":"isabel@example.org"},` +
	`{"op":"replace","path":"active","value":false}]}`

func BenchmarkApplyPatch(b *testing.B) {
	live, op := []byte(benchLive), []byte(benchPatchOp)
	if _, err := ApplyPatch(live, op); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ApplyPatch(live, op); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiff(b *testing.B) {
	live := []byte(benchLive)
	projected, err := ApplyPatch(live, []byte(benchPatchOp))
	if err != nil {
		b.Fatal(err)
	}
	if len(Diff(live, projected)) == 0 {
		b.Fatal("no changes")
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = Diff(live, projected)
	}
}

// BenchmarkDiffCreate is the diff of a create of the load harness's 2 KB user: every
// attribute added.
func BenchmarkDiffCreate(b *testing.B) {
	projected, err := ApplyCreate([]byte(bench.UserBody(1)))
	if err != nil {
		b.Fatal(err)
	}
	if len(Diff(nil, projected)) == 0 {
		b.Fatal("no changes")
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Diff(nil, projected)
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkEngineLive is the whole per-request work of a live Engine (classification, rule
// rewriting of the body or query, the request handed on) with the five rules and the
// payloads of the load harness (bench/), for each request kind of its mix; next only
// drains the body.
func BenchmarkEngineLive(b *testing.B) {
	set, err := rules.Compile(bench.Rules())
	if err != nil {
		b.Fatal(err)
	}
	e := &Engine{Rules: set, DefaultMode: ModeLive}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})
	user, patch := []byte(bench.UserBody(7)), []byte(bench.PatchBody(7))
	for _, bc := range []struct {
		name, method, target string
		body                 []byte
	}{
		{"get-filter", http.MethodGet, "/scim/v2/Users?filter=" + url.QueryEscape(`favorite_color eq "c7" and active eq true`) + "&attributes=userName,favorite_color", nil},
		{"patch", http.MethodPatch, "/scim/v2/Users/u7", patch},
		{"post-2KB", http.MethodPost, "/scim/v2/Users", user},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			w := &discardWriter{h: http.Header{}}
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest(bc.method, bc.target, bytes.NewReader(bc.body))
				if bc.body != nil {
					r.Header.Set("Content-Type", "application/scim+json")
				}
				e.ServeHTTP(w, r, next)
			}
		})
	}
}

// BenchmarkEngineLiveMix is the live path as scenario 1 of the load harness drives it:
// the five rules, `normalize all`, responses of the harness's fast backend (bench.Backend)
// reverse-mapped, and the warning recorder on a SQLite store. Each sub-benchmark is one
// request kind of the mix; "mix" cycles through them in the harness's proportions (40%
// GET by userName, 20% by externalId, 10% on a renamed attribute, 20% PATCH, 5% POST, 5%
// PUT). Requests are built by hand (no parsing), so allocs/op is the engine's and the
// backend's; "mix-backend-only" is the backend alone, to subtract.
func BenchmarkEngineLiveMix(b *testing.B) {
	set, err := rules.Compile(bench.Rules())
	if err != nil {
		b.Fatal(err)
	}
	all, _ := rules.ParseNormalization([]string{"all"})
	st := openStore(b)
	rec := NewWarningRecorder(0)
	rec.Start(st)
	defer rec.Close(5 * time.Second)
	e := &Engine{Rules: set, DefaultMode: ModeLive, Store: st, Warnings: rec, Normalize: all,
		Connection: func(*http.Request) string { return "bench" }}
	next := &bench.Backend{}
	type kind struct {
		name, method, target string
		body                 []byte
	}
	get := func(filter, extra string) string {
		return "/scim/v2/Users?filter=" + url.QueryEscape(filter) + extra
	}
	kinds := []kind{
		{"get-user", http.MethodGet, get(`userName eq "existing7@example.org"`, ""), nil},
		{"get-empty", http.MethodGet, get(`externalId eq "00u7"`, ""), nil},
		{"get-renamed", http.MethodGet, get(`favorite_color eq "c7" and active eq true`, "&attributes=userName,favorite_color"), nil},
		{"patch", http.MethodPatch, "/scim/v2/Users/u7", []byte(bench.PatchBody(7))},
		{"post", http.MethodPost, "/scim/v2/Users", []byte(bench.UserBody(7))},
		{"put", http.MethodPut, "/scim/v2/Users/u7", []byte(bench.UserBody(7))},
	}
	mix := []int{0, 0, 0, 0, 1, 1, 2, 3, 3, 4, 0, 0, 0, 0, 1, 1, 2, 3, 3, 5}
	w := &discardWriter{h: http.Header{}}
	bare := false // the backend alone: the baseline the engine's cost is measured against
	serve := func(k kind) {
		u, _ := url.ParseRequestURI(k.target)
		r := (&http.Request{Method: k.method, URL: u, RequestURI: k.target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"User-Agent": {"Okta SCIM Client 1.0.0"}, "Authorization": {"Bearer token"}, "Accept-Encoding": {"gzip"}},
			Host:   "127.0.0.1", ContentLength: int64(len(k.body)), Body: http.NoBody}).WithContext(context.Background())
		if k.body != nil {
			r.Body = io.NopCloser(bytes.NewReader(k.body))
			r.Header["Content-Type"] = []string{ContentType}
		}
		clear(w.h)
		if bare {
			next.ServeHTTP(w, r)
			return
		}
		e.ServeHTTP(w, r, next)
	}
	for _, k := range kinds { // learn the sources, load the schema cache
		serve(k)
	}
	run := func(b *testing.B, pick func(i int) kind) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			serve(pick(i))
			if i%512 == 511 {
				_ = rec.Flush(context.Background()) // keep the queue from dropping
			}
		}
		_ = rec.Flush(context.Background())
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) { run(b, func(int) kind { return k }) })
	}
	b.Run("mix", func(b *testing.B) { run(b, func(i int) kind { return kinds[mix[i%len(mix)]] }) })
	bare = true
	b.Run("mix-backend-only", func(b *testing.B) { run(b, func(i int) kind { return kinds[mix[i%len(mix)]] }) })
	if d := rec.Dropped(); d > 0 {
		b.Fatalf("warning bookkeeping dropped %d writes", d)
	}
}
