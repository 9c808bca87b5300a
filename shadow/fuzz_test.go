package shadow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
	"github.com/tidwall/gjson"
)

// Fuzz targets for the parsers of untrusted input in shadow/: request classification,
// body and text redaction, and the whole preview request path. Crashers worth keeping
// live in testdata/fuzz/<FuzzName>/ and run as part of go test.

// noPanic runs fn, failing the test (instead of the whole binary) when it panics.
func noPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s panicked: %v", what, p)
		}
	}()
	fn()
}

var writeMethods = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

func FuzzClassify(f *testing.F) {
	for _, s := range [][2]string{
		{"POST", "/scim/v2/Users"},
		{"GET", "/scim/v2/Users"},
		{"PUT", "/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"},
		{"PATCH", "/tenants/acme/scim/v2/Groups/abc"},
		{"DELETE", "/Users/john doe"},
		{"HEAD", "/users/"},
		{"OPTIONS", "/scim/v2/Users"},
		{"POST", "/scim/v2/.search"},
		{"POST", "/scim/v2/Groups/.search"},
		{"POST", "/scim/v2/Bulk"},
		{"GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"},
		{"GET", "/scim/v2/ServiceProviderConfig"},
		{"DELETE", "/scim/v2/Users/.."},
		{"PATCH", "/scim/v2/Users/a/b"},
		{"PATCH", "//Users//"},
		{"post", "/Users"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		var got shadow.Target
		noPanic(t, fmt.Sprintf("Classify(%q, %q)", method, path), func() { got = shadow.Classify(method, path, nil) })
		if again := shadow.Classify(method, path, nil); again != got {
			t.Fatalf("not deterministic: %+v then %+v", got, again)
		}
		wantMethod := map[shadow.Operation][]string{
			shadow.OpCreate: {"POST"}, shadow.OpReplace: {"PUT"}, shadow.OpPatch: {"PATCH"},
			shadow.OpDelete: {"DELETE"}, shadow.OpBulk: {"POST"}, shadow.OpSearch: {"POST"},
			shadow.OpRead: {"GET", "HEAD"}, shadow.OpOther: nil,
		}
		methods, known := wantMethod[got.Op]
		if !known {
			t.Fatalf("unknown operation %q", got.Op)
		}
		if methods != nil && !slices.Contains(methods, method) {
			t.Fatalf("Classify(%q, %q) = %s, which a %q request cannot be", method, path, got.Op, method)
		}
		isWrite := got.Op == shadow.OpCreate || got.Op == shadow.OpReplace || got.Op == shadow.OpPatch ||
			got.Op == shadow.OpDelete || got.Op == shadow.OpBulk
		if got.Op.IsWrite() != isWrite || isWrite && !writeMethods[method] {
			t.Fatalf("Classify(%q, %q) = %s: IsWrite %v from method %q", method, path, got.Op, got.Op.IsWrite(), method)
		}
		switch got.Op {
		case shadow.OpCreate, shadow.OpReplace, shadow.OpPatch, shadow.OpDelete:
			if got.Endpoint != "Users" && got.Endpoint != "Groups" || got.ResourceType == "" {
				t.Fatalf("Classify(%q, %q) = %+v: a resource write without a resource endpoint", method, path, got)
			}
			if (got.ID == "") != (got.Op == shadow.OpCreate) {
				t.Fatalf("Classify(%q, %q) = %+v: id and operation disagree", method, path, got)
			}
		case shadow.OpBulk:
			if got.Endpoint != "Bulk" || got.ID != "" {
				t.Fatalf("Classify(%q, %q) = %+v", method, path, got)
			}
		}
		if got.ID != "" {
			// The id is the last segment of the (escaped) path, unescaped, and never . or ..
			segs := strings.Split(strings.Trim(path, "/"), "/")
			last, err := url.PathUnescape(segs[len(segs)-1])
			if err != nil {
				last = segs[len(segs)-1]
			}
			if got.ID != last || got.ID == "." || got.ID == ".." {
				t.Fatalf("Classify(%q, %q) = %+v: impossible id", method, path, got)
			}
		}
		// The base path does not matter, whatever its segments are called: a tenant can
		// be named like an endpoint ("/tenants/users/scim/v2/…").
		segs := strings.Split(strings.Trim(path, "/"), "/")
		for _, tenant := range []string{"t1", segs[len(segs)-1]} {
			base := "/tenants/" + tenant + "/scim/v2/"
			if based := shadow.Classify(method, base+strings.TrimLeft(path, "/"), nil); !sameTarget(based, got) {
				t.Fatalf("%q under base path %s classifies as %+v, bare as %+v", path, base, based, got)
			}
		}
	})
}

