package shadow_test

import (
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

func TestRedactHeader(t *testing.T) {
	R := []string{shadow.Redacted}
	tests := []struct {
		name  string
		in    http.Header
		extra []string
		want  map[string][]string
	}{
		{
			name: "standard secrets",
			in: http.Header{
				"Authorization":       {"Bearer okta-token-1"},
				"Cookie":              {"sid=abc", "theme=dark"},
				"Proxy-Authorization": {"Basic cHJveHk6c2VjcmV0"},
				"Set-Cookie":          {"sid=abc; HttpOnly"},
				"Content-Type":        {"application/scim+json; charset=utf-8"},
				"User-Agent":          {"Okta SCIM Client 1.0.0"},
				"X-Request-Id":        {"r-1", "r-2"},
			},
			want: map[string][]string{
				"Authorization": R, "Cookie": R, "Proxy-Authorization": R, "Set-Cookie": R,
				"Content-Type": {"application/scim+json; charset=utf-8"},
				"User-Agent":   {"Okta SCIM Client 1.0.0"},
				"X-Request-Id": {"r-1", "r-2"},
			},
		},
		{
			name: "names in any case",
			in: http.Header{
				"authorization":       {"Bearer lower"},
				"COOKIE":              {"sid=upper"},
				"proxy-AUTHORIZATION": {"Basic mixed"},
				"set-cookie":          {"a=b"},
				"Accept":              {"application/scim+json"},
			},
			want: map[string][]string{
				"authorization": R, "COOKIE": R, "proxy-AUTHORIZATION": R, "set-cookie": R,
				"Accept": {"application/scim+json"},
			},
		},
		{
			name:  "extra names, case-insensitive",
			in:    http.Header{"X-Api-Key": {"k-1"}, "x-tenant-secret": {"s-1"}, "X-Api-Version": {"2"}, "Authorization": {"Bearer t"}},
			extra: []string{"x-API-key", "X-Tenant-Secret"},
			want:  map[string][]string{"X-Api-Key": R, "x-tenant-secret": R, "X-Api-Version": {"2"}, "Authorization": R},
		},
		{
			name: "empty value is still redacted",
			in:   http.Header{"Authorization": {""}, "Cookie": nil},
			want: map[string][]string{"Authorization": R, "Cookie": R},
		},
		{name: "empty", in: http.Header{}, want: map[string][]string{}},
		{name: "nil", in: nil, want: map[string][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.in.Clone()
			got := shadow.RedactHeader(tc.in, tc.extra)
			if got == nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("RedactHeader = %#v, want %#v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.in, before) {
				t.Fatalf("input changed: %#v, was %#v", tc.in, before)
			}
			// The result shares no slice with the input.
			for name, vals := range got {
				for i := range vals {
					vals[i] = "changed"
				}
				if !reflect.DeepEqual(tc.in[name], before[name]) {
					t.Fatalf("writing the result changed input header %s", name)
				}
			}
		})
	}
}

func TestRedactBody(t *testing.T) {
	const (
		coreUser = "urn:ietf:params:scim:schemas:core:2.0:User"
		entUser  = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	)
	tests := []struct {
		name    string
		in      string
		want    string   // semantic JSON compare
		secrets []string // must not appear in the output
	}{
		{
			name:    "top-level password",
			in:      `{"schemas":["` + coreUser + `"],"userName":"bjensen","password":"t1meMachine!","active":true}`,
			want:    `{"schemas":["` + coreUser + `"],"userName":"bjensen","password":"[REDACTED]","active":true}`,
			secrets: []string{"t1meMachine!"},
		},
		{
			name:    "capitalised",
			in:      `{"userName":"bjensen","Password":"Cap1talised"}`,
			want:    `{"userName":"bjensen","Password":"[REDACTED]"}`,
			secrets: []string{"Cap1talised"},
		},
		{
			name:    "upper case",
			in:      `{"PASSWORD":"Upper-case-pw"}`,
			want:    `{"PASSWORD":"[REDACTED]"}`,
			secrets: []string{"Upper-case-pw"},
		},
		{
			name:    "URN-qualified key",
			in:      `{"` + coreUser + `:password":"urnSecret99","` + coreUser + `:userName":"bjensen"}`,
			want:    `{"` + coreUser + `:password":"[REDACTED]","` + coreUser + `:userName":"bjensen"}`,
			secrets: []string{"urnSecret99"},
		},
		{
			name:    "nested in an extension",
			in:      `{"userName":"bjensen","` + entUser + `":{"department":"Tour Operations","password":"extSecret1"}}`,
			want:    `{"userName":"bjensen","` + entUser + `":{"department":"Tour Operations","password":"[REDACTED]"}}`,
			secrets: []string{"extSecret1"},
		},
		{
			name:    "nested in arrays",
			in:      `{"x":[[{"a":1},{"password":"arraySecret"}]],"emails":[{"value":"b@example.com"}]}`,
			want:    `{"x":[[{"a":1},{"password":"[REDACTED]"}]],"emails":[{"value":"b@example.com"}]}`,
			secrets: []string{"arraySecret"},
		},
		{
			name:    "non-string values",
			in:      `{"a":{"password":12345678},"b":{"password":{"hash":"h4sh-value"}},"c":{"password":["l1st-value"]},"d":{"password":true}}`,
			want:    `{"a":{"password":"[REDACTED]"},"b":{"password":"[REDACTED]"},"c":{"password":"[REDACTED]"},"d":{"password":"[REDACTED]"}}`,
			secrets: []string{"12345678", "h4sh-value", "l1st-value"},
		},
		{
			name: "null password stays null",
			in:   `{"userName":"bjensen","password":null}`,
			want: `{"userName":"bjensen","password":null}`,
		},
		{
			name:    "PATCH with path password",
			in:      `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"password","value":"n3wPassw0rd"},{"op":"replace","path":"active","value":false}]}`,
			want:    `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"password","value":"[REDACTED]"},{"op":"replace","path":"active","value":false}]}`,
			secrets: []string{"n3wPassw0rd"},
		},
		{
			name:    "PATCH Entra style, URN path",
			in:      `{"Operations":[{"op":"Replace","path":"` + coreUser + `:password","value":"entraSecret"}]}`,
			want:    `{"Operations":[{"op":"Replace","path":"` + coreUser + `:password","value":"[REDACTED]"}]}`,
			secrets: []string{"entraSecret"},
		},
		{
			name:    "PATCH path PASSWORD, Value key",
			in:      `{"Operations":[{"op":"add","path":"PASSWORD","Value":"valueSecret"}]}`,
			want:    `{"Operations":[{"op":"add","path":"PASSWORD","Value":"[REDACTED]"}]}`,
			secrets: []string{"valueSecret"},
		},
		{
			name:    "path-less PATCH",
			in:      `{"Operations":[{"op":"replace","value":{"password":"pathlessPw","active":true}}]}`,
			want:    `{"Operations":[{"op":"replace","value":{"password":"[REDACTED]","active":true}}]}`,
			secrets: []string{"pathlessPw"},
		},
		{
			name: "PATCH of another path keeps its value",
			in:   `{"Operations":[{"op":"replace","path":"displayName","value":"password"},{"op":"replace","path":"title","value":"t"}]}`,
			want: `{"Operations":[{"op":"replace","path":"displayName","value":"password"},{"op":"replace","path":"title","value":"t"}]}`,
		},
		{
			name: "Bulk data",
			in: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[` +
				`{"method":"POST","path":"/Users","bulkId":"q1","data":{"userName":"alice","password":"bulkPw-one"}},` +
				`{"method":"PATCH","path":"/Users/u2","data":{"Operations":[{"op":"replace","path":"password","value":"bulkPw-two"}]}}]}`,
			want: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[` +
				`{"method":"POST","path":"/Users","bulkId":"q1","data":{"userName":"alice","password":"[REDACTED]"}},` +
				`{"method":"PATCH","path":"/Users/u2","data":{"Operations":[{"op":"replace","path":"password","value":"[REDACTED]"}]}}]}`,
			secrets: []string{"bulkPw-one", "bulkPw-two"},
		},
		{
			name:    "keys with dots and path syntax",
			in:      `{"a.b":{"password":"dotSecret"},"c*d?":{"password":"starSecret"},"e|f#g@h":{"x":[{"password":"pipeSecret"}]},"0":{"password":"zeroSecret"},"a.b.password":"kept"}`,
			want:    `{"a.b":{"password":"[REDACTED]"},"c*d?":{"password":"[REDACTED]"},"e|f#g@h":{"x":[{"password":"[REDACTED]"}]},"0":{"password":"[REDACTED]"},"a.b.password":"[REDACTED]"}`,
			secrets: []string{"dotSecret", "starSecret", "pipeSecret", "zeroSecret"},
		},
		{
			name:    "escaped key",
			in:      `{"pass\u0077ord":"escapedKey1","a\"b":{"password":"quoteKey1"}}`,
			want:    `{"password":"[REDACTED]","a\"b":{"password":"[REDACTED]"}}`,
			secrets: []string{"escapedKey1", "quoteKey1"},
		},
		{
			name:    "pretty printed",
			in:      "{\n  \"userName\": \"bjensen\",\n  \"password\": \"prettyPw1\"\n}\n",
			want:    `{"userName":"bjensen","password":"[REDACTED]"}`,
			secrets: []string{"prettyPw1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			out := shadow.RedactBody(in)
			jsonEqual(t, "RedactBody", out, tc.want)
			for _, s := range tc.secrets {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("secret %q left in %s", s, out)
				}
			}
		})
	}
}

