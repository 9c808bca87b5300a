package integration

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tokenCaddyfile serves connection alpha (preview) under /a and beta (live) under /b;
// both take the IdP's connection token and send the backend its own credential.
const tokenCaddyfile = `{
	admin {{ADMIN}}
	scim_shadow {
		store sqlite {{DB}}
	}
}
:{{PORT}} {
	route /a/scim/v2/* {
		uri strip_prefix /a
		scim_shadow {
			connection alpha
			mode preview
			auth token
			backend_auth "Bearer ` + backendToken + `"
		}
		reverse_proxy {{BACKEND}}
	}
	route /b/scim/v2/* {
		uri strip_prefix /b
		scim_shadow {
			connection beta
			auth token
			backend_auth "Bearer {env.SCIM_SHADOW_IT_BACKEND_TOKEN}"
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
}
`

func TestConnectionTokens(t *testing.T) {
	t.Setenv("SCIM_SHADOW_IT_BACKEND_TOKEN", backendToken)
	be := startBackend(t)
	c := startCaddy(t, tokenCaddyfile, be)

	// Tokens come from the admin API (and the review route), once.
	status, out := do(t, http.MethodPost, c.AdminURL+"/scim_shadow/connections/alpha/token", nil, map[string]string{})
	if status != http.StatusCreated {
		t.Fatalf("issuing a token: %d %s", status, out)
	}
	tokenA := decode(t, out)["token"].(string)
	status, body := c.review(t, http.MethodPost, "/connections/beta/token", nil)
	if status != http.StatusCreated {
		t.Fatalf("issuing a token on the review route: %d %v", status, body)
	}
	tokenB := body["token"].(string)
	if !strings.HasPrefix(tokenA, "scims_") || tokenA == tokenB {
		t.Fatalf("tokens %q %q", tokenA, tokenB)
	}

	call := func(method, url, token string, payload any) (int, []byte, http.Header) {
		t.Helper()
		h := map[string]string{"Content-Type": "application/scim+json"}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		return doH(t, method, c.URL+url, payload, h)
	}
	// No token, a wrong token, the backend's own token: 401 with a SCIM error.
	for _, tok := range []string{"", "scims_wrong", backendToken, tokenA + "x"} {
		status, out, h := call(http.MethodGet, "/a/scim/v2/Users", tok, nil)
		if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("Content-Type"), "application/scim+json") ||
			!strings.Contains(string(out), ErrorSchemaURN) || h.Get("WWW-Authenticate") == "" {
			t.Errorf("token %q: %d %v %s", tok, status, h, out)
		}
	}
	// The right token reads (preview: the IdP's connection test works); the backend gets
	// its own credential, never the IdP's token.
	before := len(be.Requests(""))
	status, out, _ = call(http.MethodGet, "/a/scim/v2/Users?count=1", tokenA, nil)
	if status != http.StatusOK {
		t.Fatalf("read with token A: %d %s", status, out)
	}
	reqs := be.Requests("")
	if len(reqs) != before+1 || reqs[len(reqs)-1].Header.Get("Authorization") != "Bearer "+backendToken {
		t.Fatalf("backend got %d requests, last Authorization %q", len(reqs)-before, reqs[len(reqs)-1].Header.Get("Authorization"))
	}
	// Token A cannot read or write as beta.
	writes := be.Writes()
	if status, _, _ := call(http.MethodGet, "/b/scim/v2/Users", tokenA, nil); status != http.StatusUnauthorized {
		t.Errorf("token A reading beta: %d", status)
	}
	if status, _, _ := call(http.MethodPost, "/b/scim/v2/Users", tokenA, oktaCreate); status != http.StatusUnauthorized || be.Writes() != writes {
		t.Errorf("token A writing beta: %d, backend writes %d → %d", status, writes, be.Writes())
	}
	// Each token works for its own connection: alpha records (preview), beta forwards.
	status, _, h := call(http.MethodPost, "/a/scim/v2/Users", tokenA, oktaCreate)
	if status != http.StatusTooManyRequests || h.Get("X-Scim-Shadow-Record") == "" {
		t.Fatalf("preview write with token A: %d", status)
	}
	if status, out, _ := call(http.MethodPost, "/b/scim/v2/Users", tokenB, oktaCreate); status != http.StatusCreated {
		t.Fatalf("live write with token B: %d %s", status, out)
	}
	if got := be.Requests(http.MethodPost); got[len(got)-1].Header.Get("Authorization") != "Bearer "+backendToken {
		t.Errorf("backend write got Authorization %q", got[len(got)-1].Header.Get("Authorization"))
	}

	// Rotation with the CLI: a new token replaces the old one.
	cmd := exec.Command(caddyBin, "scim-shadow", "token", "beta", "--address", strings.TrimPrefix(c.AdminURL, "http://"))
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("caddy scim-shadow token: %v", err)
	}
	newB := strings.TrimSpace(string(stdout))
	if !strings.HasPrefix(newB, "scims_") || newB == tokenB {
		t.Fatalf("CLI token %q", newB)
	}
	if status, _, _ := call(http.MethodGet, "/b/scim/v2/Users", tokenB, nil); status != http.StatusUnauthorized {
		t.Errorf("rotated-out token: %d", status)
	}
	if status, _, _ := call(http.MethodGet, "/b/scim/v2/Users", newB, nil); status != http.StatusOK {
		t.Errorf("new token: %d", status)
	}

	// The raw tokens appear nowhere: not in the store, the logs or the API.
	var apiText bytes.Buffer
	for _, p := range []string{"/connections", "/connections/alpha/records", "/connections/alpha/records/" + h.Get("X-Scim-Shadow-Record")} {
		_, out := do(t, http.MethodGet, c.URL+"/review"+p, nil, map[string]string{})
		apiText.Write(out)
	}
	c.Stop()
	files, _ := filepath.Glob(filepath.Join(c.dir, "shadow.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, tok := range []string{tokenA, tokenB, newB} {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(tok)) {
				t.Errorf("%s holds a raw token", filepath.Base(f))
			}
		}
		if strings.Contains(c.log.String(), tok) {
			t.Error("the log holds a raw token")
		}
		if strings.Contains(apiText.String(), tok) {
			t.Error("the review API shows a raw token")
		}
	}
}
