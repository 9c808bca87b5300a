package caddymodule

import (
	"strconv"
	"strings"
	"testing"
)

func TestCaddyfileLimits(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"block", "limits {\n\t\t\tmax_body 64KiB\n\t\t\tmax_depth 16\n\t\t\tmax_operations 50\n\t\t}",
			`"max_body":65536,"max_depth":16,"max_operations":50`},
		{"subdirectives", "max_depth none\n\t\tmax_operations 7",
			`"max_depth":-1,"max_operations":7`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := adapt(t, ":8080 {\n\tscim_shadow {\n\t\t"+tc.body+"\n\t}\n\treverse_proxy 127.0.0.1:9000\n}\n")
			if err != nil {
				t.Fatal(err)
			}
			h := findHandler(cfg, "scim_shadow")
			for _, kv := range strings.Split(tc.want, ",") {
				k, v, _ := strings.Cut(kv, ":")
				if got := jsonNumber(h[strings.Trim(k, `"`)]); got != v {
					t.Errorf("%s = %v, want %s (handler %v)", k, h[strings.Trim(k, `"`)], v, h)
				}
			}
		})
	}
	for _, tc := range []struct{ name, body, want string }{
		{"zero depth", "max_depth 0", "max_depth: want a positive number or none"},
		{"words", "limits {\n\t\t\tmax_operations many\n\t\t}", "max_operations: want a positive number or none"},
		{"unknown limit", "limits {\n\t\t\tmax_users 3\n\t\t}", `unrecognized limit "max_users"`},
		{"nested", "limits {\n\t\t\tlimits {\n\t\t\t}\n\t\t}", "limits blocks do not nest"},
		{"arg", "limits 3 {\n\t\t}", "wrong argument count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, ":8080 {\n\tscim_shadow {\n\t\t"+tc.body+"\n\t}\n\treverse_proxy 127.0.0.1:9000\n}\n")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error %v, want %q with a line number", err, tc.want)
			}
		})
	}
}

func jsonNumber(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return "<missing>"
}
