package shadow_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scim-shadow/caddy-scim-shadow/bench"
	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// treeWalkRedact is RedactBody as it was before the single-pass walk: gjson's ForEach over
// every object and array. It is kept here as the reference FuzzRedactMatchesTreeWalk holds
// the single pass to, byte for byte.
func treeWalkRedact(body []byte) []byte {
	if len(body) == 0 || !gjson.ValidBytes(body) {
		return body
	}
	if !rules.MayContainFold(body, "password") && bytes.IndexByte(body, '\\') < 0 {
		return body
	}
	return treeWalkAppend(nil, gjson.ParseBytes(body))
}

func treeWalkAppend(out []byte, v gjson.Result) []byte {
	switch {
	case v.IsObject():
		pathIsPassword := false
		v.ForEach(func(k, val gjson.Result) bool {
			if strings.EqualFold(k.String(), "path") && treeWalkIsPasswordPath(strings.TrimSpace(val.String())) {
				pathIsPassword = true
			}
			return true
		})
		out = append(out, '{')
		first := true
		v.ForEach(func(k, val gjson.Result) bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, k.Raw...)
			out = append(out, ':')
			key := k.String()
			if val.Type != gjson.Null && (treeWalkIsPasswordPath(key) || (pathIsPassword && strings.EqualFold(key, "value"))) {
				out = append(out, `"`+shadow.Redacted+`"`...)
				return true
			}
			out = treeWalkAppend(out, val)
			return true
		})
		return append(out, '}')
	case v.IsArray():
		out = append(out, '[')
		first := true
		v.ForEach(func(_, val gjson.Result) bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = treeWalkAppend(out, val)
			return true
		})
		return append(out, ']')
	default:
		return append(out, v.Raw...)
	}
}

func treeWalkIsPasswordPath(p string) bool {
	if strings.EqualFold(p, "password") {
		return true
	}
	n := len("password")
	return len(p) > n && strings.EqualFold(p[len(p)-n:], "password") && (p[len(p)-n-1] == ':' || p[len(p)-n-1] == '.')
}

func FuzzRedactMatchesTreeWalk(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen","password":"t1meMachine!","active":true}`,
		` { "a" : [ 1 , -2.5e3 , true , null , { } , [ ] ] , "password" : null , "Password" : { "x" : "y" } } `,
		`{"Operations":[{"value":"first","op":"replace","path":"password","value":{"password":"x"}},{"op":"add","path":" urn:ietf:params:scim:schemas:core:2.0:User:password ","value":"s"}]}`,
		`{"Operations":[{"op":"replace","path":"name.password","value":null},{"path":7,"value":"n"},{"path":{"a":"password"},"value":"o"}]}`,
		`{"pass\u0077ord":"escaped","p\"q":"x\\y","path":"pass\u0057ORD","value":[1,{"password":2}]}`,
		`[{"password":"inArray1"},"password",["password"]]`,
		`"password"`,
		`  12  `,
		`{"":{"":""},"value":"v","path":"password"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		var got []byte
		noPanic(t, "RedactBody", func() { got = shadow.RedactBody(body) })
		if want := treeWalkRedact(in); !bytes.Equal(got, want) {
			t.Fatalf("RedactBody(%q)\n = %q\nwant %q (the tree walk)", in, got, want)
		}
		if !bytes.Equal(body, in) {
			t.Fatalf("RedactBody changed its input %q to %q", in, body)
		}
	})
}

// BenchmarkRedactBody compares the single pass with the tree walk on the load harness's
// ~2 KB user, which has a password.
func BenchmarkRedactBody(b *testing.B) {
	body := []byte(bench.UserBody(7))
	for _, c := range []struct {
		name   string
		redact func([]byte) []byte
	}{{"single-pass", shadow.RedactBody}, {"tree-walk", treeWalkRedact}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.redact(body)
			}
		})
	}
}
