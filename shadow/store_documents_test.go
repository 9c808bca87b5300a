package shadow

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/s2"
)

// FuzzDocuments: any six documents (some NULL, some empty) come back from
// decodeDocuments(encodeDocuments) as they went in; decodeDocuments of arbitrary bytes
// (a damaged row) answers an error or documents, never a panic, and what it answers
// encodes again to the same documents.
func FuzzDocuments(f *testing.F) {
	f.Add([]byte(`{"method":"POST"}`), []byte(`[{"op":"add"}]`), []byte(""), uint8(0b101000))
	f.Add([]byte{}, []byte{0, 1, 2}, []byte(`null`), uint8(0xff))
	f.Add(bytes.Repeat([]byte(`{"userName":"a"}`), 200), []byte(`{"id":"u1"}`), []byte(`{}`), uint8(0))
	defer func(max int) { maxDocumentsSize = max }(maxDocumentsSize)
	maxDocumentsSize = 1 << 20 // damaged values claim up to the limit: allocated each time
	f.Fuzz(func(t *testing.T, a, b, c []byte, nulls uint8) {
		var docs recordDocuments
		for i := range docs {
			if nulls&(1<<i) != 0 {
				continue
			}
			docs[i] = [][]byte{a, b, c}[i%3]
			if docs[i] == nil {
				docs[i] = []byte{}
			}
		}
		blob := encodeDocuments(&docs)
		got, err := decodeDocuments(blob)
		if err != nil {
			t.Fatalf("decode of an encoding: %v", err)
		}
		if !sameDocuments(docs, got) {
			t.Fatalf("documents %q came back %q", docs, got)
		}
		for _, damaged := range [][]byte{a, append([]byte{documentsFormat}, a...), blob[:len(blob)/2]} {
			back, err := decodeDocuments(damaged)
			if err != nil {
				continue
			}
			again, err := decodeDocuments(encodeDocuments(&back))
			if err != nil || !sameDocuments(again, back) {
				t.Fatalf("documents decoded from %q do not encode again: %v", damaged, err)
			}
		}
	})
}

// sameDocuments reports whether a and b hold the same bytes, NULL (nil) where the other has NULL.
func sameDocuments(a, b recordDocuments) bool {
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestDecodeDocumentsRejects: a value of another format, a cut block, and a block whose
// documents do not add up are errors.
func TestDecodeDocumentsRejects(t *testing.T) {
	good := encodeDocuments(&recordDocuments{[]byte(`{"a":1}`), nil, []byte(`[]`)})
	for name, blob := range map[string][]byte{
		"empty":          {},
		"json":           []byte(`{"method":"POST"}`),
		"other format":   append([]byte{documentsFormat + 1}, good[1:]...),
		"cut":            good[:len(good)-2],
		"trailing":       encodeRaw([]byte{0, 0, 0, 0, 0, 0, 'x'}),
		"short document": encodeRaw([]byte{9, 'a'}),
	} {
		if docs, err := decodeDocuments(blob); err == nil {
			t.Errorf("%s: decoded %q", name, docs)
		}
	}
}

// encodeRaw is a documents value of raw as the uncompressed text.
func encodeRaw(raw []byte) []byte {
	return append([]byte{documentsFormat}, s2.Encode(nil, raw)...)
}
