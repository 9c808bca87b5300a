package shadow

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestFoldedPairsMatchesPerNameLookup: foldedPairs pairs keys as a scan per lower-case name
// would (the sorted union of lower-cased names; per name, the first key in sorted order of
// each object and its value), for ASCII and non-ASCII keys (the Kelvin sign lowers to "k",
// the long s does not lower to "s"), keys that fold together, null values and empty keys.
func TestFoldedPairsMatchesPerNameLookup(t *testing.T) {
	keys := []string{"", "userName", "USERNAME", "username", "user_Name", "émail", "ÉMAIL", "\u212Aey", "key", "\u017Fn", "sn", "a:B", "userNam", "userNames"}
	for i := range 200 {
		a, b := map[string]any{}, map[string]any{}
		for j, k := range keys {
			switch (i*7 + j*(i%5+1)) % 5 {
			case 0:
				a[k] = j
			case 1:
				b[k] = j
			case 2:
				a[k], b[k] = j, nil
			case 3:
				a[k], b[k] = nil, j
			}
		}
		if got, want := foldedPairs(a, b), perNameLookup(a, b); !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: a=%v b=%v\nfoldedPairs  %v\nper-name     %v", i, a, b, got, want)
		}
	}
}

// perNameLookup is foldedPairs by its definition: one scan of each object per name.
func perNameLookup(a, b map[string]any) []foldedPair {
	set := map[string]bool{}
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if k != "" {
				set[strings.ToLower(k)] = true
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	pick := func(m map[string]any, lower string) (string, any) {
		found := ""
		for k := range m {
			if k != "" && strings.ToLower(k) == lower && (found == "" || k < found) {
				found = k
			}
		}
		if found == "" {
			return "", nil
		}
		return found, m[found]
	}
	out := []foldedPair{}
	for _, n := range names {
		p := foldedPair{name: n}
		p.ka, p.va = pick(a, n)
		p.kb, p.vb = pick(b, n)
		out = append(out, p)
	}
	return out
}

// FuzzEncodeChanges: encodeChanges writes what json.Marshal writes, byte for byte, for the
// changes Diff makes of two documents (a create's when live is empty, a delete's when
// projected is), with display names and a change whose old and new are the raw values the
// engine's other encoders write; none is nil.
func FuzzEncodeChanges(f *testing.F) {
	f.Add(``, `{"userName":"a<b>&c","name":{"givenName":"\u2028x"},"emails":[{"value":"e"}]}`, "add", "members", "Ann & <Bo>")
	f.Add(`{"userName":"a","title":"t"}`, `{"userName":"b","nickName":"é\u2029"}`, "replace", "title", "")
	f.Add(`{"members":[{"value":"1"},{"value":"2"}]}`, `{"members":[{"value":"2"},{"value":"3"}]}`, "remove", "p\"q\\", "\x00\xff")
	f.Add(`{"userName":"a"}`, ``, "", "", "d")
	f.Add(``, "{\"title\":\"R&D\"}", "add", "x&y", "&")
	f.Add(``, "{\"title\":\"a\u2028b\"}", "add", "t", "")
	f.Fuzz(func(t *testing.T, live, projected, op, path, display string) {
		cs := Diff([]byte(live), []byte(projected))
		for i := range cs {
			if i%2 == 0 {
				cs[i].Display = display
			}
		}
		var v any
		if json.Unmarshal([]byte(projected), &v) == nil {
			cs = append(cs, Change{Op: op, Path: path, Old: canonicalJSONValue(v), New: withoutPasswordsRaw([]byte(live)), Display: display})
		}
		var compact bytes.Buffer
		if json.Compact(&compact, []byte(projected)) == nil {
			// Any compact JSON, literal U+2028 and U+2029 included, as Marshal writes a RawMessage.
			want, err := json.Marshal(json.RawMessage(compact.Bytes()))
			if got := appendHTMLSafeRaw([]byte("x"), compact.Bytes()); err != nil || !bytes.Equal(got[1:], want) {
				t.Fatalf("appendHTMLSafeRaw = %s, json.Marshal = %s (%v)", got[1:], want, err)
			}
		}
		got := encodeChanges(cs)
		if len(cs) == 0 {
			if got != nil {
				t.Fatalf("encodeChanges of no change = %q, want nil", got)
			}
			return
		}
		want, err := json.Marshal(cs)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encodeChanges = %s\njson.Marshal = %s", got, want)
		}
	})
}

// TestDiffValuesOwnTheirBytes: the values of a diff's changes, encoded into shared buffers,
// are each what canonicalJSONValue writes, however many buffers a large create fills, and
// appending to one value does not write into the next.
func TestDiffValuesOwnTheirBytes(t *testing.T) {
	doc := map[string]any{"userName": "ann"}
	for i := range 300 {
		doc["custom"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+strings.Repeat("y", i/26)] =
			[]any{strings.Repeat("é<", i%40), "x" + strings.Repeat("z", i)}[i%2]
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cs := Diff(nil, raw)
	if len(cs) < 300 {
		t.Fatalf("%d changes, want one per attribute", len(cs))
	}
	var decoded map[string]any
	if err := decodeJSONNumbers(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		want := canonicalJSONValue(decoded[c.Path])
		if c.Op != "add" || !bytes.Equal(c.New, want) {
			t.Fatalf("change %d: %s %s = %s, want add %s", i, c.Op, c.Path, c.New, want)
		}
		_ = append(c.New, '!') // a value's slice is full: this must not reach the next value
	}
	for i, c := range cs {
		if want := canonicalJSONValue(decoded[c.Path]); !bytes.Equal(c.New, want) {
			t.Fatalf("change %d after appends: %s = %s, want %s", i, c.Path, c.New, want)
		}
	}
}
