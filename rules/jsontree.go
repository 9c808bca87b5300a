package rules

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/tidwall/gjson"
)

// The rewriters edit JSON through a small lazily parsed tree. Each member and element
// keeps the exact bytes around it (whitespace, key spelling, value text), so untouched
// parts are re-emitted verbatim and an unchanged document is never re-serialised.
// Deleted members are only marked, so indexes held while rewriting stay valid.

// jobj is an editable JSON object.
type jobj struct {
	raw     string // original text, from '{' to '}'
	mem     []jmem
	tail    string // whitespace before '}'
	changed bool
}

// jmem is one member of a jobj.
type jmem struct {
	pre  string // whitespace before the key
	rkey string // the key as JSON text, quotes included
	key  string // the decoded key
	mid  string // whitespace and colon between key and value
	val  string // the value as JSON text (ignored while o or a is set)
	post string // whitespace between value and the next comma
	o    *jobj  // parsed object value, if parsed
	a    *jarr  // parsed array value, if parsed
	kp   *kpath // classification of the key as an attribute path, once computed
	del  bool
}

// jarr is an editable JSON array.
type jarr struct {
	raw     string
	el      []jel
	tail    string
	changed bool
}

// jel is one element of a jarr.
type jel struct {
	pre   string
	val   string
	post  string
	o     *jobj
	a     *jarr
	del   bool
	extra []string // values emitted right after this element
}

var (
	errNotJSON   = errors.New("not valid JSON")
	errNotObject = errors.New("not a JSON object")
	errTooDeep   = fmt.Errorf("JSON nested deeper than %d levels", maxNesting)
)

// parseRoot parses a request body that must be a JSON object, leaving room for extra
// added members. lead and trail are the whitespace around it.
func (ar *arena) parseRoot(body []byte, extra int) (root *jobj, lead, trail string, err error) {
	return ar.parseRootOf(body, extra, false)
}

// parseRootView is parseRoot over body itself rather than a copy: only for a call that
// lets nothing of the tree outlive it (no finding, no returned string) and whose body
// nobody changes meanwhile.
func (ar *arena) parseRootView(body []byte, extra int) (root *jobj, lead, trail string, err error) {
	return ar.parseRootOf(body, extra, true)
}

func (ar *arena) parseRootOf(body []byte, extra int, view bool) (root *jobj, lead, trail string, err error) {
	if !depthOK(body) {
		return nil, "", "", errTooDeep
	}
	if !gjson.ValidBytes(body) {
		return nil, "", "", errNotJSON
	}
	var s string
	if view {
		s = unsafe.String(unsafe.SliceData(body), len(body))
	} else {
		s = string(body)
	}
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	if i == j || s[i] != '{' {
		return nil, "", "", errNotObject
	}
	return ar.parseObjSpare(s[i:j], extra), s[:i], s[j:], nil
}

