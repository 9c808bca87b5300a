package rules

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// Reverse mapping: a response from the backend carries each mapped attribute at the
// rule's target; the IdP sent it at one of the rule's From paths and compares what it
// reads back with what it sent (Entra's state sync does so on every cycle). Reversing
// moves the value back to the From path the connection uses, so the IdP sees its own
// shape. Only rules whose From path the caller names are reversed: a connection that
// sends the target itself sees the backend's shape.

// SourceFunc names the From path (as written in the rule) a connection sends a rule's
// target at, or "" when it sends none (or the target itself).
type SourceFunc func(resourceType, target string) string

// ReverseResponse rewrites a response body — one resource, or a ListResponse whose
// Resources are rewritten one by one (each by its meta.resourceType, else resourceType)
// — back to the From paths used names. It returns the body (the same slice when nothing
// moved), the number of attributes moved, and an error for a body that is not a JSON
// object (returned unchanged).
func (s *Set) ReverseResponse(resourceType string, body []byte, used SourceFunc) ([]byte, int, error) {
	return s.AppendReverseResponse(nil, resourceType, body, used)
}

// AppendReverseResponse is ReverseResponse writing a moved body into dst's spare room (a
// new slice when dst is nil or too short, as append does; dst must not overlap body).
// When nothing moved it returns body itself, as ReverseResponse does. A body that starts
// like an object but names no attribute to move back is returned without being parsed, so
// without an error even when it is not valid JSON.
func (s *Set) AppendReverseResponse(dst []byte, resourceType string, body []byte, used SourceFunc) ([]byte, int, error) {
	if s.Empty() || used == nil {
		return body, 0, nil
	}
	if startsObject(body) && !s.mayReverse(body, used) {
		return body, 0, nil
	}
	return s.appendReverse(dst, resourceType, body, used)
}

// appendReverse is AppendReverseResponse without the look for names: it parses body.
func (s *Set) appendReverse(dst []byte, resourceType string, body []byte, used SourceFunc) ([]byte, int, error) {
	ar := getArena()
	defer ar.release()
	// A view, not a copy: nothing of the tree outlives the call (the moves build a new
	// body; reverse mapping makes no findings).
	root, lead, trail, err := ar.parseRootView(body, spare)
	if err != nil {
		return body, 0, fmt.Errorf("rules: reverse mapping %s response: %w", resourceType, err)
	}
	moved := 0
	if ri := root.plainIndex("Resources"); ri >= 0 {
		if list := root.mem[ri].arr(ar); list != nil {
			for j := range list.el {
				if el := list.el[j].obj(ar); el != nil {
					moved += s.reverseOne(ar, el, resourceType, used)
				}
			}
		}
	} else {
		moved = s.reverseOne(ar, root, resourceType, used)
	}
	if moved == 0 || !root.dirty() {
		return body, 0, nil
	}
	out := dst[:0]
	if cap(out) < len(body)+64 {
		out = make([]byte, 0, len(body)+64)
	}
	out = append(out, lead...)
	out = root.appendTo(out)
	return append(out, trail...), moved, nil
}

// reverseOne reverses one resource object in place and counts the moves.
func (s *Set) reverseOne(ar *arena, o *jobj, resourceType string, used SourceFunc) int {
	if mi := o.plainIndex("meta"); mi >= 0 {
		if meta := o.mem[mi].obj(ar); meta != nil {
			if ti := meta.plainIndex("resourceType"); ti >= 0 {
				if t, ok := stringValue(meta.mem[ti].val); ok && t != "" {
					resourceType = t
				}
			}
		}
	}
	tr := s.lookup(resourceType)
	if tr == nil || !tr.hasFrom {
		return 0
	}
	rw := rewriter{tr: tr, ar: ar, root: o}
	moved := 0
	for _, r := range tr.rules {
		src := used(tr.name, r.target.raw)
		if src == "" {
			continue
		}
		for i, f := range r.from {
			if f.raw == src && r.fromOK[i] && rw.reverse(r.target, f) {
				moved++
				break
			}
		}
	}
	return moved
}

// reverse moves the value at target to from, unless from already holds one.
func (rw *rewriter) reverse(target, from *apath) bool {
	var tb [4]occ
	srcs := rw.collect(target, tb[:0])
	i := rw.pick(srcs, true)
	if i < 0 {
		return false // nothing to move: from need not be looked for
	}
	var fb [4]occ
	dests := rw.collect(from, fb[:0])
	if rw.pick(dests, true) >= 0 {
		return false
	}
	src := &srcs[i]
	ok, inPlace := rw.setTarget(from, dests, src, value{m: src.member()})
	if !ok {
		return false
	}
	if !inPlace {
		rw.remove(src)
	}
	return true
}