func TestRedactBodyUnchanged(t *testing.T) {
	for _, in := range []string{
		`{"userName":"bjensen","name":{"givenName":"Barbara"},"emails":[{"value":"b@example.com"}]}`,
		"{\n  \"userName\" : \"kept as is\"\n}",
		`{"userPassword":"not the password attribute","passwordHint":"nor this"}`,
		`[]`, `"password"`, `42`, `null`,
		// Not JSON: returned as is (callers keep such bodies as text after RedactText).
		`{"userName":"bjensen","password":"truncat`,
		`userName=bjensen&password=form`,
		``,
	} {
		out := shadow.RedactBody([]byte(in))
		if !bytes.Equal(out, []byte(in)) {
			t.Errorf("RedactBody(%q) = %q, want it unchanged", in, out)
		}
	}
}

// TestRedactBodyEdgeCases: JSON that is valid and that a backend would read a password
// from, but that the sjson-path approach of RedactBody misses.
func TestRedactBodyEdgeCases(t *testing.T) {
	tests := []struct {
		name, in, secret string
	}{
		// encoding/json (and most backends) take the last of duplicate keys.
		{"duplicate keys", `{"password":"first-Secret","password":"second-Secret"}`, "second-Secret"},
		// The prefix "" is taken for "no prefix": the path becomes "password" at the root.
		{"empty parent key", `{"":{"password":"emptyKey-Secret"}}`, "emptyKey-Secret"},
		// rules/ (and SCIM) read PatchOp members case-insensitively.
		{"PATCH Path member", `{"Operations":[{"op":"replace","Path":"password","value":"pathCase-Secret"}]}`, "pathCase-Secret"},
		// A key spelled with JSON escapes is the same key to every JSON decoder.
		{"escaped key only", `{"userName":"bjensen","pass\u0077ord":"escapedKey-Secret"}`, "escapedKey-Secret"},
		{"escaped PATCH path", `{"Operations":[{"op":"replace","path":"\u0070assword","value":"escapedPath-Secret"}]}`, "escapedPath-Secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := shadow.RedactBody([]byte(tc.in))
			if bytes.Contains(out, []byte(tc.secret)) {
				t.Errorf("RedactBody(%s) = %s: secret %q kept (invariant 5)", tc.in, out, tc.secret)
			}
		})
	}
}

