package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// The prediction decodes every body, live state and projection into encoding/json trees
// (map[string]any, []any, json.Number, string, bool, nil): the PATCH engine and Diff work on
// them. encoding/json's Decoder scans each document twice (once to find its end, once to
// decode) with a byte-at-a-time state machine, which made decoding a large share of a
// preview write's CPU. decodeJSONValue builds the same tree in one pass over text gjson
// has validated instead (escaped strings decoded by gjson), for the documents where the
// two decoders provably agree: valid UTF-8, valid JSON with nothing after the value,
// nesting within encoding/json's limit, and no escaped UTF-16 surrogate (a lone one
// becomes U+FFFD in encoding/json). Everything else goes through encoding/json,
// so errors and odd inputs behave exactly as before. FuzzDecodeJSONValue holds the two to
// the same result.

// validJSON reports whether raw is valid UTF-8 and valid JSON. gjson's check is several
// times faster than encoding/json's and agrees with it (FuzzValidJSONAgrees); the store
// checks every document a record keeps with it.
func validJSON(raw []byte) bool { return utf8.Valid(raw) && gjson.ValidBytes(raw) }

// maxDecodeDepth is encoding/json's nesting limit; deeper documents take its path (and its
// error).
const maxDecodeDepth = 10000

// decodeJSONNumbers decodes the first JSON value of raw into v with numbers as json.Number,
// as elimity and the backend decode (trailing data is ignored).
func decodeJSONNumbers(raw []byte, v any) error {
	switch p := v.(type) {
	case *any:
		if val, ok := decodeJSONValue(raw); ok {
			*p = val
			return nil
		}
	case *map[string]any:
		if val, ok := decodeJSONValue(raw); ok {
			if m, isObj := val.(map[string]any); isObj {
				*p = m
				return nil
			}
		}
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

// decodeJSONValue is raw decoded as encoding/json decodes into an any with UseNumber, when
// the fast path applies (ok false: use encoding/json).
func decodeJSONValue(raw []byte) (v any, ok bool) {
	if !validJSON(raw) || hasSurrogateEscape(raw) {
		return nil, false
	}
	// One copy: the tree's strings point into it, never into raw (callers reuse raw).
	s := string(raw)
	v, _, ok = decodeTreeValue(s, skipSpace(s, 0), 0)
	return v, ok
}

// decodeTreeValue decodes the value at s[i] (valid JSON, not white space) and returns it
// and the index after it; ok is false past maxDecodeDepth. It reads s once: it replaced
// gjson's ForEach, which scanned each nested value again for every level above it. Strings
// without an escape are slices of s; escaped ones are decoded by gjson, as before.
func decodeTreeValue(s string, i, depth int) (v any, end int, ok bool) {
	if (s[i] == '{' || s[i] == '[') && depth >= maxDecodeDepth {
		return nil, i, false
	}
	switch s[i] {
	case '{':
		out := map[string]any{}
		i = skipSpace(s, i+1)
		if s[i] == '}' {
			return out, i + 1, true
		}
		for {
			keyEnd := scalarEnd(s, i)
			key := decodedString(s[i:keyEnd])
			i = skipSpace(s, skipSpace(s, keyEnd)+1) // past ':'
			var el any
			if el, i, ok = decodeTreeValue(s, i, depth+1); !ok {
				return nil, i, false
			}
			out[key] = el
			i = skipSpace(s, i)
			if s[i] == '}' {
				return out, i + 1, true
			}
			i = skipSpace(s, i+1) // past ','
		}
	case '[':
		out := []any{}
		i = skipSpace(s, i+1)
		if s[i] == ']' {
			return out, i + 1, true
		}
		for {
			var el any
			if el, i, ok = decodeTreeValue(s, i, depth+1); !ok {
				return nil, i, false
			}
			out = append(out, el)
			i = skipSpace(s, i)
			if s[i] == ']' {
				return out, i + 1, true
			}
			i = skipSpace(s, i+1) // past ','
		}
	case '"':
		end = scalarEnd(s, i)
		return decodedString(s[i:end]), end, true
	case 't':
		return true, i + 4, true
	case 'f':
		return false, i + 5, true
	case 'n':
		return nil, i + 4, true
	default:
		end = scalarEnd(s, i)
		return json.Number(s[i:end]), end, true
	}
}

// hasSurrogateEscape reports whether raw holds a \uD800–\uDFFF escape (either case).
func hasSurrogateEscape(raw []byte) bool {
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += j + 2
		if i < len(raw) && (raw[i] == 'd' || raw[i] == 'D') && i+1 < len(raw) {
			switch raw[i+1] {
			case '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'A', 'B', 'C', 'D', 'E', 'F':
				return true
			}
		}
	}
}

// encodeJSONCompact marshals without HTML escaping (as the backend answers) and without the
// encoder's trailing newline, into a buffer of capacity size to begin with (the expected
// length; 0 lets it grow from nothing).
func encodeJSONCompact(v any, size int) ([]byte, error) {
	if out, ok := appendJSONTree(make([]byte, 0, size), v); ok {
		return out, nil
	}
	return encodeJSONLibrary(v)
}

// encodeJSONLibrary is encodeJSONCompact by encoding/json alone.
func encodeJSONLibrary(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendJSONTree appends v, a decoded JSON tree (maps, slices, strings, json.Number,
// bools, nil), as encodeJSONLibrary writes it: keys sorted, no HTML escaping. Strings of
// plain ASCII (no control character, quote or backslash) are written as they are; any
// other string and every number go through encoding/json, so its escaping and number
// checks stay the only ones. ok is false for a value of another type. The prediction
// encodes every projection and each value of a diff: encoding/json's reflection and
// per-map key sorting were a tenth of a preview write's CPU. FuzzAppendJSONTree holds
// the two to the same bytes.
func appendJSONTree(dst []byte, v any) ([]byte, bool) {
	switch vv := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case bool:
		if vv {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case string:
		return appendJSONString(dst, vv)
	case json.Number:
		out, err := encodeJSONLibrary(vv)
		return append(dst, out...), err == nil
	case []any:
		dst = append(dst, '[')
		for i, el := range vv {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSONTree(dst, el); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range sortedObjectKeys(vv) {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSONString(dst, k); !ok {
				return dst, false
			}
			dst = append(dst, ':')
			if dst, ok = appendJSONTree(dst, vv[k]); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	}
	return dst, false
}

// appendJSONString appends s quoted: directly when it is plain printable ASCII without a
// quote or backslash, else as encoding/json writes it.
func appendJSONString(dst []byte, s string) ([]byte, bool) {
	if !plainJSONString(s, false) {
		out, err := encodeJSONLibrary(s)
		return append(dst, out...), err == nil
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// plainJSONString reports whether s is written in JSON as it is, between quotes: printable
// ASCII without a quote or backslash, and, when html, without <, > or & (which
// json.Marshal escapes).
func plainJSONString(s string, html bool) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f || c == '"' || c == '\\':
			return false
		case html && (c == '<' || c == '>' || c == '&'):
			return false
		}
	}
	return true
}