// mayReverse reports whether body may hold a value reverseOne would move: whether the name
// (rule.revName) of a target some connection source is used for occurs in it, ASCII
// case-insensitively, or a \u escape could spell one. Every resource type's rules count, as
// a ListResponse's resources name their own. False means nothing would move.
func (s *Set) mayReverse(body []byte, used SourceFunc) bool {
	escapes := 0 // 0 unknown, 1 none, 2 some
	for _, tr := range s.types {
		if !tr.hasFrom {
			continue
		}
		for _, r := range tr.rules {
			if len(r.from) == 0 || used(tr.name, r.target.raw) == "" {
				continue
			}
			if r.revName == "" || containsNameFold(body, r.revName, r.revAnchor) {
				return true
			}
			if escapes == 0 {
				escapes = 1
				if escapesNameByte(body) {
					escapes = 2
				}
			}
			if escapes == 2 {
				return true
			}
		}
	}
	return false
}

// reverseName is the name mayReverse looks for to find target in a body: its attribute
// or sub-attribute name, whichever is longer (each occurs in every spelling of the path
// as keys, so either will do; the longer is usually the rarer), lower-cased; "" when it
// holds a byte attribute names do not (then every body is parsed).
func reverseName(target *apath) string {
	n := target.attr
	if len(target.sub) > len(n) {
		n = target.sub
	}
	b := []byte(n)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case !isNameByte(c):
			return ""
		}
	}
	return string(b)
}

// isNameByte reports whether c may be part of an attribute name (RFC 7643 ATTRNAME, and
// the '$' of $ref).
func isNameByte(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '$'
}

// containsNameFold reports whether b may contain name (lower-case ASCII) ASCII
// case-insensitively. It looks for the byte of name at anchor (both cases) with
// bytes.IndexByte, then compares around each hit, so a rare anchor makes few calls. A body
// with more hits than a sixteenth of its length answers true (the parse then decides):
// that bounds the cost of the look on any body.
func containsNameFold(b []byte, name string, anchor int) bool {
	c := name[anchor]
	hits := len(b)/16 + 64
	for pass := 0; pass < 2; pass++ {
		if pass == 1 {
			if c < 'a' || c > 'z' {
				break
			}
			c -= 'a' - 'A'
		}
		// Hits before anchor or too close to the end cannot start a whole name.
		for i, end := anchor, len(b)-(len(name)-anchor)+1; i < end; i++ {
			j := bytes.IndexByte(b[i:end], c)
			if j < 0 {
				break
			}
			i += j
			if hits--; hits < 0 || foldEq(unsafe.String(&b[i-anchor], len(name)), name) {
				return true
			}
		}
	}
	return false
}

// letterRank orders the lower-case letters from the most to the least frequent in SCIM
// JSON (value, type, display, primary, schemas, example…), for rarestLetter.
const letterRank = "eatsriolnmpcuydhgvfbwkxjqz"

// MayContainFold reports whether b may contain s (lower-case ASCII), compared ASCII
// case-insensitively: false means it does not; true that it does, or that b has so many
// bytes like s's rarest letter that the look gave up. It is a quick look before a parse.
func MayContainFold(b []byte, s string) bool {
	return s == "" || containsNameFold(b, s, rarestLetter(s))
}

// rarestLetter is the index of name's rarest letter by letterRank.
func rarestLetter(name string) int {
	best, rank := 0, -1
	for i := 0; i < len(name); i++ {
		if r := strings.IndexByte(letterRank, name[i]); r > rank {
			best, rank = i, r
		}
	}
	return best
}

// escapesNameByte reports whether b holds a \u escape of a byte names are made of.
func escapesNameByte(b []byte) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`\u`))
		if j < 0 || len(b)-(i+j+2) < 4 {
			return false
		}
		i += j + 2
		if cp, err := strconv.ParseUint(string(b[i:i+4]), 16, 16); err == nil && cp < 0x80 && isNameByte(byte(cp)) {
			return true
		}
	}
}

// startsObject reports whether the first byte of b that is not white space is '{'.
func startsObject(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return c == '{'
		}
	}
	return false
}
