package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func adapt(t *testing.T, caddyfile string) (map[string]any, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapted config is not JSON: %v", err)
	}
	return cfg, nil
}

// findHandler returns the first handler object with the given name anywhere in cfg.
func findHandler(v any, name string) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == name {
			return v
		}
		for _, child := range v {
			if h := findHandler(child, name); h != nil {
				return h
			}
		}
	case []any:
		for _, child := range v {
			if h := findHandler(child, name); h != nil {
				return h
			}
		}
	}
	return nil
}

func TestRepoCaddyfilesAdapt(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/Caddyfile")
	files = append(files, "../Caddyfile")
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := adapt(t, string(b))
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			if findHandler(cfg, "scim_shadow") == nil {
				t.Errorf("no scim_shadow handler in %s", f)
			}
		})
	}
}

func TestCaddyfileToJSON(t *testing.T) {
	cfg, err := adapt(t, "{\n"+
		"\tscim_shadow {\n\t\tstore postgres postgres://u@db/x\n\t\tretention 48h\n\t\tmode_refresh 5s\n\t\treview_secret {env.REVIEW_SECRET}\n\t}\n}\n"+
		":8080 {\n"+
		"\tscim_shadow {\n"+
		"\t\tconnection {http.request.header.X-Tenant}\n"+
		"\t\tmode preview\n"+
		"\t\tmax_body 2MiB\n"+
		"\t\treject 503 5m\n"+
		"\t\tredact_header X-Api-Key X-Other\n"+
		"\t\tmap User {\n"+
		"\t\t\tfavoriteColor {\n\t\t\t\tfrom favorite_color\n\t\t\t\tfrom preferences.favoriteColor\n\t\t\t\twarn_if_missing\n\t\t\t}\n"+
		"\t\t\turn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department {\n\t\t\t\tfrom department\n\t\t\t\tdefault \"Unassigned\"\n\t\t\t\tonly_on create\n\t\t\t}\n"+
		"\t\t\t`emails[type eq \"work\"].value` {\n\t\t\t\tfrom `emails[type eq \"other\"].value`\n\t\t\t\tdefault 42\n\t\t\t}\n"+
		"\t\t\tdrop x-internal-flag password\n"+
		"\t\t}\n"+
		"\t}\n"+
		"\treverse_proxy 127.0.0.1:9000\n"+
		"}\n")
	if err != nil {
		t.Fatal(err)
	}
	h := findHandler(cfg, "scim_shadow")
	got, _ := json.Marshal(h)
	want := `{"connection":"{http.request.header.X-Tenant}","handler":"scim_shadow",` +
		`"map":{"User":{"drop":["x-internal-flag","password"],"rules":[` +
		`{"from":["favorite_color","preferences.favoriteColor"],"target":"favoriteColor","warn_if_missing":true},` +
		`{"default":"Unassigned","from":["department"],"only_on":"create","target":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},` +
		`{"default":42,"from":["emails[type eq \"other\"].value"],"target":"emails[type eq \"work\"].value"}]}},` +
		`"max_body":2097152,"mode":"preview","redact_headers":["X-Api-Key","X-Other"],` +
		`"reject":{"retry_after":300000000000,"status":503}}`
	if string(got) != want {
		t.Errorf("handler JSON\n got %s\nwant %s", got, want)
	}
	app, _ := json.Marshal(cfg["apps"].(map[string]any)["scim_shadow"])
	if string(app) != `{"mode_refresh":5000000000,"retention":172800000000000,"review_secret":"{env.REVIEW_SECRET}","store":{"dsn":"postgres://u@db/x","type":"postgres"}}` {
		t.Errorf("app JSON %s", app)
	}
	// scim_shadow is ordered before reverse_proxy outside a route block.
	routes, _ := json.Marshal(cfg["apps"].(map[string]any)["http"])
	if strings.Index(string(routes), `"scim_shadow"`) > strings.Index(string(routes), `"reverse_proxy"`) {
		t.Errorf("scim_shadow is not ordered before reverse_proxy: %s", routes)
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown subdirective", "scim_shadow {\n\t\tconection acme\n\t}", `unrecognized scim_shadow subdirective "conection"`},
		{"unknown rule option", "scim_shadow {\n\t\tmap User {\n\t\t\tfavoriteColor {\n\t\t\t\tfrm favorite_color\n\t\t\t}\n\t\t}\n\t}", `unrecognized option "frm"`},
		{"bad mode", "scim_shadow {\n\t\tmode shadow\n\t}", `mode must be "live" or "preview"`},
		{"bad reject", "scim_shadow {\n\t\treject 200\n\t}", "reject: status must be a 4xx or 5xx code"},
		{"bad size", "scim_shadow {\n\t\tmax_body lots\n\t}", "max_body: invalid size"},
		{"only_on update", "scim_shadow {\n\t\tmap User {\n\t\t\tx {\n\t\t\t\tonly_on update\n\t\t\t}\n\t\t}\n\t}", `only "create" is supported`},
		{"unquoted value filter", "scim_shadow {\n\t\tmap User {\n\t\t\temails[type eq \"work\"].value {\n\t\t\t}\n\t\t}\n\t}", "quote paths with value filters in backticks"},
		{"review options", "scim_shadow_review {\n\t\tfoo\n\t}", `unrecognized scim_shadow_review subdirective "foo"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, ":8080 {\n\t"+tc.body+"\n\treverse_proxy 127.0.0.1:9000\n}\n")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error %v has no line number", err)
			}
		})
	}
	_, err := adapt(t, "{\n\tscim_shadow {\n\t\tstore mysql x\n\t}\n}\n:8080 {\n\trespond ok\n}\n")
	if err == nil || !strings.Contains(err.Error(), `store must be "sqlite" or "postgres"`) || !strings.Contains(err.Error(), "Caddyfile:3") {
		t.Errorf("global option error: %v", err)
	}
}

func TestSanitizeConnection(t *testing.T) {
	for in, want := range map[string]string{
		"acme":                   "acme",
		"":                       "default",
		"  ":                     "default",
		"ten\r\nX-Injected: 1":   "tenX-Injected: 1",
		"a\x00b\x7f":             "ab",
		strings.Repeat("é", 100): strings.Repeat("é", 64),
		"\xff\xfeok":             "ok",
	} {
		if got := sanitizeConnection(in); got != want {
			t.Errorf("sanitizeConnection(%q) = %q, want %q", in, got, want)
		}
	}
}
