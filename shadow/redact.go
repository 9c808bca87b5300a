package shadow

import (
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
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
// depth, under any key case, under duplicate keys, URN-qualified, and as the value of a PATCH
// operation whose path is password — with Redacted. The JSON is rebuilt in one pass, so key
// order and duplicates stay as sent. A body that is not valid JSON is returned unchanged:
// callers keep such bodies only as text after RedactText.
func RedactBody(body []byte) []byte {
	if len(body) == 0 || !gjson.ValidBytes(body) || !containsFold(body, "password") {
		return body
	}
	out := make([]byte, 0, len(body))
	return appendRedacted(out, gjson.ParseBytes(body))
}

// appendRedacted appends v to out with every password value replaced.
func appendRedacted(out []byte, v gjson.Result) []byte {
	switch {
	case v.IsObject():
		// A PATCH operation {"op":…, "path":"password", "value":…} carries the secret in value.
		pathIsPassword := false
		v.ForEach(func(k, val gjson.Result) bool {
			if strings.EqualFold(k.String(), "path") && isPasswordPath(strings.TrimSpace(val.String())) {
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
			if val.Type != gjson.Null && (isPasswordPath(key) || (pathIsPassword && strings.EqualFold(key, "value"))) {
				out = append(out, `"`+Redacted+`"`...)
				return true
			}
			out = appendRedacted(out, val)
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
			out = appendRedacted(out, val)
			return true
		})
		return append(out, ']')
	default:
		return append(out, v.Raw...)
	}
}

// isPasswordPath matches "password", its URN-qualified form, and dotted forms ending in it.
func isPasswordPath(p string) bool {
	if strings.EqualFold(p, "password") {
		return true
	}
	n := len("password")
	return len(p) > n && strings.EqualFold(p[len(p)-n:], "password") && (p[len(p)-n-1] == ':' || p[len(p)-n-1] == '.')
}

// containsFold reports whether b contains the ASCII word w in any case.
func containsFold(b []byte, w string) bool {
	return indexFold(string(b), w, 0) >= 0
}

// indexFold finds the ASCII word w in s from byte offset i, ignoring ASCII case; byte
// offsets stay those of s (lower-casing s itself can change its length).
func indexFold(s, w string, i int) int {
	for ; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) {
			return i
		}
	}
	return -1
}

// RedactText masks what looks like a password in a body that is not valid JSON, so a
// truncated or malformed body never leaks one: after each "password" key (followed by ':' or,
// in a form body, '='), a quoted value is masked up to its closing quote (or the end of the
// text), an unquoted one up to the next comma, brace, '&' or line end.
func RedactText(text string) string {
	var b strings.Builder
	i := 0
	for {
		j := indexFold(text, "password", i)
		if j < 0 {
			b.WriteString(text[i:])
			return b.String()
		}
		j += len("password")
		k := j
		for k < len(text) && (text[k] == '"' || text[k] == ' ' || text[k] == '\t' || text[k] == ':' || text[k] == '=' || text[k] == '\\') {
			k++
		}
		if k == j || !strings.ContainsAny(text[j:k], ":=") {
			b.WriteString(text[i:j]) // "password" not followed by ':' or '=': not a key
			i = j
			continue
		}
		b.WriteString(text[i:k])
		quoted := text[k-1] == '"'
		end := len(text)
		if quoted {
			for m := k; m < len(text); m++ {
				if text[m] == '\\' {
					m++
					continue
				}
				if text[m] == '"' {
					end = m
					break
				}
			}
		} else if m := strings.IndexAny(text[k:], ",}&\n"); m >= 0 {
			end = k + m
		}
		b.WriteString(Redacted)
		i = end
	}
}