// passwordValues walks a JSON document and returns the raw (quoted) string values of
// members whose key is "password" in any case, and whether any key or string anywhere
// mentions "password".
func passwordValues(v gjson.Result, raws *[]string, mentions *bool) {
	switch {
	case v.IsObject():
		v.ForEach(func(k, val gjson.Result) bool {
			if strings.Contains(strings.ToLower(k.String()), "password") {
				*mentions = true
			}
			if strings.EqualFold(k.String(), "password") && val.Type == gjson.String {
				*raws = append(*raws, val.Raw)
			}
			passwordValues(val, raws, mentions)
			return true
		})
	case v.IsArray():
		v.ForEach(func(_, val gjson.Result) bool {
			passwordValues(val, raws, mentions)
			return true
		})
	case v.Type == gjson.String:
		if strings.Contains(strings.ToLower(v.String()), "password") {
			*mentions = true
		}
	}
}

func FuzzRedactBody(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com","name":{"givenName":"Barbara","familyName":"Jensen"},"emails":[{"primary":true,"value":"bjensen@example.com","type":"work"}],"password":"t1meMachine!","active":true}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"password","value":"n3wPassw0rd"}]}`,
		`{"Operations":[{"op":"Replace","value":{"password":"entraPw12","active":"False"}}]}`,
		`{"urn:ietf:params:scim:schemas:core:2.0:User:password":"urnSecret"}`,
		`{"Operations":[{"method":"POST","path":"/Users","bulkId":"q1","data":{"userName":"a","PASSWORD":"bulkSecret"}}]}`,
		`{"a.b":{"password":"dotSecret"},"c*d":[{"Password":"starSecret"}]}`,
		`{"password":null,"x":[1,2,{"y":"password"}]}`,
		`{"userName":"bjensen","password":"trunc`,
		`[{"password":"inArray1"}]`,
		`not json at all`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		var out []byte
		noPanic(t, fmt.Sprintf("RedactBody(%q)", in), func() { out = shadow.RedactBody(body) })
		valid := json.Valid(in)
		if json.Valid(out) != valid {
			t.Fatalf("RedactBody(%q) = %q: validity changed from %v", in, out, valid)
		}
		if !valid {
			if !bytes.Equal(out, in) {
				t.Fatalf("RedactBody changed invalid JSON %q to %q", in, out)
			}
			return
		}
		var raws []string
		mentions := false
		passwordValues(gjson.ParseBytes(in), &raws, &mentions)
		if !mentions && !bytes.Equal(out, in) {
			t.Fatalf("RedactBody(%q) = %q: changed a body without any password", in, out)
		}
		for _, raw := range raws {
			inner := raw[1 : len(raw)-1]
			if len(inner) < 4 || bytes.Count(in, []byte(inner)) != 1 || strings.Contains(`"`+shadow.Redacted+`"`, inner) {
				continue // too short, or the same text is elsewhere in the body
			}
			if bytes.Contains(out, []byte(inner)) {
				t.Fatalf("RedactBody(%s) = %s: password %s kept", in, out, raw)
			}
		}
	})
}