var openObject, openArray = []byte{'{'}, []byte{'['}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// depthOK reports whether the nesting of b stays within maxNesting (strings skipped).
func depthOK(b []byte) bool {
	// No more brackets than the limit cannot nest deeper: counting them is a vector loop,
	// the walk below a byte loop.
	if bytes.Count(b, openObject)+bytes.Count(b, openArray) <= maxNesting {
		return true
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			if depth > maxNesting {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

// arena hands out the tree nodes of one rewrite from pooled memory, so a rewrite
// allocates little more than its output. Nodes never outlive the call that took the
// arena; release clears everything (no pooled memory keeps a body alive).
type arena struct {
	mem  []jmem
	els  []jel
	objs []jobj
	arrs []jarr
}

// spare is the room left behind each parsed object or array for added members.
const spare = 2

var arenaPool = sync.Pool{New: func() any { return new(arena) }}

func getArena() *arena { return arenaPool.Get().(*arena) }

// release clears the arena and returns it to the pool (very large ones are dropped).
func (ar *arena) release() {
	if cap(ar.mem) > 1<<14 || cap(ar.els) > 1<<14 {
		return
	}
	clear(ar.mem)
	clear(ar.els)
	clear(ar.objs)
	clear(ar.arrs)
	ar.mem, ar.els, ar.objs, ar.arrs = ar.mem[:0], ar.els[:0], ar.objs[:0], ar.arrs[:0]
	arenaPool.Put(ar)
}

func (ar *arena) newObj() *jobj {
	if ar == nil {
		return new(jobj)
	}
	ar.objs = append(ar.objs, jobj{})
	return &ar.objs[len(ar.objs)-1]
}

func (ar *arena) newArr() *jarr {
	if ar == nil {
		return new(jarr)
	}
	ar.arrs = append(ar.arrs, jarr{})
	return &ar.arrs[len(ar.arrs)-1]
}

// parseObj parses raw, a valid JSON object text. A nil arena allocates from the heap.
func (ar *arena) parseObj(raw string) *jobj { return ar.parseObjSpare(raw, spare) }

// parseObjSpare is parseObj leaving room for extra added members.
func (ar *arena) parseObjSpare(raw string, extra int) *jobj {
	var local arena
	a := ar
	if a == nil {
		a = &local
	}
	o := a.newObj()
	o.raw = raw
	start, end := len(a.mem), 1
	for i := 1; ; {
		ks := skipSpace(raw, i)
		ke := skipString(raw, ks)
		if ke < 0 {
			break // '}' (or, on text that is not valid JSON, the end of what can be read)
		}
		c := skipSpace(raw, ke)
		if c >= len(raw) || raw[c] != ':' {
			break
		}
		vs := skipSpace(raw, c+1)
		ve := skipValue(raw, vs)
		if ve < 0 {
			break
		}
		m := jmem{key: decodeKey(raw[ks:ke]), rkey: raw[ks:ke], mid: raw[ke:vs], val: raw[vs:ve], pre: raw[end:ks]}
		if n := len(a.mem); n > start {
			if c := strings.IndexByte(m.pre, ','); c >= 0 {
				a.mem[n-1].post = m.pre[:c]
				m.pre = m.pre[c+1:]
			}
		}
		a.mem = append(a.mem, m)
		end = ve
		if i = skipSpace(raw, ve); i >= len(raw) || raw[i] != ',' {
			break
		}
		i++
	}
	n := len(a.mem)
	a.mem = append(a.mem, make([]jmem, extra)...)
	o.mem = a.mem[start : n : n+extra]
	if end <= len(raw)-1 {
		o.tail = raw[end : len(raw)-1]
	}
	return o
}

// parseArr parses raw, a valid JSON array text. A nil arena allocates from the heap.
func (ar *arena) parseArr(raw string) *jarr {
	var local arena
	b := ar
	if b == nil {
		b = &local
	}
	a := b.newArr()
	a.raw = raw
	start, end := len(b.els), 1
	for i := 1; ; {
		vs := skipSpace(raw, i)
		if vs >= len(raw) || raw[vs] == ']' {
			break
		}
		ve := skipValue(raw, vs)
		if ve < 0 {
			break
		}
		e := jel{pre: raw[end:vs], val: raw[vs:ve]}
		if n := len(b.els); n > start {
			if c := strings.IndexByte(e.pre, ','); c >= 0 {
				b.els[n-1].post = e.pre[:c]
				e.pre = e.pre[c+1:]
			}
		}
		b.els = append(b.els, e)
		end = ve
		if i = skipSpace(raw, ve); i >= len(raw) || raw[i] != ',' {
			break
		}
		i++
	}
	n := len(b.els)
	b.els = append(b.els, make([]jel, spare)...)
	a.el = b.els[start : n : n+spare]
	if end <= len(raw)-1 {
		a.tail = raw[end : len(raw)-1]
	}
	return a
}

// The scanners below find the ends of members and values of text that was validated
// (gjson.Valid) before it was parsed: they check no grammar, only stay in bounds, so on
// any other text they stop early (-1) rather than fail. They replace gjson's ForEach,
// which also decodes every key, string and number it passes (in a profile of reverse
// mapping the 2 KB user, ForEach's own work was 27% of the time).

// skipSpace returns the index of the first byte at or after i that is not JSON
// whitespace, or len(s).
func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// skipString returns the index just after the string starting at s[i], or -1 when s[i]
// does not start one or it does not end.
func skipString(s string, i int) int {
	if i >= len(s) || s[i] != '"' {
		return -1
	}
	// Most keys and values end within a few bytes, where a byte loop costs less than a
	// call to IndexByte; longer ones are searched for their quote.
	j := i + 1
	for n := min(len(s), j+24); j < n; j++ {
		switch s[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	for ; j < len(s); j++ {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		escapes := 0 // a quote after an odd run of backslashes is escaped
		for b := j - 1; b > i && s[b] == '\\'; b-- {
			escapes++
		}
		if escapes%2 == 0 {
			return j + 1
		}
	}
	return -1
}

// nests marks the bytes that matter when skipping an object or array: strings and brackets.
var nests = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// skipValue returns the index just after the value starting at s[i], or -1.
func skipValue(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			switch c := s[i]; {
			case !nests[c]:
			case c == '"': // skipped here rather than by skipString: nested strings are short
				for i++; i < len(s) && s[i] != '"'; i++ {
					if s[i] == '\\' {
						i++
					}
				}
			case c == '{' || c == '[':
				depth++
			default:
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	j := i
	for j < len(s) && !isSpace(s[j]) && s[j] != ',' && s[j] != '}' && s[j] != ']' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// decodeKey returns the decoded text of a member's key (its JSON text, quotes included).
func decodeKey(rkey string) string {
	if strings.IndexByte(rkey, '\\') < 0 {
		return rkey[1 : len(rkey)-1]
	}
	return gjson.Parse(rkey).Str
}

// dirty reports whether o or anything below it changed.
func (o *jobj) dirty() bool {
	if o.changed {
		return true
	}
	for i := range o.mem {
		m := &o.mem[i]
		if m.o != nil && m.o.dirty() || m.a != nil && m.a.dirty() {
			return true
		}
	}
	return false
}

func (a *jarr) dirty() bool {
	if a.changed {
		return true
	}
	for i := range a.el {
		e := &a.el[i]
		if e.o != nil && e.o.dirty() || e.a != nil && e.a.dirty() {
			return true
		}
	}
	return false
}

// appendTo appends the current text of o to b.
func (o *jobj) appendTo(b []byte) []byte {
	if !o.dirty() {
		return append(b, o.raw...)
	}
	b = append(b, '{')
	first := true
	for i := range o.mem {
		m := &o.mem[i]
		if m.del {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, m.pre...)
		b = append(b, m.rkey...)
		b = append(b, m.mid...)
		b = appendValue(b, m.val, m.o, m.a)
		b = append(b, m.post...)
	}
	b = append(b, o.tail...)
	return append(b, '}')
}

func (a *jarr) appendTo(b []byte) []byte {
	if !a.dirty() {
		return append(b, a.raw...)
	}
	b = append(b, '[')
	first := true
	for i := range a.el {
		e := &a.el[i]
		if !e.del {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, e.pre...)
			b = appendValue(b, e.val, e.o, e.a)
			b = append(b, e.post...)
		}
		for _, x := range e.extra {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, e.pre...)
			b = append(b, x...)
		}
	}
	b = append(b, a.tail...)
	return append(b, ']')
}

func appendValue(b []byte, val string, o *jobj, a *jarr) []byte {
	switch {
	case o != nil:
		return o.appendTo(b)
	case a != nil:
		return a.appendTo(b)
	}
	return append(b, val...)
}

// text returns the current JSON text of a value.
func valueText(val string, o *jobj, a *jarr) string {
	switch {
	case o != nil && o.dirty():
		return string(o.appendTo(nil))
	case a != nil && a.dirty():
		return string(a.appendTo(nil))
	case o != nil:
		return o.raw
	case a != nil:
		return a.raw
	}
	return val
}

// obj returns the member's value as an editable object, or nil if it is not one.
func (m *jmem) obj(ar *arena) *jobj {
	if m.o == nil && m.a == nil && len(m.val) > 0 && m.val[0] == '{' {
		m.o = ar.parseObj(m.val)
	}
	return m.o
}

// arr returns the member's value as an editable array, or nil if it is not one.
func (m *jmem) arr(ar *arena) *jarr {
	if m.a == nil && m.o == nil && len(m.val) > 0 && m.val[0] == '[' {
		m.a = ar.parseArr(m.val)
	}
	return m.a
}

func (e *jel) obj(ar *arena) *jobj {
	if e.o == nil && e.a == nil && len(e.val) > 0 && e.val[0] == '{' {
		e.o = ar.parseObj(e.val)
	}
	return e.o
}

// isNull reports whether the member's value is JSON null.
func (m *jmem) isNull() bool { return m.o == nil && m.a == nil && m.val == "null" }

// hasValue reports whether the member holds a value in the RFC 7643 §2.5 sense: not
// null and not an empty array.
func (m *jmem) hasValue() bool {
	switch {
	case m.o != nil:
		return true
	case m.a != nil:
		return m.a.live() > 0
	case m.val == "null":
		return false
	case len(m.val) > 0 && m.val[0] == '[':
		return !emptyArrayText(m.val)
	}
	return true
}

func emptyArrayText(s string) bool {
	for i := 1; i < len(s)-1; i++ {
		if !isSpace(s[i]) {
			return false
		}
	}
	return true
}

// text returns the member's current value text.
func (m *jmem) text() string { return valueText(m.val, m.o, m.a) }

// setValue replaces a member's value with JSON text v.
func (o *jobj) setValue(i int, v string) {
	m := &o.mem[i]
	m.val, m.o, m.a = v, nil, nil
	o.changed = true
}

// moveValue gives member i of o the value of src (which the caller then deletes).
func (o *jobj) moveValue(i int, src *jmem) {
	m := &o.mem[i]
	m.val, m.o, m.a = src.val, src.o, src.a
	o.changed = true
}

// rename changes the key of member i; qkey is the JSON-quoted form of key.
func (o *jobj) rename(i int, key, qkey string) {
	m := &o.mem[i]
	m.key, m.rkey, m.kp = key, qkey, nil
	o.changed = true
}

// remove marks member i deleted.
func (o *jobj) remove(i int) {
	o.mem[i].del = true
	o.changed = true
}

// add appends a member and returns its index. The whitespace of the last member is
// copied so pretty-printed input stays readable.
func (o *jobj) add(key, qkey, v string) int {
	m := jmem{key: key, rkey: qkey, mid: ":", val: v}
	for i := len(o.mem) - 1; i >= 0; i-- {
		if !o.mem[i].del {
			m.pre, m.mid = o.mem[i].pre, o.mem[i].mid
			break
		}
	}
	o.mem = append(o.mem, m)
	o.changed = true
	return len(o.mem) - 1
}

// live counts the members not deleted.
func (o *jobj) live() int {
	n := 0
	for i := range o.mem {
		if !o.mem[i].del {
			n++
		}
	}
	return n
}

func (a *jarr) live() int {
	n := 0
	for i := range a.el {
		if !a.el[i].del {
			n++
		}
		n += len(a.el[i].extra)
	}
	return n
}

// push appends an element.
func (a *jarr) push(v string) {
	e := jel{val: v}
	for i := len(a.el) - 1; i >= 0; i-- {
		if !a.el[i].del {
			e.pre = a.el[i].pre
			break
		}
	}
	a.el = append(a.el, e)
	a.changed = true
}

// removeEl marks element i deleted.
func (a *jarr) removeEl(i int) {
	a.el[i].del = true
	a.changed = true
}

// plainIndex finds the member whose key equals name case-insensitively, preferring the
// exact spelling; deleted members are skipped. It returns -1 when there is none.
func (o *jobj) plainIndex(name string) int {
	found := -1
	for i := range o.mem {
		m := &o.mem[i]
		if m.del || len(m.key) != len(name) {
			continue
		}
		if m.key == name {
			return i
		}
		if found < 0 && foldEq(m.key, name) {
			found = i
		}
	}
	return found
}

// quote returns s as a JSON string.
func quote(s string) string {
	return string(gjson.AppendJSONString(make([]byte, 0, len(s)+2), s))
}

// stringValue returns the decoded string of JSON text v and whether v is a string.
func stringValue(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if strings.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], true
	}
	return gjson.Parse(v).Str, true
}

// foldEq compares attribute names and schema URNs: ASCII case-insensitively, as RFC 7643
// names are ASCII. Non-ASCII bytes must match exactly.
func foldEq(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c, d := a[i], b[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether s starts with prefix, compared with foldEq.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && foldEq(s[:len(prefix)], prefix)
}