func TestRedactText(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		secrets []string
		keep    []string
	}{
		{
			name:    "truncated after the password",
			in:      `{"userName":"bjensen","password":"t1meMachine!","name":{"givenName":"Bar`,
			secrets: []string{"t1meMachine!"},
			keep:    []string{`{"userName":"bjensen","password"`, `"name":{"givenName":"Bar`},
		},
		{
			name:    "truncated inside the password",
			in:      `{"userName":"bjensen","password":"t1meMach`,
			secrets: []string{"t1meMach"},
			keep:    []string{`{"userName":"bjensen","password"`},
		},
		{
			name:    "last member",
			in:      `{"userName":"bjensen","Password":"lastMember1"} trailing`,
			secrets: []string{"lastMember1"},
			keep:    []string{`"userName":"bjensen"`, `} trailing`},
		},
		{
			name:    "two passwords",
			in:      `{"password":"firstOne1","x":{"PASSWORD":"secondOne2"},"y":1`,
			secrets: []string{"firstOne1", "secondOne2"},
			keep:    []string{`"x":{`, `"y":1`},
		},
		{
			name:    "PATCH value is not a password key (kept, text cannot know)",
			in:      `{"Operations":[{"op":"replace","path":"password","value":"patchText1"}`,
			secrets: nil,
			keep:    []string{`"op":"replace"`},
		},
		{
			name:    "form encoded",
			in:      `userName=bjensen&password=formSecret1`,
			secrets: []string{"formSecret1"},
			keep:    []string{"userName=bjensen&password"},
		},
		{
			name:    "no password",
			in:      `{"userName":"bjensen","active":tr`,
			secrets: nil,
			keep:    []string{`{"userName":"bjensen","active":tr`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := shadow.RedactText(tc.in)
			for _, s := range tc.secrets {
				if strings.Contains(out, s) {
					t.Errorf("RedactText(%q) = %q: secret %q kept", tc.in, out, s)
				}
			}
			for _, k := range tc.keep {
				if !strings.Contains(out, k) {
					t.Errorf("RedactText(%q) = %q: lost %q", tc.in, out, k)
				}
			}
			if len(tc.secrets) > 0 && !strings.Contains(out, shadow.Redacted) {
				t.Errorf("RedactText(%q) = %q: no %s marker", tc.in, out, shadow.Redacted)
			}
		})
	}
	if in := `{"userName":"bjensen","active":true`; shadow.RedactText(in) != in {
		t.Errorf("text without a password changed: %q", shadow.RedactText(in))
	}
}

