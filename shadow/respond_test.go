package shadow_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// echoBackend stands in for a strict backend behind reverse_proxy: it keeps the last write
// body, answers a write with that body as the resource, a GET with a fixed resource or list,
// /Schemas with the core user schema, and counts what it got.
type echoBackend struct {
	mu          sync.Mutex
	writes      [][]byte
	schemaReads int
	acceptEnc   []string
	resource    string // GET /Users/1
	contentType string // "" : application/scim+json
}

func (b *echoBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acceptEnc = append(b.acceptEnc, r.Header.Get("Accept-Encoding"))
	ct := b.contentType
	if ct == "" {
		ct = shadow.ContentType
	}
	w.Header().Set("Content-Type", ct)
	switch {
	case strings.HasSuffix(r.URL.Path, "/Schemas"):
		b.schemaReads++
		_, _ = io.WriteString(w, `{"Resources":[{"id":"urn:ietf:params:scim:schemas:core:2.0:User","attributes":[`+
			`{"name":"active","type":"boolean"},{"name":"vip","type":"boolean"},{"name":"emails","type":"complex","subAttributes":[{"name":"primary","type":"boolean"}]}]}]}`)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/Users") || strings.HasSuffix(r.URL.Path, "/.search"):
		_, _ = io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"Resources":[`+b.resource+`]}`)
	case r.Method == http.MethodGet:
		w.Header().Set("Content-Length", strconv.Itoa(len(b.resource)))
		_, _ = io.WriteString(w, b.resource)
	default:
		b.writes = append(b.writes, body)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	}
}

func (b *echoBackend) lastWrite() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.writes) == 0 {
		return ""
	}
	return string(b.writes[len(b.writes)-1])
}

func idpEngine(t testing.TB, mode shadow.Mode, store shadow.Store) *shadow.Engine {
	t.Helper()
	set, err := rules.Compile(map[string]rules.ResourceRules{"User": {Rules: []rules.Rule{
		{Target: entURN + ":department", From: []string{"department"}},
		{Target: "favoriteColor", From: []string{"favorite_color", "preferences.favoriteColor"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := rules.ParseNormalization([]string{"all"})
	return &shadow.Engine{Rules: set, DefaultMode: mode, Store: store, Normalize: n,
		Connection: func(*http.Request) string { return testConn }}
}

func serve(e *shadow.Engine, next http.Handler, method, path, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Header.Set("Content-Type", shadow.ContentType)
	r.Header.Set("Accept-Encoding", "gzip")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r, next)
	return w
}

func TestNormalizeLiveEntraPatch(t *testing.T) {
	be := &echoBackend{}
	e := idpEngine(t, shadow.ModeLive, nil)
	obs := &decisionLog{}
	e.Observer = obs
	body := `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"Replace","path":"active","value":"False"},` +
		`{"op":"Replace","path":"vip","value":"TRUE"},{"op":"Remove","path":"members","value":[{"value":"a"},{"value":"b"}]},` +
		`{"op":"Add","path":"` + entURN + `:manager","value":"m-1"},{"op":"replace","value":{"name.givenName":"C"}}]}`
	w := serve(e, be, http.MethodPatch, "/scim/v2/Users/1", body)
	if w.Code != http.StatusCreated {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var got struct{ Operations []map[string]any }
	if err := json.Unmarshal([]byte(be.lastWrite()), &got); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"op":"replace","path":"active","value":false}`,
		`{"op":"replace","path":"vip","value":true}`, // boolean by the backend's /Schemas
		`{"op":"remove","path":"members[value eq \"a\"]"}`,
		`{"op":"remove","path":"members[value eq \"b\"]"}`,
		`{"op":"add","path":"` + entURN + `:manager","value":{"value":"m-1"}}`,
		`{"op":"replace","value":{"name":{"givenName":"C"}}}`,
	}
	if len(got.Operations) != len(want) {
		t.Fatalf("backend got %s", be.lastWrite())
	}
	for i, op := range got.Operations {
		b, _ := json.Marshal(op)
		var w any
		_ = json.Unmarshal([]byte(want[i]), &w)
		wb, _ := json.Marshal(w)
		if string(b) != string(wb) {
			t.Errorf("operation %d: %s, want %s", i, b, wb)
		}
	}
	kinds := map[string]int{}
	for _, f := range obs.list[0].Findings {
		if f.Code == rules.CodeNormalized {
			kinds[f.Kind]++
		}
	}
	if kinds[rules.KindOpCase] != 4 || kinds[rules.KindBooleans] != 2 || kinds[rules.KindMemberRemoval] != 1 ||
		kinds[rules.KindManager] != 1 || kinds[rules.KindDottedKeys] != 1 {
		t.Errorf("normalized findings by kind: %v", kinds)
	}
	// /Schemas is read once per connection, not per request.
	serve(e, be, http.MethodPatch, "/scim/v2/Users/1", body)
	if be.schemaReads != 1 {
		t.Errorf("/Schemas read %d times", be.schemaReads)
	}
}

