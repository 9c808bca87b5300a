package shadow

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// The prediction decodes every body, live state and projection into encoding/json trees
// (map[string]any, []any, json.Number, string, bool, nil): the PATCH engine and Diff work on
// them. encoding/json's Decoder scans each document twice (once to find its end, once to
// decode) with a byte-at-a-time state machine, which made decoding a large share of a
// preview write's CPU. decodeJSONValue builds the same tree from gjson's parse instead, for
// the documents where the two decoders provably agree: valid UTF-8, valid JSON with nothing
// after the value, nesting within encoding/json's limit, and no escaped UTF-16 surrogate (a
// lone one becomes U+FFFD in encoding/json). Everything else goes through encoding/json,
// so errors and odd inputs behave exactly as before. FuzzDecodeJSONValue holds the two to
// the same result.

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
	if !utf8.Valid(raw) || !gjson.ValidBytes(raw) || hasSurrogateEscape(raw) {
		return nil, false
	}
	// One copy: the tree's strings point into it, never into raw (callers reuse raw).
	return fromGJSON(gjson.Parse(string(raw)), 0)
}

// fromGJSON converts one parsed value; ok is false past maxDecodeDepth.
func fromGJSON(r gjson.Result, depth int) (any, bool) {
	switch r.Type {
	case gjson.Null:
		return nil, true
	case gjson.False:
		return false, true
	case gjson.True:
		return true, true
	case gjson.Number:
		return json.Number(r.Raw), true
	case gjson.String:
		return r.Str, true
	}
	if depth >= maxDecodeDepth {
		return nil, false
	}
	ok := true
	if r.IsArray() {
		out := []any{}
		r.ForEach(func(_, el gjson.Result) bool {
			var v any
			v, ok = fromGJSON(el, depth+1)
			out = append(out, v)
			return ok
		})
		return out, ok
	}
	out := map[string]any{}
	r.ForEach(func(k, el gjson.Result) bool {
		var v any
		v, ok = fromGJSON(el, depth+1)
		out[k.Str] = v
		return ok
	})
	return out, ok
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