func FuzzRedactText(f *testing.F) {
	f.Add(`{"userName":"bjensen","name":{"givenName":"Bar`, "t1meMachine", `,"active":true`)
	f.Add(`userName=bjensen&`, "formSecret", `&x=1`)
	f.Add(``, "abcd", ``)
	f.Add(`{"emails":[{"value":"b@example.com"}],`, "pw-with,comma", `}`)
	f.Fuzz(func(t *testing.T, prefix, secret, suffix string) {
		// Whatever the text, RedactText must not panic.
		noPanic(t, fmt.Sprintf("RedactText(%q)", prefix+secret+suffix), func() { _ = shadow.RedactText(prefix + secret + suffix) })

		// A password member in broken JSON is masked: its value up to the closing quote.
		// No 4 bytes of the value that occur nowhere else in the text may survive.
		if len(secret) < 4 || len(secret) > 256 || strings.ContainsAny(secret, "\"\\") ||
			strings.Contains(strings.ToLower(prefix+secret), "password") {
			return
		}
		seps := []string{`":"`, `": "`, "\":\n  \"", "\"\r\n: \"", `" = "`}
		text := prefix + `"password` + seps[len(suffix)%len(seps)] + secret + `"` + suffix
		var out string
		noPanic(t, fmt.Sprintf("RedactText(%q)", text), func() { out = shadow.RedactText(text) })
		for i := 0; i+4 <= len(secret); i++ {
			g := secret[i : i+4]
			if strings.Count(text, g) != 1 || strings.Contains(shadow.Redacted, g) {
				continue
			}
			if strings.Contains(out, g) {
				t.Fatalf("RedactText(%q) = %q: %q of the password kept", text, out, g)
			}
		}
	})
}

var (
	fuzzBearer      = "Bearer fuzz-secret-token-8c1d"
	jsonPasswordRe  = regexp.MustCompile(`(?i)"password"\s*:\s*"([A-Za-z0-9]{6,})"`)
	alnumRe         = regexp.MustCompile(`^[A-Za-z0-9]{6,}$`)
	fuzzEngineSeeds = []struct {
		method, path, contentType, body string
	}{
		{"POST", "/scim/v2/Users", "application/scim+json; charset=utf-8",
			`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com","name":{"givenName":"Barbara","familyName":"Jensen"},"emails":[{"primary":true,"value":"bjensen@example.com","type":"work"}],"password":"t1meMachine","active":true,"favorite_color":"red"}`},
		{"PUT", "/scim/v2/Users/2819c223", "application/scim+json",
			`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223","userName":"bjensen","active":false}`},
		{"PATCH", "/scim/v2/Users/2819c223", "application/json",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"favorite_color","value":"blue"},{"op":"Add","value":{"password":"Entra0Secret"}}]}`},
		{"PATCH", "/tenants/acme/scim/v2/Groups/g1", "application/scim+json",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"2819c223\"]"}]}`},
		{"DELETE", "/scim/v2/Users/2819c223", "", ""},
		{"POST", "/scim/v2/Bulk", "application/scim+json",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"POST","path":"/Users","bulkId":"q1","data":{"userName":"a","favorite_color":"red"}},{"method":"DELETE","path":"/Users/b"}]}`},
		{"POST", "/scim/v2/Users/.search", "application/scim+json", `{"filter":"favorite_color eq \"red\""}`},
		{"GET", "/scim/v2/Users", "", ""},
		{"POST", "/scim/v2/Users", "text/plain", `userName=bjensen&password=plainSecret1`},
		{"POST", "/scim/v2/Users", "application/scim+json", `{"userName":"bjensen","password":"truncSecret1","name":{"giv`},
		{"PUT", "/scim/v2/Users/x", "application/scim+json", `{"big":"` + strings.Repeat("x", 5000) + `"}`},
	}
)