// TestRedactTextEdgeCases: a password holding a comma or a brace, and text whose
// lower-case form has another length (İ, the Kelvin sign): RedactText leaks the rest of
// the password, or indexes text with offsets of strings.ToLower(text) and panics.
func TestRedactTextEdgeCases(t *testing.T) {
	tests := []struct {
		name, in, secret string
	}{
		{"comma in the password", `{"userName":"bjensen","password":"abc,defSecret9","x":1`, "defSecret9"},
		{"brace in the password", `{"userName":"bjensen","password":"abc}defSecret9","x":1`, "defSecret9"},
		{"dotted capital I before", strings.Repeat("İ", 20) + `{"password":"hunter22xx","x":1`, "hunter22xx"},
		{"Kelvin sign before", strings.Repeat("\u212a", 20) + `{"password":"hunter22xx","x":1`, "hunter22xx"},
		{"dotted capital I, password last", strings.Repeat("İ", 20) + `password`, ""},
		{"leading spaces and a comma in the password", `{"userName":"bjensen","password":"  x,secretTail9","x":1`, "secretTail9"},
		{"value on the next line", "{\n  \"userName\": \"bjensen\",\n  \"password\":\n    \"nextLine-Secret\",\n  \"name\": {", "nextLine-Secret"},
		{"colon on the next line", "{\"userName\":\"bjensen\",\"password\"\r\n: \"nextLine-Secret\",\"x\":1", "nextLine-Secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out string
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("RedactText(%q) panicked: %v", tc.in, p)
					}
				}()
				out = shadow.RedactText(tc.in)
			}()
			if tc.secret != "" && strings.Contains(out, tc.secret) {
				t.Errorf("RedactText(%q) = %q: secret %q kept", tc.in, out, tc.secret)
			}
		})
	}
}
