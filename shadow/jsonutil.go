package shadow

import (
	"encoding/json"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// mustJSON marshals values that cannot fail to marshal (plain structs and slices).
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("shadow: marshalling " + err.Error())
	}
	return b
}

// setRaw sets a raw JSON value at an sjson path.
func setRaw(body []byte, path string, raw []byte) ([]byte, error) {
	return sjson.SetRawBytesOptions(body, path, raw, &sjson.Options{Optimistic: false})
}

// stringView is b as a string without a copy, for reading JSON with gjson: valid only while
// b is not modified, so nothing taken from it may be kept without a copy.
func stringView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// skipSpace returns the index of the first byte of s at or after i that is not JSON white
// space (len(s) when there is none).
func skipSpace(s string, i int) int {
	for i < len(s) && isJSONSpace(s[i]) {
		i++
	}
	return i
}

// isJSONSpace reports whether c is JSON white space.
func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// The scanners below read JSON text that has been validated (gjson.Valid): they only find
// where tokens end, and never check what they pass over.

// scalarEnd returns the index after the string, number or literal starting at in[i].
func scalarEnd(in string, i int) int {
	if in[i] == '"' {
		for j := i + 1; j < len(in); j++ {
			switch in[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(in)
	}
	j := i + 1
	for j < len(in) && !isJSONSpace(in[j]) && in[j] != ',' && in[j] != '}' && in[j] != ']' {
		j++
	}
	return j
}

// valueEnd returns the index after the value starting at in[i], without writing it.
func valueEnd(in string, i int) int {
	if in[i] != '{' && in[i] != '[' {
		return scalarEnd(in, i)
	}
	depth := 0
	for j := i; j < len(in); j++ {
		switch in[j] {
		case '"':
			j = scalarEnd(in, j) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return j + 1
			}
		}
	}
	return len(in)
}

// decodedString is the text of the JSON string token raw (quotes included), escapes
// decoded as gjson decodes them; a token without a backslash is sliced, not copied.
func decodedString(raw string) string {
	if strings.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	return gjson.Parse(raw).String()
}
