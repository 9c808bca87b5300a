package backend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	testToken = "s3cret"
	coreUser  = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroup = "urn:ietf:params:scim:schemas:core:2.0:Group"
	entUser   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

type testEnv struct {
	t    *testing.T
	srv  *httptest.Server
	base string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	h, err := New(Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testEnv{t: t, srv: srv, base: srv.URL + DefaultBasePath}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends an authenticated request; body may be a string (sent verbatim) or
// any JSON-marshalable value.
func (e *testEnv) do(method, path string, body any) response {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+testToken)
}

func (e *testEnv) doAuth(method, path string, body any, auth string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/scim+json")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: invalid JSON body %q: %v", method, path, raw, err)
		}
	}
	return out
}

// must fails unless the response has the given status.
func (r response) must(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.raw)
	}
	return r
}

func (r response) scimType() string {
	s, _ := r.body["scimType"].(string)
	return s
}

func (r response) str(path string) string {
	v := get(r.body, path)
	s, _ := v.(string)
	return s
}

// get walks a dotted path through maps; "[n]" indexes arrays; a key may be a
// full URN when given in {braces}.
func get(v any, path string) any {
	for _, part := range splitPath(path) {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			var i int
			if _, err := fmt.Sscanf(part, "%d", &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func splitPath(p string) []string {
	var out []string
	for p != "" {
		if strings.HasPrefix(p, "{") {
			end := strings.Index(p, "}")
			out = append(out, p[1:end])
			p = strings.TrimPrefix(p[end+1:], ".")
			continue
		}
		i := strings.IndexAny(p, ".")
		if i < 0 {
			out = append(out, p)
			break
		}
		out = append(out, p[:i])
		p = p[i+1:]
	}
	return out
}

func (e *testEnv) createUser(userName string, extra map[string]any) string {
	e.t.Helper()
	body := map[string]any{
		"schemas":  []string{coreUser},
		"userName": userName,
		"active":   true,
	}
	for k, v := range extra {
		body[k] = v
	}
	r := e.do("POST", "/Users", body).must(e.t, http.StatusCreated)
	return r.str("id")
}

func (e *testEnv) createGroup(name string, memberIDs ...string) string {
	e.t.Helper()
	members := []any{}
	for _, id := range memberIDs {
		members = append(members, map[string]any{"value": id})
	}
	r := e.do("POST", "/Groups", map[string]any{
		"schemas":     []string{coreGroup},
		"displayName": name,
		"members":     members,
	}).must(e.t, http.StatusCreated)
	return r.str("id")
}

func patchBody(ops ...map[string]any) map[string]any {
	return map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": ops,
	}
}

func op(name, path string, value any) map[string]any {
	m := map[string]any{"op": name}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

func memberIDs(group map[string]any) []string {
	var ids []string
	ms, _ := group["members"].([]any)
	for _, m := range ms {
		mm, _ := m.(map[string]any)
		ids = append(ids, fmt.Sprint(mm["value"]))
	}
	return ids
}

func listIDs(r response) []string {
	var ids []string
	res, _ := r.body["Resources"].([]any)
	for _, x := range res {
		ids = append(ids, fmt.Sprint(x.(map[string]any)["id"]))
	}
	return ids
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}
