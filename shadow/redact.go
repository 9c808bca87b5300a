package shadow

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Redacted replaces every secret kept in the store or shown in the review.
const Redacted = "[REDACTED]"

// secretHeaders are never persisted or displayed (invariant 5).
var secretHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization", "Set-Cookie"}

// RedactHeader copies h with secret headers (and extra, case-insensitive) replaced by
// Redacted. The result is safe to store.
func RedactHeader(h http.Header, extra []string) map[string][]string {
	out := make(map[string][]string, len(h))
	for name, vals := range h {
		if isSecretHeader(name, extra) {
			out[name] = []string{Redacted}
			continue
		}
		out[name] = append([]string(nil), vals...)
	}
	return out
}

func isSecretHeader(name string, extra []string) bool {
	for _, s := range secretHeaders {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	for _, s := range extra {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	return false
}

// RedactBody replaces the value of every "password" attribute in a JSON body — at any
// depth, under any key case, and as the value of a PATCH operation whose path is password —
// with Redacted. A body that is not valid JSON is returned unchanged: callers keep such
// bodies only as text after RedactText.
func RedactBody(body []byte) []byte {
	if !gjson.ValidBytes(body) {
		return body
	}
	var paths []string
	collectSecretPaths(gjson.ParseBytes(body), "", &paths)
	for _, p := range paths {
		if out, err := sjson.SetBytes(body, p, Redacted); err == nil {
			body = out
		}
	}
	return body
}

// collectSecretPaths walks v and appends the sjson paths of every password value.
func collectSecretPaths(v gjson.Result, prefix string, paths *[]string) {
	switch {
	case v.IsObject():
		// A PATCH operation {"op":…, "path":"password", "value":…} carries the secret in value.
		pathIsPassword := isPasswordPath(v.Get("path").String())
		v.ForEach(func(k, val gjson.Result) bool {
			p := joinPath(prefix, escapeKey(k.String()))
			if isPasswordPath(k.String()) || (pathIsPassword && strings.EqualFold(k.String(), "value")) {
				if val.Type != gjson.Null {
					*paths = append(*paths, p)
				}
				return true
			}
			collectSecretPaths(val, p, paths)
			return true
		})
	case v.IsArray():
		i := 0
		v.ForEach(func(_, val gjson.Result) bool {
			collectSecretPaths(val, joinPath(prefix, strconv.Itoa(i)), paths)
			i++
			return true
		})
	}
}

// isPasswordPath matches "password" and its URN-qualified form.
func isPasswordPath(p string) bool {
	if strings.EqualFold(p, "password") {
		return true
	}
	return len(p) > len(":password") && strings.EqualFold(p[len(p)-len(":password"):], ":password")
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// escapeKey escapes the characters gjson/sjson paths treat specially.
func escapeKey(k string) string {
	if !strings.ContainsAny(k, `.*?|#@\!=<>%`) {
		return k
	}
	var b strings.Builder
	for _, r := range k {
		if strings.ContainsRune(`.*?|#@\!=<>%`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RedactText masks what looks like a password in a body that is not valid JSON, so a
// truncated or malformed body never leaks one: everything after a "password" key, up to
// the next quote-comma boundary, is replaced.
func RedactText(text string) string {
	lower := strings.ToLower(text)
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(lower[i:], "password")
		if j < 0 {
			b.WriteString(text[i:])
			return b.String()
		}
		j += i + len("password")
		b.WriteString(text[i:j])
		// Skip to the end of the value: the next comma or closing brace.
		k := strings.IndexAny(text[j:], ",}")
		if k < 0 {
			b.WriteString(`":"` + Redacted)
			return b.String()
		}
		b.WriteString(`":"` + Redacted + `"`)
		i = j + k
	}
}
