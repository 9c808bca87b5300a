package shadow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
)

// The documents of a record, in the order they are stored in records.documents.
const (
	docOriginal = iota
	docEffective
	docChanges
	docFindings
	docLive
	docProjected
	docCount
)

// recordDocuments are a record's documents as stored: JSON text, nil for NULL.
type recordDocuments [docCount][]byte

// documentsFormat is the first byte of records.documents: an S2 block (Snappy's format,
// extended) of each document as uvarint(length+1) and its bytes, 0 for NULL. The six are
// compressed together because they repeat each other (a create's projection and changes
// are its body again): ~10 KB of a 2 KB user's create became ~2.9 KB; 4.9 KB of a smaller
// user's became 1.3 KB in ~3 µs.
// klauspost/compress is already linked into Caddy (its encode module).
const documentsFormat = 1

// maxDocumentsSize bounds the decompressed size decodeDocuments accepts (and allocates
// for): a record's documents are bodies of at most the engine's body limit each. A
// variable so that the fuzz test can make damaged values cheap.
var maxDocumentsSize = 256 << 20

// documentsBuffers recycles the uncompressed text and the compressed block that
// encodeDocuments builds; only the block's bytes are kept, in a value of their size.
var documentsBuffers = sync.Pool{New: func() any { return new([2][]byte) }}

// encodeDocuments is the records.documents value of docs.
func encodeDocuments(docs *recordDocuments) []byte {
	bufs := documentsBuffers.Get().(*[2][]byte)
	raw := bufs[0][:0]
	for _, d := range docs {
		if d == nil {
			raw = append(raw, 0)
			continue
		}
		raw = binary.AppendUvarint(raw, uint64(len(d))+1)
		raw = append(raw, d...)
	}
	block := s2.Encode(bufs[1][:cap(bufs[1])], raw)
	out := make([]byte, 1+len(block))
	out[0] = documentsFormat
	copy(out[1:], block)
	bufs[0], bufs[1] = raw, block
	documentsBuffers.Put(bufs)
	return out
}

// decodeDocuments reads a records.documents value; the documents share one buffer.
func decodeDocuments(blob []byte) (recordDocuments, error) {
	var docs recordDocuments
	if len(blob) == 0 || blob[0] != documentsFormat {
		return docs, errors.New("documents: unknown format")
	}
	n, err := s2.DecodedLen(blob[1:])
	if err != nil {
		return docs, fmt.Errorf("documents: %w", err)
	}
	if n > maxDocumentsSize {
		return docs, fmt.Errorf("documents: %d bytes decompressed, more than %d", n, maxDocumentsSize)
	}
	raw, err := s2.Decode(make([]byte, n), blob[1:])
	if err != nil {
		return docs, fmt.Errorf("documents: %w", err)
	}
	for i := range docs {
		size, k := binary.Uvarint(raw)
		if k <= 0 || size > uint64(len(raw)-k)+1 {
			return recordDocuments{}, fmt.Errorf("documents: document %d is cut short", i)
		}
		raw = raw[k:]
		if size == 0 {
			continue
		}
		docs[i] = raw[: size-1 : size-1]
		raw = raw[size-1:]
	}
	if len(raw) != 0 {
		return recordDocuments{}, fmt.Errorf("documents: %d bytes after the last document", len(raw))
	}
	return docs, nil
}