func TestNormalizePreviewRecordsEffective(t *testing.T) {
	be := &echoBackend{resource: `{"id":"1","userName":"u","active":true}`}
	store := openStore(t)
	e := idpEngine(t, shadow.ModePreview, store)
	w := serve(e, be, http.MethodPatch, "/scim/v2/Users/1", `{"schemas":["`+patchSchema+`"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	if w.Code != http.StatusTooManyRequests || be.lastWrite() != "" {
		t.Fatalf("%d, backend writes %q", w.Code, be.lastWrite())
	}
	id, _ := strconv.ParseInt(w.Header().Get("X-Scim-Shadow-Record"), 10, 64)
	rec, err := store.Record(context.Background(), testConn, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec.Effective.Body), `"value":false`) || !strings.Contains(string(rec.Original.Body), `"False"`) {
		t.Errorf("original %s effective %s", rec.Original.Body, rec.Effective.Body)
	}
	var fs []rules.Finding
	_ = json.Unmarshal(rec.Findings, &fs)
	normalized, invalid := 0, 0
	for _, f := range fs {
		switch f.Code {
		case rules.CodeNormalized:
			normalized++
		case shadow.CodeInvalidValue:
			invalid++
		}
	}
	if normalized != 2 || invalid != 0 {
		t.Errorf("findings %s", rec.Findings)
	}
	if !strings.Contains(string(rec.Changes), `"path":"active"`) {
		t.Errorf("changes %s", rec.Changes)
	}
}

func TestReverseMapResponses(t *testing.T) {
	be := &echoBackend{resource: `{"id":"1","userName":"u","favoriteColor":"red","` + entURN + `":{"department":"R&D"},"meta":{"resourceType":"User"}}`}
	e := idpEngine(t, shadow.ModeLive, nil)
	obs := &decisionLog{}
	e.Observer = obs

	// Before the connection sent anything at a From path: the backend's shape.
	w := serve(e, be, http.MethodGet, "/scim/v2/Users/1", "")
	if w.Body.String() != be.resource {
		t.Fatalf("reversed without a known source: %s", w.Body)
	}
	if be.acceptEnc[0] != "gzip" {
		t.Errorf("Accept-Encoding dropped while nothing is reversed")
	}

	// The IdP creates with favorite_color and a top-level department.
	w = serve(e, be, http.MethodPost, "/scim/v2/Users", `{"userName":"u","favorite_color":"red","department":"R&D"}`)
	if !strings.Contains(be.lastWrite(), `"favoriteColor":"red"`) {
		t.Fatalf("backend got %s", be.lastWrite())
	}
	assertIdPShape(t, w)

	for _, path := range []string{"/scim/v2/Users/1", "/scim/v2/Users?filter=userName%20eq%20%22u%22"} {
		w = serve(e, be, http.MethodGet, path, "")
		assertIdPShape(t, w)
	}
	writes := len(be.writes)
	w = serve(e, be, http.MethodPost, "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"u\""}`)
	assertIdPShape(t, w)
	if len(be.writes) != writes {
		t.Fatal("the search was taken for a write")
	}
	if last := obs.list[len(obs.list)-1]; last.ReverseMapped != 2 {
		t.Errorf("ReverseMapped = %d", last.ReverseMapped)
	}
	if be.acceptEnc[len(be.acceptEnc)-1] != "identity" {
		t.Errorf("Accept-Encoding %q reached the backend of a reversed read, want identity", be.acceptEnc[len(be.acceptEnc)-1])
	}

	// Not SCIM JSON: streamed untouched.
	be.contentType = "text/plain"
	w = serve(e, be, http.MethodGet, "/scim/v2/Users/1", "")
	if w.Body.String() != be.resource {
		t.Errorf("text response changed: %s", w.Body)
	}
	be.contentType = ""

	// reverse_map off: the backend's shape.
	e2 := idpEngine(t, shadow.ModeLive, nil)
	e2.NoReverseMap = true
	serve(e2, be, http.MethodPost, "/scim/v2/Users", `{"userName":"u","favorite_color":"red"}`)
	if w = serve(e2, be, http.MethodGet, "/scim/v2/Users/1", ""); w.Body.String() != be.resource {
		t.Errorf("reverse_map off changed the response: %s", w.Body)
	}
}

