package shadow

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
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
	if len(body) == 0 || !gjson.ValidBytes(body) {
		return body
	}
	out, _ := redactValidBody(body)
	return out
}

// redactValidBody is RedactBody of a body already known to be valid JSON. walked reports
// whether out is a new slice; when not, out is body itself (nothing to redact).
func redactValidBody(body []byte) (out []byte, walked bool) {
	// A key or path may spell the word with JSON escapes ("pass\u0077ord"), so a body with
	// any backslash is walked too; the walk compares decoded keys.
	if !rules.MayContainFold(body, "password") && bytes.IndexByte(body, '\\') < 0 {
		return body, false
	}
	// The walk copies every part it keeps into out, so it may read body in place.
	return appendRedacted(make([]byte, 0, len(body)+len(Redacted)), stringView(body)), true
}

// appendRedacted appends the valid JSON text v to out, compacted (no white space between
// tokens), with the value of every member whose name is a password path, and of every
// "value" member of an object whose "path" member is one, replaced by Redacted (a JSON
// null stays null). Names and paths are compared decoded, so escapes cannot hide them.
//
// It reads the text once, byte by byte; it replaced a walk with gjson's ForEach, which
// scanned each nested value again for every level above it and took ~6% of a recorded
// create's CPU for its two stored bodies. FuzzRedactMatchesTreeWalk holds the two to the
// same bytes.
func appendRedacted(out []byte, v string) []byte {
	out, _ = redactValue(out, v, skipSpace(v, 0))
	return out
}

// redactValue appends the value starting at in[i] (not white space) and returns out and
// the index after the value.
func redactValue(out []byte, in string, i int) ([]byte, int) {
	switch in[i] {
	case '{':
		return redactObject(out, in, i)
	case '[':
		out = append(out, '[')
		i = skipSpace(in, i+1)
		if in[i] == ']' {
			return append(out, ']'), i + 1
		}
		for {
			out, i = redactValue(out, in, i)
			i = skipSpace(in, i)
			if in[i] == ']' {
				return append(out, ']'), i + 1
			}
			out = append(out, ',') // in[i] is ','
			i = skipSpace(in, i+1)
		}
	default:
		end := scalarEnd(in, i)
		return append(out, in[i:end]...), end
	}
}

// redactObject is redactValue of an object.
func redactObject(out []byte, in string, i int) ([]byte, int) {
	out = append(out, '{')
	i = skipSpace(in, i+1)
	if in[i] == '}' {
		return append(out, '}'), i + 1
	}
	pathIsPassword := false
	var values [][2]int // where each non-null "value" member's value went in out
	for {
		keyEnd := scalarEnd(in, i) // in[i] is '"'
		key := in[i:keyEnd]
		out = append(out, key...)
		out = append(out, ':')
		i = skipSpace(in, keyEnd)
		i = skipSpace(in, i+1) // past ':'
		name := decodedString(key)
		isNull := in[i] == 'n'
		switch {
		case !isNull && isPasswordPath(name):
			out = append(out, `"`+Redacted+`"`...)
			i = valueEnd(in, i)
		default:
			start := len(out)
			if in[i] == '"' && strings.EqualFold(name, "path") {
				end := scalarEnd(in, i)
				if isPasswordPath(strings.TrimSpace(decodedString(in[i:end]))) {
					pathIsPassword = true
				}
			}
			out, i = redactValue(out, in, i)
			if !isNull && strings.EqualFold(name, "value") {
				values = append(values, [2]int{start, len(out)})
			}
		}
		i = skipSpace(in, i)
		if in[i] == '}' {
			i++
			break
		}
		out = append(out, ',') // in[i] is ','
		i = skipSpace(in, i+1)
	}
	if pathIsPassword && len(values) > 0 {
		// A PATCH operation {"op":…, "path":"password", "value":…} carries the secret
		// in value, which may come before path: replace what was written, last first.
		for j := len(values) - 1; j >= 0; j-- {
			v := values[j]
			out = append(out[:v[0]], append([]byte(`"`+Redacted+`"`), out[v[1]:]...)...)
		}
	}
	return append(out, '}'), i
}

// isPasswordPath matches "password", its URN-qualified form, and dotted forms ending in it.
func isPasswordPath(p string) bool {
	if strings.EqualFold(p, "password") {
		return true
	}
	n := len("password")
	return len(p) > n && strings.EqualFold(p[len(p)-n:], "password") && (p[len(p)-n-1] == ':' || p[len(p)-n-1] == '.')
}

// indexFold finds the ASCII word w (letters only) in s from byte offset i, ignoring
// ASCII case; byte offsets stay those of s (lower-casing s itself can change its length).
// Only where the first letter matches (c|0x20 lower-cases an ASCII letter) is the whole
// word compared: most bytes of a text are not a 'p'.
func indexFold(s, w string, i int) int {
	first := w[0] | 0x20
	for ; i+len(w) <= len(s); i++ {
		if s[i]|0x20 == first && strings.EqualFold(s[i:i+len(w)], w) {
			return i
		}
	}
	return -1
}

// RedactText masks what looks like a password in a body that is not valid JSON, so a
// truncated or malformed body never leaks one. After each "password" key — optionally closed
// by a quote or an escaped quote, then ':' or (in a form body) '=', with any whitespace
// (line breaks included) around the separator — a quoted value is masked up to its closing
// quote (or the end of the text), an unquoted one up to the next comma, brace, '&' or line end.
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
		k, quote, ok := passwordValueStart(text, j)
		if !ok {
			b.WriteString(text[i:j]) // "password" not followed by ':' or '=': not a key
			i = j
			continue
		}
		b.WriteString(text[i:k])
		end := len(text)
		if quote != "" {
			for m := k; m < len(text); m++ {
				if strings.HasPrefix(text[m:], quote) {
					end = m
					break
				}
				if text[m] == '\\' {
					m++
				}
			}
		} else if m := strings.IndexAny(text[k:], ",}&\r\n"); m >= 0 {
			end = k + m
		}
		b.WriteString(Redacted)
		i = end
	}
}

// passwordValueStart parses what follows a "password" key at text[j:]: an optional closing
// quote (" or \"), whitespace, ':' or '=', whitespace, and an optional opening quote. It
// returns where the value starts, the quote that will close it ("" for an unquoted value),
// and whether a separator was found at all.
func passwordValueStart(text string, j int) (start int, quote string, ok bool) {
	k := j
	switch {
	case strings.HasPrefix(text[k:], `\"`):
		k += 2
	case strings.HasPrefix(text[k:], `"`):
		k++
	}
	k = skipSpace(text, k)
	if k >= len(text) || (text[k] != ':' && text[k] != '=') {
		return 0, "", false
	}
	k = skipSpace(text, k+1)
	switch {
	case strings.HasPrefix(text[k:], `\"`):
		return k + 2, `\"`, true
	case strings.HasPrefix(text[k:], `"`):
		return k + 1, `"`, true
	}
	return k, "", true
}