func FuzzEngineRequest(f *testing.F) {
	store := openStore(f)
	eng := &shadow.Engine{
		Rules:       colorRules(f),
		Connection:  func(*http.Request) string { return "fuzz" },
		DefaultMode: shadow.ModePreview,
		Store:       store,
		MaxBody:     4096,
	}
	for _, s := range fuzzEngineSeeds {
		f.Add(s.method, s.path, s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, contentType string, body []byte) {
		if method == "" {
			method = "GET"
		}
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Method = method
		r.URL = &url.URL{Path: path}
		r.RequestURI = r.URL.RequestURI()
		r.Header.Set("Authorization", fuzzBearer)
		if contentType != "" {
			r.Header["Content-Type"] = []string{contentType}
		}
		next := &recordingNext{}
		w := httptest.NewRecorder()
		noPanic(t, fmt.Sprintf("the engine on %q %q (%q, %q)", method, path, contentType, body), func() { eng.ServeHTTP(w, r, next) })

		target := shadow.Classify(method, r.URL.EscapedPath(), nil)
		readMethod := method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE"
		if target.Op == shadow.OpOther && !readMethod {
			// A write to a path the engine cannot place: in preview it must not leave either
			// (invariant 1); it may be recorded or refused.
			if got := next.writes(); len(got) != 0 {
				t.Fatalf("preview %s %q (unclassified) reached next: %+v", method, path, got)
			}
			if w.Code < 400 {
				t.Fatalf("preview %s %q (unclassified) answered %d", method, path, w.Code)
			}
			return
		}
		if !target.Op.IsWrite() {
			calls := next.calls()
			if w.Code == http.StatusRequestEntityTooLarge && target.Op == shadow.OpSearch && len(calls) == 0 {
				return
			}
			if len(calls) != 1 || calls[0].Method != method {
				t.Fatalf("%s %q (%s): next got %+v, want the request", method, path, target.Op, calls)
			}
			return
		}
		if got := next.writes(); len(got) != 0 {
			t.Fatalf("preview %s %q reached next: %+v", method, path, got)
		}
		switch w.Code {
		case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge, http.StatusBadRequest:
		default:
			t.Fatalf("preview %s %q answered %d %s", method, path, w.Code, w.Body)
		}
		var e scimErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e.Schemas) != 1 || e.Schemas[0] != shadow.ErrorSchema ||
			e.Status != strconv.Itoa(w.Code) || w.Header().Get("Content-Type") != shadow.ContentType {
			t.Fatalf("preview %s %q: not a SCIM error: %d %q %q (%v)", method, path, w.Code, w.Header().Get("Content-Type"), w.Body, err)
		}
		if w.Code != http.StatusTooManyRequests {
			return
		}
		id, err := strconv.ParseInt(w.Header().Get("X-Scim-Shadow-Record"), 10, 64)
		if err != nil {
			t.Fatalf("preview %s %q (%q, %q) was not recorded by a healthy store: %s", method, path, contentType, body, w.Body)
		}
		rec, err := store.Record(context.Background(), "fuzz", id)
		if err != nil {
			t.Fatalf("record %d: %v", id, err)
		}
		stored, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(stored, []byte("fuzz-secret-token")) {
			t.Fatalf("the bearer token was stored: %s", stored)
		}
		// A password the body carries once (found by its raw text, or under a "password" key
		// of valid JSON, however spelled) is in none of the stored bodies.
		var secrets [][]byte
		if m := jsonPasswordRe.FindSubmatch(body); m != nil {
			secrets = append(secrets, m[1])
		}
		if gjson.ValidBytes(body) {
			var raws []string
			mentions := false
			passwordValues(gjson.ParseBytes(body), &raws, &mentions)
			for _, raw := range raws {
				if inner := raw[1 : len(raw)-1]; alnumRe.MatchString(inner) {
					secrets = append(secrets, []byte(inner))
				}
			}
		}
		var kept []byte
		for _, sr := range []shadow.StoredRequest{rec.Original, rec.Effective} {
			kept = append(append(kept, sr.Body...), sr.Text...)
		}
		kept = append(append(append(kept, rec.Live...), rec.Projected...), rec.Changes...)
		for _, secret := range secrets {
			if bytes.Count(body, secret) == 1 && !strings.Contains(path+contentType+method, string(secret)) && bytes.Contains(kept, secret) {
				t.Fatalf("password %q of %q was stored: %s", secret, body, stored)
			}
		}
	})
}