// assertIdPShape checks a response carries favorite_color and a top-level department, and
// a Content-Length matching its body.
func assertIdPShape(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.String()
	if !strings.Contains(body, `"favorite_color":"red"`) || strings.Contains(body, `favoriteColor`) ||
		!strings.Contains(body, `"department":"R&D"`) || strings.Contains(body, entURN+`":{"department"`) {
		t.Errorf("not in the IdP's shape: %s", body)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %s for %d bytes", cl, len(body))
	}
}

func TestReverseMapSeedsFromStore(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	if _, err := store.NoteWarnings(ctx, shadow.WarningNote{Connection: testConn, ResourceType: "User", Key: "u",
		Fallbacks: []shadow.FallbackUse{{Attribute: "favoriteColor", Source: "preferences.favoriteColor"}}}); err != nil {
		t.Fatal(err)
	}
	be := &echoBackend{resource: `{"id":"1","userName":"u","favoriteColor":"red"}`}
	e := idpEngine(t, shadow.ModeLive, store) // a fresh process: nothing in memory
	w := serve(e, be, http.MethodGet, "/scim/v2/Users/1", "")
	if !strings.Contains(w.Body.String(), `"preferences":{"favoriteColor":"red"}`) {
		t.Errorf("not seeded from the store: %s", w.Body)
	}
}

// FuzzReverseWriter sends arbitrary backend responses through the reverse-mapping writer of
// a connection that uses From paths: never a panic, the Content-Length always matches the
// body, and a body that is not mapped arrives byte for byte.
func FuzzReverseWriter(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","favoriteColor":"red","` + entURN + `":{"department":"D"}}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":[{"favoriteColor":"r","meta":{"resourceType":"User"}},{"favoriteColor":1}]}`,
		`{"favoriteColor":null,"department":"x"}`, `[]`, `not json`, ``,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	e := idpEngine(f, shadow.ModeLive, nil)
	learn := &echoBackend{}
	serve(e, learn, http.MethodPost, "/scim/v2/Users", `{"userName":"u","favorite_color":"red","department":"D"}`)
	f.Fuzz(func(t *testing.T, body []byte, scimJSON bool) {
		next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			ct := "text/plain"
			if scimJSON {
				ct = shadow.ContentType
			}
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		})
		w := serve(e, next, http.MethodGet, "/scim/v2/Users/1", "")
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
			t.Fatalf("Content-Length %s for %d bytes", cl, w.Body.Len())
		}
		if !scimJSON && !bytes.Equal(w.Body.Bytes(), body) {
			t.Fatalf("a text response changed")
		}
		if json.Valid(body) && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("valid JSON became invalid: %s → %s", body, w.Body)
		}
	})
}

// TestReverseAsksIdentityThroughTransport: behind a real HTTP hop (httputil.ReverseProxy
// with Go's default Transport, as reverse_proxy has unless its compression is off), a
// reverse-mapped response is asked for as identity, so a backend that compresses does not,
// and the proxy inflates nothing; a response with nothing to map keeps the IdP's header.
func TestReverseAsksIdentityThroughTransport(t *testing.T) {
	var mu sync.Mutex
	var gzipped []bool
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"id":"1","userName":"u","favoriteColor":"red"}`
		w.Header().Set("Content-Type", shadow.ContentType)
		gz := strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
		mu.Lock()
		gzipped = append(gzipped, gz)
		mu.Unlock()
		if !gz {
			_, _ = io.WriteString(w, body)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, body)
		_ = zw.Close()
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	next := httputil.NewSingleHostReverseProxy(u)

	e := idpEngine(t, shadow.ModeLive, nil)
	w := serve(e, next, http.MethodGet, "/scim/v2/Users/1", "")
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("before any source is known, the compressed answer should pass through: %q", w.Body)
	}
	serve(e, next, http.MethodPost, "/scim/v2/Users", `{"userName":"u","favorite_color":"red"}`)
	w = serve(e, next, http.MethodGet, "/scim/v2/Users/1", "")
	if got := w.Body.String(); !strings.Contains(got, `"favorite_color":"red"`) {
		t.Fatalf("not reverse-mapped: %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !gzipped[0] {
		t.Error("a response with nothing to map back lost the IdP's Accept-Encoding")
	}
	if gzipped[len(gzipped)-1] {
		t.Error("the backend was asked to compress a response that is reverse-mapped")
	}
}
