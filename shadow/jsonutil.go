package shadow

import (
	"encoding/json"
	"unsafe"

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
