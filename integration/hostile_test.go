package integration

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// hostileCase is one file of testdata/hostile (written by gen.py there).
type hostileCase struct {
	Name    string            `json:"name"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    *string           `json:"body"`
	BodyB64 string            `json:"body_b64"`
	Repeat  *struct {
		Prefix, Unit, Sep, Middle, Close, Suffix string
		Times                                    int
	} `json:"repeat"`
	Expect           map[string]string `json:"expect"` // mode → pass | error | recorded | any | server
	Status           int               `json:"status"`
	Chunked          bool              `json:"chunked"`
	EncodeQuery      bool              `json:"encode_query"`
	Raw              bool              `json:"raw"`
	RawHeaders       string            `json:"raw_headers"`
	DeclaredLength   int64             `json:"declared_length"`
	ChunkedTruncated bool              `json:"chunked_truncated"`
}

func (c *hostileCase) body(t *testing.T) []byte {
	switch {
	case c.Repeat != nil:
		r := c.Repeat
		var b bytes.Buffer
		b.WriteString(r.Prefix)
		for i := 0; i < r.Times; i++ {
			if i > 0 {
				b.WriteString(r.Sep)
			}
			b.WriteString(r.Unit)
		}
		b.WriteString(r.Middle)
		b.WriteString(strings.Repeat(r.Close, r.Times))
		b.WriteString(r.Suffix)
		return b.Bytes()
	case c.BodyB64 != "":
		b, err := base64.StdEncoding.DecodeString(c.BodyB64)
		if err != nil {
			t.Fatalf("%s: body_b64: %v", c.Name, err)
		}
		return b
	case c.Body != nil:
		return []byte(*c.Body)
	}
	return nil
}

func loadHostileCorpus(t *testing.T) []*hostileCase {
	t.Helper()
	files, err := filepath.Glob("testdata/hostile/*.json")
	if err != nil || len(files) < 60 {
		t.Fatalf("hostile corpus: %d files, %v", len(files), err)
	}
	var out []*hostileCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := new(hostileCase)
		if err := json.Unmarshal(b, c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, c)
	}
	return out
}

// hostileCaddyfile serves tenants from the X-Tenant header in one mode, with a rule.
const hostileCaddyfile = `{
	admin {{ADMIN}}
	scim_shadow {
		store sqlite {{DB}}
	}
}
:{{PORT}} {
	route /scim/v2/* {
		scim_shadow {
			connection {http.request.header.X-Tenant}
			mode {{MODE}}
			map User {
				favoriteColor {
					from favorite_color
				}
			}
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
	respond "not found" 404
}`

// hostileResult is what a case got back.
type hostileResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// sendHostile sends one case to Caddy at base.
func sendHostile(t *testing.T, base string, c *hostileCase) hostileResult {
	body := c.body(t)
	path := c.Path
	if c.EncodeQuery {
		p, q, _ := strings.Cut(path, "?")
		name, val, _ := strings.Cut(q, "=")
		path = p + "?" + name + "=" + url.QueryEscape(val)
	}
	if c.Raw {
		return sendRaw(base, c, path, body)
	}
	var rd io.Reader = bytes.NewReader(body)
	if c.Chunked {
		rd = io.MultiReader(rd) // hides the length: chunked
	}
	req, err := http.NewRequest(c.Method, base+"/scim/v2"+path, rd)
	if err != nil {
		return hostileResult{err: err}
	}
	if c.Chunked {
		req.ContentLength = -1
	}
	req.Header.Set("Authorization", "Bearer "+backendToken)
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("X-Case", c.Name)
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	resp, err := loadClient.Do(req)
	if err != nil {
		return hostileResult{err: err}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return hostileResult{status: resp.StatusCode, header: resp.Header, body: out, err: err}
}

// sendRaw writes the request by hand: headers Go's client refuses to send, a body shorter
// than its Content-Length, a chunked body that stops.
func sendRaw(base string, c *hostileCase, path string, body []byte) hostileResult {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return hostileResult{err: err}
	}
	defer conn.Close()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s /scim/v2%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/scim+json\r\nX-Case: %s\r\n%s",
		c.Method, path, backendToken, c.Name, c.RawHeaders)
	switch {
	case c.ChunkedTruncated:
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s", len(body), body, 100, body[:10])
	default:
		n := int64(len(body))
		if c.DeclaredLength > 0 {
			n = c.DeclaredLength
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", n, body)
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return hostileResult{err: err}
	}
	if c.DeclaredLength > 0 || c.ChunkedTruncated {
		_ = conn.(*net.TCPConn).CloseWrite() // the client stops sending
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return hostileResult{err: err}
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return hostileResult{status: resp.StatusCode, header: resp.Header, body: out}
}

// isSCIMError reports why res is not an RFC 7644 error response ("" when it is).
func isSCIMError(res hostileResult) string {
	if !strings.HasPrefix(res.header.Get("Content-Type"), "application/scim+json") {
		return "Content-Type " + res.header.Get("Content-Type")
	}
	var e struct {
		Schemas []string `json:"schemas"`
		Status  string   `json:"status"`
		Detail  string   `json:"detail"`
	}
	if err := json.Unmarshal(res.body, &e); err != nil {
		return "body: " + err.Error()
	}
	if len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || e.Status != strconv.Itoa(res.status) || e.Detail == "" {
		return fmt.Sprintf("body %s", res.body)
	}
	return ""
}

// TestHostileInput runs the corpus through a real Caddy in each mode: every case gets a SCIM
// error or a faithful pass-through as its file says, nothing panics, and in preview no
// write reaches the backend.
func TestHostileInput(t *testing.T) {
	corpus := loadHostileCorpus(t)
	for _, mode := range []string{"live", "preview"} {
		t.Run(mode, func(t *testing.T) {
			be := startBackend(t)
			c := startCaddy(t, strings.ReplaceAll(hostileCaddyfile, "{{MODE}}", mode), be)
			recorded, forwarded := 0, 0
			for _, hc := range corpus {
				res := sendHostile(t, c.URL, hc)
				checkHostile(t, mode, hc, res, be)
				if res.header.Get("X-Scim-Shadow-Record") != "" {
					recorded++
				}
			}
			for _, r := range be.Requests("") {
				if r.Header.Get("X-Case") != "" && !isReadRequest(r.Method, r.URL) {
					forwarded++
				}
			}
			// Still up, and nothing panicked.
			if status, _ := do(t, http.MethodGet, c.AdminURL+"/config/", nil, map[string]string{}); status != http.StatusOK {
				t.Fatalf("caddy admin after the corpus: %d", status)
			}
			if strings.Contains(strings.ToLower(c.log.String()), "panic") {
				t.Errorf("caddy log mentions a panic")
			}
			checkConnectionNames(t, c)
			table.mu.Lock()
			table.rows = append(table.rows, row{Scenario: "hostile corpus (" + mode + ")", Sent: len(corpus),
				Recorded: recorded, Forwarded: forwarded, Held: !t.Failed(), Note: "SCIM error or pass-through; no panic"})
			table.mu.Unlock()
		})
	}
}

// checkHostile checks one case's answer and what the backend got.
func checkHostile(t *testing.T, mode string, hc *hostileCase, res hostileResult, be *testBackend) {
	t.Helper()
	var got []string // methods of the requests of this case the backend received
	for _, r := range be.Requests("") {
		if r.Header.Get("X-Case") == hc.Name {
			got = append(got, r.Method)
		}
	}
	forwarded := false
	for _, m := range got {
		if m == hc.Method || (hc.Method == http.MethodHead && m == http.MethodGet) {
			forwarded = true
		}
	}
	isRead := isReadRequest(hc.Method, hc.Path)
	if mode == "preview" && !isRead && forwarded {
		t.Errorf("%s: a write reached the backend in preview (invariant 1)", hc.Name)
	}
	want := hc.Expect[mode]
	if res.err != nil {
		t.Errorf("%s (%s): no answer: %v", hc.Name, want, res.err)
		return
	}
	if hc.Status != 0 && (want == "error") && res.status != hc.Status {
		t.Errorf("%s: status %d, want %d: %s", hc.Name, res.status, hc.Status, res.body)
	}
	switch want {
	case "pass":
		if !forwarded {
			t.Errorf("%s: not passed through: %d %s", hc.Name, res.status, res.body)
		}
	case "error":
		if forwarded {
			t.Errorf("%s: forwarded, want a SCIM error", hc.Name)
		}
		if why := isSCIMError(res); why != "" {
			t.Errorf("%s: %d is not a SCIM error: %s", hc.Name, res.status, why)
		}
	case "recorded":
		if res.status != http.StatusTooManyRequests || res.header.Get("X-Scim-Shadow-Record") == "" || res.header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s, want 429 with a record and Retry-After", hc.Name, res.status, res.body)
		} else if why := isSCIMError(res); why != "" {
			t.Errorf("%s: rejection is not a SCIM error: %s", hc.Name, why)
		}
	case "any":
		if !forwarded || (mode == "preview" && !isRead) {
			if why := isSCIMError(res); why != "" {
				t.Errorf("%s: not forwarded and %d is not a SCIM error: %s", hc.Name, res.status, why)
			}
		}
	case "unrouted":
		if forwarded || len(got) > 0 || res.status != http.StatusNotFound {
			t.Errorf("%s: %d (backend got %v), want the catch-all's 404", hc.Name, res.status, got)
		}
	case "server":
		if forwarded || res.status != http.StatusBadRequest {
			t.Errorf("%s: %d (forwarded %v), want the HTTP server's 400", hc.Name, res.status, forwarded)
		}
	default:
		t.Fatalf("%s: unknown expectation %q", hc.Name, want)
	}
}

// isReadRequest reports whether a request is a SCIM read (GET, HEAD, OPTIONS, /.search).
func isReadRequest(method, path string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions ||
		strings.HasSuffix(strings.SplitN(path, "?", 2)[0], "/.search")
}

// checkConnectionNames: names taken from X-Tenant are printable, bounded and never the
// expansion of a placeholder the client sent.
func checkConnectionNames(t *testing.T, c *caddyProc) {
	t.Helper()
	status, body := do(t, http.MethodGet, c.URL+"/review/connections", nil, map[string]string{})
	if status != http.StatusOK {
		t.Fatalf("connections: %d %s", status, body)
	}
	var list struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	for _, conn := range list.Connections {
		n := conn.Name
		if !utf8.ValidString(n) || len(n) > 128 || strings.IndexFunc(n, unicode.IsControl) >= 0 || strings.Contains(n, backendToken) {
			t.Errorf("connection name %q", n)
		}
	}
}
