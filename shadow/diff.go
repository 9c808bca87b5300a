package shadow

import (
	"bytes"
	"encoding/json"
	"math/big"
	"slices"
	"sort"
	"strings"
)

// Diff works on encoding/json trees rather than gjson paths: it matches attribute names
// case-insensitively, pairs array elements by value and compares values up to JSON
// formatting (key order, whitespace, escapes, number spelling), none of which gjson
// offers without decoding anyway.

// Change is one difference between a live and a projected resource.
type Change struct {
	Op      string          `json:"op"`                // "add", "remove", "replace"
	Path    string          `json:"path"`              // "favoriteColor", "name.givenName", "emails", "members", "urn:…:User:department"
	Old     json.RawMessage `json:"old,omitempty"`     // the value before (remove, replace)
	New     json.RawMessage `json:"new,omitempty"`     // the value after (add, replace)
	Display string          `json:"display,omitempty"` // a member's display name (members changes), filled by the caller
}

// encodeChanges is json.Marshal of cs, byte for byte, for the changes Diff makes (their
// Old and New are compact JSON, which Marshal would only HTML-escape); nil for none.
// Marshal took ~2.5% of a recorded create's CPU in an initial sync's profile, about half of
// it compacting and checking Old and New again (bench/NOTES.md, eighth round).
func encodeChanges(cs []Change) json.RawMessage {
	if len(cs) == 0 {
		return nil
	}
	n := 2
	for _, c := range cs {
		n += len(c.Op) + len(c.Path) + len(c.Old) + len(c.New) + len(c.Display) + 48
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, c := range cs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"op":`...)
		out = appendHTMLSafeString(out, c.Op)
		out = append(out, `,"path":`...)
		out = appendHTMLSafeString(out, c.Path)
		if len(c.Old) > 0 {
			out = append(out, `,"old":`...)
			out = appendHTMLSafeRaw(out, c.Old)
		}
		if len(c.New) > 0 {
			out = append(out, `,"new":`...)
			out = appendHTMLSafeRaw(out, c.New)
		}
		if c.Display != "" {
			out = append(out, `,"display":`...)
			out = appendHTMLSafeString(out, c.Display)
		}
		out = append(out, '}')
	}
	return append(out, ']')
}

// appendHTMLSafeString appends s as json.Marshal writes a string: as it is when it is
// printable ASCII without a quote, backslash or HTML-special character, else by Marshal.
func appendHTMLSafeString(dst []byte, s string) []byte {
	if !plainJSONString(s, true) {
		q, _ := json.Marshal(s) // a string always marshals
		return append(dst, q...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendHTMLSafeRaw appends compact JSON raw as json.Marshal writes a RawMessage: with <, >,
// &, U+2028 and U+2029 escaped (json.HTMLEscape), only where one occurs.
func appendHTMLSafeRaw(dst []byte, raw []byte) []byte {
	special := false
	for _, c := range raw {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 { // 0xE2: the first byte of U+2028 and U+2029
			special = true
			break
		}
	}
	if !special {
		return append(dst, raw...)
	}
	var buf bytes.Buffer
	json.HTMLEscape(&buf, raw)
	return append(dst, buf.Bytes()...)
}

// diffIgnored are top-level attributes Diff never reports: server-managed (id, meta,
// schemas), or computed from other resources (a User's groups). Passwords, write-only and
// secret, are dropped at any depth before comparing.
var diffIgnored = map[string]bool{"id": true, "meta": true, "schemas": true}

// Diff lists projected − live. A nil or empty live is a create (everything added); a nil
// projected is a delete (one change: op remove, path "", old = live). id, meta, schemas and a
// User's groups are not compared, and password attributes (at any depth) never appear.
//
// Attributes are compared by case-insensitive name; complex attributes per sub-attribute
// ("name.givenName"), extension objects per attribute with URN-qualified paths
// ("urn:…:User:department", "urn:…:User:manager.value"). Multi-valued attributes are
// compared by value: one change per element added or removed, elements matched by "value"
// (and "type" for emails, phoneNumbers and addresses), a matched element whose other
// sub-attributes changed shown as replace. Group members give one change per member added
// or removed, with old/new {"value", "display"?, "type"?}. References the backend computes
// from a value ($ref, the manager's displayName) are not compared. Values equal up to JSON
// formatting are no change; the result is sorted by path, then value.
func Diff(live, projected []byte) []Change {
	if isNullOrEmptyJSON(projected) {
		if isNullOrEmptyJSON(live) {
			return nil
		}
		return []Change{{Op: "remove", Path: "", Old: withoutPasswordsRaw(live)}}
	}
	return diffTrees(decodeObjectLoose(live), decodeObjectLoose(projected))
}

// diffTrees is Diff of two decoded resources (live empty for a create); it drops their
// passwords in place.
func diffTrees(a, b map[string]any) []Change {
	dropPasswords(a) // at any depth: a diff is stored and shown
	dropPasswords(b)
	group := modelOf(a, b).group
	n := max(len(a), len(b)) // an update changes a few attributes at most
	if len(a) == 0 {
		n = createChanges(b)
	}
	d := changeLister{out: make([]Change, 0, n), keys: make([]string, 0, n)}
	d.object(a, b, group)
	return d.sorted()
}

// createChanges is about the number of changes of a create of b, which lists every
// sub-attribute and element (the changes' slice, grown from the attribute count, was a
// tenth of the bytes a recorded create allocated).
func createChanges(b map[string]any) int {
	n := 0
	for _, v := range b {
		n += valueCount(v, 2)
	}
	return n
}

// valueCount counts the changes of adding v: an object's members' (depth levels down),
// an array's elements (one change each), 1 for a scalar or below depth.
func valueCount(v any, depth int) int {
	switch vv := v.(type) {
	case map[string]any:
		if depth == 0 {
			return 1
		}
		n := 0
		for _, m := range vv {
			n += valueCount(m, depth-1)
		}
		return n
	case []any:
		return len(vv)
	}
	return 1
}

// changeLister collects the changes of a diff.
type changeLister struct {
	out  []Change
	keys []string // each change's sort key (an element's value), beside it
	// buf holds the encoded values of the changes, each a full slice of it (a change's
	// value cannot be appended to in place); a buffer that must grow is left to the
	// changes that point into it. One buffer instead of a growing slice per value: a
	// create's diff encodes every attribute of the resource.
	buf []byte
}

func (d *changeLister) add(op, path string, old, new any, key string) {
	c := Change{Op: op, Path: path}
	if old != nil {
		c.Old = d.encode(old)
	}
	if new != nil {
		c.New = d.encode(new)
	}
	d.out = append(d.out, c)
	d.keys = append(d.keys, key)
}

// encode is canonicalJSONValue(v), written into d.buf.
func (d *changeLister) encode(v any) json.RawMessage {
	if d.buf == nil {
		d.buf = make([]byte, 0, 2048)
	}
	start := len(d.buf)
	out, ok := appendJSONTree(d.buf, v)
	if !ok {
		return canonicalJSONValue(v) // what appendJSONTree leaves to encoding/json
	}
	d.buf = out
	return out[start:len(out):len(out)]
}

// object compares two resources' top-level attributes.
func (d *changeLister) object(a, b map[string]any, group bool) {
	for _, f := range foldedPairs(a, b) {
		name, ka, va, kb, vb := f.name, f.ka, f.va, f.kb, f.vb
		if diffIgnored[name] || (name == "groups" && !group) {
			continue
		}
		path := kb
		if path == "" {
			path = ka
		}
		ma, aObj := va.(map[string]any)
		mb, bObj := vb.(map[string]any)
		if strings.HasPrefix(name, "urn:") && (aObj || va == nil) && (bObj || vb == nil) && (aObj || bObj) {
			// An extension: one change per attribute, URN-qualified.
			for _, f := range foldedPairs(ma, mb) {
				ksa, sa, ksb, sb := f.ka, f.va, f.kb, f.vb
				sp := ksb
				if sp == "" {
					sp = ksa
				}
				d.attribute(path+":"+sp, sp, sa, sb)
			}
			continue
		}
		d.attribute(path, path, va, vb)
	}
}

// attribute compares one attribute; name is its bare name (for members, emails, …).
func (d *changeLister) attribute(path, name string, a, b any) {
	if a == nil && b == nil {
		return
	}
	la, aList := a.([]any)
	lb, bList := b.([]any)
	if (aList || a == nil) && (bList || b == nil) {
		d.multi(path, name, la, lb)
		return
	}
	ma, aObj := a.(map[string]any)
	mb, bObj := b.(map[string]any)
	if (aObj || a == nil) && (bObj || b == nil) {
		for _, f := range foldedPairs(ma, mb) {
			if f.name == "$ref" || (f.name == "displayname" && strings.EqualFold(name, "manager")) {
				continue // computed by the backend from the value
			}
			ksa, sa, ksb, sb := f.ka, f.va, f.kb, f.vb
			sp := ksb
			if sp == "" {
				sp = ksa
			}
			d.scalar(path+"."+sp, sa, sb)
		}
		return
	}
	d.scalar(path, a, b)
}

// scalar compares two values as wholes.
func (d *changeLister) scalar(path string, a, b any) {
	switch {
	case a == nil && b == nil:
	case a == nil:
		d.add("add", path, nil, b, "")
	case b == nil:
		d.add("remove", path, a, nil, "")
	case !sameJSONValue(a, b):
		d.add("replace", path, a, b, "")
	}
}

// multi compares two multi-valued attributes element by element.
func (d *changeLister) multi(path, name string, a, b []any) {
	if len(a) == 0 {
		d.multiAdded(path, name, b)
		return
	}
	d.multiPaired(path, name, a, b)
}

// multiAdded is multi with nothing before (a create, or an attribute new to the
// resource): every element is added. multiPaired would add the same changes in another
// order, which sort makes one (FuzzMultiAddedAgreesWithPairing); pairing them first cost a
// create's diff ~15% of its instructions.
func (d *changeLister) multiAdded(path, name string, b []any) {
	members := strings.EqualFold(name, "members")
	for _, el := range b {
		if el == nil {
			continue
		}
		if members {
			el = memberChangeValue(el)
		}
		d.add("add", path, nil, el, changeSortValue(el))
	}
}

// multiPaired compares two multi-valued attributes by pairing their elements.
func (d *changeLister) multiPaired(path, name string, a, b []any) {
	members := strings.EqualFold(name, "members")
	typed := strings.EqualFold(name, "emails") || strings.EqualFold(name, "phoneNumbers") || strings.EqualFold(name, "addresses")
	type group struct{ a, b []any }
	groups := map[string]*group{}
	var order []string
	at := func(k string) *group {
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		return g
	}
	for _, el := range a {
		if el != nil {
			g := at(multiValueKey(el, members, typed))
			g.a = append(g.a, el)
		}
	}
	for _, el := range b {
		if el != nil {
			g := at(multiValueKey(el, members, typed))
			g.b = append(g.b, el)
		}
	}
	sort.Strings(order)
	for _, k := range order {
		g := groups[k]
		n := min(len(g.a), len(g.b))
		for i := range n {
			if !members && !sameMultiValue(g.a[i], g.b[i]) {
				d.add("replace", path, g.a[i], g.b[i], changeSortValue(g.b[i]))
			}
		}
		for _, el := range g.a[n:] {
			if members {
				el = memberChangeValue(el)
			}
			d.add("remove", path, el, nil, changeSortValue(el))
		}
		for _, el := range g.b[n:] {
			if members {
				el = memberChangeValue(el)
			}
			d.add("add", path, nil, el, changeSortValue(el))
		}
	}
}

// multiValueKey is what pairs an element of a multi-valued attribute across live and
// projected: its "value" (and "type" for emails, phone numbers and addresses), or the whole
// element when it has neither.
func multiValueKey(el any, members, typed bool) string {
	m, ok := el.(map[string]any)
	if !ok {
		return "j\x00" + string(canonicalJSONValue(el))
	}
	_, v := findKeyFold(m, "value")
	if members {
		if v != nil {
			return "v\x00" + string(canonicalJSONValue(v))
		}
		return "j\x00" + string(canonicalJSONValue(withoutRefAttr(m)))
	}
	var t any
	if typed {
		_, t = findKeyFold(m, "type")
		if s, ok := t.(string); ok {
			t = strings.ToLower(s)
		}
	}
	if v == nil && t == nil {
		return "j\x00" + string(canonicalJSONValue(withoutRefAttr(m)))
	}
	return "v\x00" + string(canonicalJSONValue(v)) + "\x00" + string(canonicalJSONValue(t))
}

// sameMultiValue compares two elements up to formatting, name case and computed references.
func sameMultiValue(a, b any) bool {
	ma, ok1 := a.(map[string]any)
	mb, ok2 := b.(map[string]any)
	if ok1 && ok2 {
		return sameJSONValue(withoutRefAttr(ma), withoutRefAttr(mb))
	}
	return sameJSONValue(a, b)
}

func withoutRefAttr(m map[string]any) map[string]any {
	if k, _ := findKeyFold(m, "$ref"); k == "" {
		return m
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.EqualFold(k, "$ref") {
			out[k] = v
		}
	}
	return out
}

// memberChangeValue is a member as a change shows it: value, and display and type when known.
func memberChangeValue(el any) any {
	m, ok := el.(map[string]any)
	if !ok {
		return el
	}
	out := map[string]any{}
	for _, k := range []string{"value", "display", "type"} {
		if _, v := findKeyFold(m, k); v != nil {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return withoutRefAttr(m)
	}
	return out
}

// changeSortValue is the element's "value" as text, for ordering changes.
func changeSortValue(el any) string {
	if m, ok := el.(map[string]any); ok {
		if _, v := findKeyFold(m, "value"); v != nil {
			if s, ok := v.(string); ok {
				return s
			}
			return string(canonicalJSONValue(v))
		}
	}
	return string(canonicalJSONValue(el))
}

// sorted is the changes ordered by path, then value, then op and the values themselves
// (a stable sort: equal changes keep their order). It sorts the changes and their keys
// side by side, in place: a slice of changes with their keys, sorted and copied out, was
// a tenth of the bytes a recorded create allocated.
func (d *changeLister) sorted() []Change {
	sort.Stable(changeOrder{d})
	return d.out
}

// changeOrder sorts a changeLister's changes with their keys.
type changeOrder struct{ d *changeLister }

func (o changeOrder) Len() int { return len(o.d.out) }

func (o changeOrder) Swap(i, j int) {
	o.d.out[i], o.d.out[j] = o.d.out[j], o.d.out[i]
	o.d.keys[i], o.d.keys[j] = o.d.keys[j], o.d.keys[i]
}

func (o changeOrder) Less(i, j int) bool {
	a, b := &o.d.out[i], &o.d.out[j]
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c < 0
	}
	if c := strings.Compare(o.d.keys[i], o.d.keys[j]); c != 0 {
		return c < 0
	}
	if c := strings.Compare(a.Op, b.Op); c != 0 {
		return c < 0
	}
	if c := bytes.Compare(a.Old, b.Old); c != 0 {
		return c < 0
	}
	return bytes.Compare(a.New, b.New) < 0
}

// foldedPair is one attribute name of two objects compared case-insensitively: its
// lower-case name, and the key and value it has in each ("", nil where absent; the first
// key in sorted order where several fold to the name; a JSON null value is nil).
type foldedPair struct {
	name   string
	ka, kb string
	va, vb any
}

// foldedPairs pairs the keys of a and b by lower-case name, sorted by name: one sort of
// both key sets instead of a scan of each object per name (objects of a 2 KB user have
// tens of keys, and Diff looks into every one of them). Empty keys are left out.
func foldedPairs(a, b map[string]any) []foldedPair {
	// One entry per key, sorted by name, then a's before b's, then key; then each name's
	// entries merged into its first, in place: the first key of each side is its first
	// in sorted order.
	ps := make([]foldedPair, 0, len(a)+len(b))
	for k, v := range a {
		if k != "" {
			ps = append(ps, foldedPair{name: strings.ToLower(k), ka: k, va: v})
		}
	}
	for k, v := range b {
		if k != "" {
			ps = append(ps, foldedPair{name: strings.ToLower(k), kb: k, vb: v})
		}
	}
	slices.SortFunc(ps, func(x, y foldedPair) int {
		if c := strings.Compare(x.name, y.name); c != 0 {
			return c
		}
		xa, ya := x.kb == "", y.kb == "" // an entry of a (keys are never "")
		switch {
		case xa && !ya:
			return -1
		case !xa && ya:
			return 1
		case xa:
			return strings.Compare(x.ka, y.ka)
		}
		return strings.Compare(x.kb, y.kb)
	})
	n := 0
	for i := range ps {
		e := ps[i]
		if n == 0 || ps[n-1].name != e.name {
			ps[n] = e
			n++
			continue
		}
		p := &ps[n-1]
		switch {
		case e.kb == "" && p.ka == "":
			p.ka, p.va = e.ka, e.va
		case e.kb != "" && p.kb == "":
			p.kb, p.vb = e.kb, e.vb
		}
	}
	clear(ps[n:]) // no values kept alive past the pairs
	return ps[:n]
}

// sameJSONValue compares decoded JSON values: objects by case-insensitive names (null members
// counting as absent), numbers by value.
func sameJSONValue(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for _, f := range foldedPairs(av, bv) {
			if x, y := f.va, f.vb; (x == nil) != (y == nil) || !sameJSONValue(x, y) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !sameJSONValue(av[i], bv[i]) {
				return false
			}
		}
		return true
	case json.Number:
		bv, ok := b.(json.Number)
		if !ok {
			return false
		}
		if av == bv {
			return true
		}
		x, ok1 := new(big.Float).SetString(string(av))
		y, ok2 := new(big.Float).SetString(string(bv))
		return ok1 && ok2 && x.Cmp(y) == 0
	case nil:
		return b == nil
	default: // string, bool
		return a == b
	}
}

// canonicalJSONValue is v as compact JSON with sorted keys and without HTML escaping.
func canonicalJSONValue(v any) json.RawMessage {
	raw, err := encodeJSONCompact(v, 0)
	if err != nil {
		return json.RawMessage("null")
	}
	return raw
}

// decodeObjectLoose decodes a resource for Diff: anything but a JSON object is an empty one.
func decodeObjectLoose(raw []byte) map[string]any {
	if len(raw) == 0 { // a create's live state: no decoder for nothing
		return map[string]any{}
	}
	var v any
	if decodeJSONNumbers(raw, &v) != nil {
		return map[string]any{}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return map[string]any{}
	}
	return m
}

func isNullOrEmptyJSON(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// withoutPasswordsRaw is raw as canonical JSON without password attributes; JSON that does
// not decode is kept as a JSON string.
func withoutPasswordsRaw(raw []byte) json.RawMessage {
	var v any
	if json.Valid(raw) && decodeJSONNumbers(raw, &v) == nil {
		dropPasswords(v)
		return canonicalJSONValue(v)
	}
	s, _ := json.Marshal(string(raw))
	return s
}
