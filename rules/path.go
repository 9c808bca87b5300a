package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
	"github.com/tidwall/gjson"
)

// corePrefix starts every core schema URN; a path qualified with one equals the bare name.
const corePrefix = "urn:ietf:params:scim:schemas:core:"

// apath is a compiled attribute path: [uri ":"] attr ["[" filter "]"] ["." sub].
type apath struct {
	raw       string   // as written
	uri       string   // extension schema URN; "" for core attributes
	attr      string   // attribute name; "" for a whole extension (PATCH paths only)
	fil       *vfilter // value filter, or nil
	sub       string   // sub-attribute, or ""
	container bool     // the path names a whole extension object (PATCH paths only)

	qURI, qAttr, qSub string // JSON-quoted uri, attr and sub
	flat, qFlat       string // the path as one key, relative to the resource root (and quoted)
	flatRel, qFlatRel string // the path as one key inside its extension object (and quoted)
}

// vfilter is a compiled value filter.
type vfilter struct {
	expr  filter.Expression
	text  string   // re-serialised filter
	canon string   // lower-cased text, for comparisons
	attrs []string // attribute names the filter mentions
	elem  string   // JSON object members built from its eq comparisons, braces excluded
}

func isCoreURI(u string) bool { return hasPrefixFold(u, corePrefix) }

// parsePathSafe parses an RFC 7644 PATCH-style path, converting parser panics to errors.
func parsePathSafe(s string) (p filter.Path, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("path parser failed: %v", r)
		}
	}()
	return filter.ParsePathNumber([]byte(s))
}

// Limits on filters handed to the filter parser, whose time grows quickly with nesting.
const (
	maxFilterLen   = 4 << 10
	maxFilterParen = 32
)

var errFilterLimits = fmt.Errorf("filter longer than %d bytes or nested deeper than %d parentheses", maxFilterLen, maxFilterParen)

// parseFilterSafe parses a filter expression, converting parser panics to errors.
func parseFilterSafe(s string) (e filter.Expression, err error) {
	if len(s) > maxFilterLen || parenDepth(s) > maxFilterParen {
		return nil, errFilterLimits
	}
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("filter parser failed: %v", r)
		}
	}()
	e, err = filter.ParseFilterNumber([]byte(s))
	if err == nil && e == nil {
		err = errors.New("empty filter")
	}
	return e, err
}

// parenDepth returns the deepest parenthesis or bracket nesting of a filter, outside
// string literals.
func parenDepth(s string) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '(' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == ')' || c == ']':
			depth--
		}
	}
	return deepest
}

// parseAttrExpSafe parses one attribute expression, converting parser panics to errors.
func parseAttrExpSafe(s string) (e filter.AttributeExpression, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("filter parser failed: %v", r)
		}
	}()
	return filter.ParseAttrExpNumber([]byte(s))
}

// parseSimple parses a path without a value filter along the RFC 7644 ABNF the filter
// parser implements: [uri ":"] attrName ["." subAttrName]. ok is false for anything
// else, which then goes to the filter parser (a test checks both agree).
func parseSimple(s string) (uri, attr, sub string, ok bool) {
	rest := s
	if c := strings.LastIndexByte(s, ':'); c >= 0 {
		uri, rest = s[:c], s[c+1:]
		if !validURI(uri) {
			return "", "", "", false
		}
	}
	attr = rest
	if d := strings.IndexByte(rest, '.'); d >= 0 {
		attr, sub = rest[:d], rest[d+1:]
		if !validName(sub) {
			return "", "", "", false
		}
	}
	if !validName(attr) {
		return "", "", "", false
	}
	return uri, attr, sub, true
}

// validName reports whether s is an ATTRNAME: "$"? ALPHA *(ALPHA / DIGIT / "-" / "_").
func validName(s string) bool {
	if s != "" && s[0] == '$' {
		s = s[1:]
	}
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// validURI reports whether u is the URI part the filter parser accepts: segments of
// letters, digits and dots joined by colons.
func validURI(u string) bool {
	seg := 0
	for i := 0; i < len(u); i++ {
		switch c := u[i]; {
		case c == ':':
			if seg == 0 {
				return false
			}
			seg = 0
		case isAlpha(c) || isDigit(c) || c == '.':
			seg++
		default:
			return false
		}
	}
	return seg > 0
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// maxCachedPaths bounds the per-resource-type memo of parsed request paths;
// maxPathLen bounds the paths handed to the (slow) filter parser.
const (
	maxCachedPaths = 4096
	maxPathLen     = 1 << 10
)

type cachedPath struct {
	p   *apath
	err error
}

// parsePath parses a path from a request (a PATCH path, a key, a list entry). Paths
// without a value filter take a fast exact parser; the others are memoised, as the
// filter parser needs tens of microseconds per path and IdPs repeat theirs. The paths it
// returns are shared: callers never change them.
func (tr *typeRules) parsePath(s string) (*apath, error) {
	if v, ok := tr.simple.Load(s); ok {
		return v.(*apath), nil
	}
	if _, _, _, ok := parseSimple(s); ok {
		// Simple paths are memoised too (apart, so that names a client makes up cannot
		// crowd the filtered ones out): finish quotes five spellings of each.
		keep := tr.nsimple.Add(1) <= maxCachedPaths
		if keep {
			s = strings.Clone(s)
		}
		uri, attr, sub, _ := parseSimple(s)
		a := &apath{raw: s, attr: attr, sub: sub}
		if !isCoreURI(uri) {
			a.uri = uri
		}
		a.finish()
		if keep {
			tr.simple.Store(s, a)
		}
		return a, nil
	}
	if v, ok := tr.cache.Load(s); ok {
		c := v.(cachedPath)
		return c.p, c.err
	}
	if len(s) > maxPathLen || parenDepth(s) > maxFilterParen {
		return nil, fmt.Errorf("path longer than %d bytes or nested too deep", maxPathLen)
	}
	s = strings.Clone(s) // neither the memo nor the result may pin a request body
	var p *apath
	pp, err := parsePathSafe(s)
	if err == nil {
		p, err = newPath(s, pp)
	}
	if tr.cached.Add(1) <= maxCachedPaths {
		tr.cache.Store(s, cachedPath{p, err})
	}
	return p, err
}

// compilePath parses a rule path.
func compilePath(s string) (*apath, error) {
	s = strings.TrimSpace(s)
	p, err := parsePathSafe(s)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", s, err)
	}
	a, err := newPath(s, p)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", s, err)
	}
	return a, nil
}

// newPath builds an apath from a parsed path.
func newPath(raw string, p filter.Path) (*apath, error) {
	ap := p.AttributePath
	a := &apath{raw: raw, attr: ap.AttributeName}
	if u := ap.URI(); u != "" && !isCoreURI(u) {
		a.uri = u
	}
	a.sub = ap.SubAttributeName()
	if p.ValueExpression != nil {
		if ap.SubAttribute != nil {
			return nil, errors.New("a value filter on a sub-attribute is not supported")
		}
		f, err := newVFilter(p.ValueExpression)
		if err != nil {
			return nil, err
		}
		a.fil = f
		a.sub = p.SubAttributeName()
	}
	a.finish()
	return a, nil
}

// finish computes the derived spellings of a.
func (a *apath) finish() {
	a.qURI, a.qAttr, a.qSub = quote(a.uri), quote(a.attr), quote(a.sub)
	rel := a.attr
	if a.fil != nil {
		rel += "[" + a.fil.text + "]"
	}
	if a.sub != "" {
		rel += "." + a.sub
	}
	a.flatRel, a.flat = rel, rel
	if a.uri != "" {
		a.flat = a.uri + ":" + rel
		if a.container {
			a.flat = a.uri
		}
	}
	a.qFlat, a.qFlatRel = quote(a.flat), quote(a.flatRel)
}

// simple reports whether a names a bare attribute (no filter, no sub-attribute).
func (a *apath) simple() bool { return a.fil == nil && a.sub == "" && !a.container }

// checkSettable reports why a rule target could not be written.
func (a *apath) checkSettable() error {
	if a.fil == nil {
		return nil
	}
	if a.sub == "" {
		return errors.New("a value-filtered target needs a sub-attribute")
	}
	for _, n := range a.fil.attrs {
		if foldEq(n, a.sub) {
			return errors.New("the sub-attribute of a value-filtered target must not appear in its filter")
		}
	}
	var ar *arena
	el := ar.parseObj("{" + a.fil.elem + "}")
	if !evalFilter(nil, a.fil.expr, el) {
		return errors.New("the filter must be satisfied by its own eq comparisons, so a new element can be added")
	}
	return nil
}

// atOrBelow reports whether p addresses d or something inside it.
func atOrBelow(p, d *apath) bool {
	if !foldEq(p.uri, d.uri) {
		return false
	}
	if d.container {
		return true
	}
	if p.container || !foldEq(p.attr, d.attr) {
		return false
	}
	switch {
	case d.fil == nil && d.sub == "":
		return true
	case d.fil == nil:
		return foldEq(p.sub, d.sub)
	case p.fil == nil || p.fil.canon != d.fil.canon:
		return false
	}
	return d.sub == "" || foldEq(p.sub, d.sub)
}

// newVFilter compiles a value filter.
func newVFilter(e filter.Expression) (*vfilter, error) {
	if !validExpr(e, 0) {
		return nil, errors.New("malformed value filter")
	}
	f := &vfilter{expr: e}
	var b strings.Builder
	writeExpr(&b, e, false)
	f.text = b.String()
	f.canon = strings.ToLower(f.text)
	f.attrs = filterAttrs(e, nil)
	var eb []byte
	eqMembers(e, &eb)
	f.elem = string(eb)
	return f, nil
}

// validExpr checks that an expression tree has no nil nodes and bounded depth.
func validExpr(e filter.Expression, depth int) bool {
	if depth > maxNesting {
		return false
	}
	switch x := e.(type) {
	case *filter.AttributeExpression:
		return x != nil
	case *filter.LogicalExpression:
		return x != nil && validExpr(x.Left, depth+1) && validExpr(x.Right, depth+1)
	case *filter.NotExpression:
		return x != nil && validExpr(x.Expression, depth+1)
	case *filter.ValuePath:
		return x != nil && validExpr(x.ValueFilter, depth+1)
	}
	return false
}

func filterAttrs(e filter.Expression, dst []string) []string {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		return append(dst, x.AttributePath.AttributeName)
	case *filter.LogicalExpression:
		return filterAttrs(x.Right, filterAttrs(x.Left, dst))
	case *filter.NotExpression:
		return filterAttrs(x.Expression, dst)
	}
	return dst
}

// eqMembers collects `"name":value` for the eq comparisons of an and-chain.
func eqMembers(e filter.Expression, b *[]byte) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		if x.Operator != filter.EQ || x.AttributePath.SubAttribute != nil || x.AttributePath.URIPrefix != nil || x.CompareValue == nil {
			return
		}
		if len(*b) > 0 {
			*b = append(*b, ',')
		}
		*b = gjson.AppendJSONString(*b, x.AttributePath.AttributeName)
		*b = append(*b, ':')
		*b = append(*b, compareValueJSON(x.CompareValue)...)
	case *filter.LogicalExpression:
		if x.Operator == filter.AND {
			eqMembers(x.Left, b)
			eqMembers(x.Right, b)
		}
	}
}

// compareValueJSON renders a filter comparison value as JSON text.
func compareValueJSON(v any) string {
	switch c := v.(type) {
	case string:
		return `"` + c + `"` // the parser keeps the JSON escapes of the literal
	case json.Number:
		return string(c)
	case bool:
		return strconv.FormatBool(c)
	case int:
		return strconv.Itoa(c)
	case float64:
		return strconv.FormatFloat(c, 'g', -1, 64)
	}
	return "null"
}

// writeExpr serialises a filter expression. Unlike the parser's String methods it keeps
// string literals exactly as written and parenthesises an "or" inside an "and".
func writeExpr(b *strings.Builder, e filter.Expression, inAnd bool) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		writeAttrPath(b, x.AttributePath)
		b.WriteByte(' ')
		b.WriteString(strings.ToLower(string(x.Operator)))
		if x.Operator != filter.PR {
			b.WriteByte(' ')
			b.WriteString(compareValueJSON(x.CompareValue))
		}
	case *filter.LogicalExpression:
		paren := inAnd && x.Operator != filter.AND
		if paren {
			b.WriteByte('(')
		}
		and := x.Operator == filter.AND
		writeExpr(b, x.Left, and)
		b.WriteByte(' ')
		b.WriteString(strings.ToLower(string(x.Operator)))
		b.WriteByte(' ')
		writeExpr(b, x.Right, and)
		if paren {
			b.WriteByte(')')
		}
	case *filter.NotExpression:
		b.WriteString("not (")
		writeExpr(b, x.Expression, false)
		b.WriteByte(')')
	case *filter.ValuePath:
		writeAttrPath(b, x.AttributePath)
		b.WriteByte('[')
		writeExpr(b, x.ValueFilter, false)
		b.WriteByte(']')
	}
}

func writeAttrPath(b *strings.Builder, p filter.AttributePath) {
	if p.URIPrefix != nil {
		b.WriteString(*p.URIPrefix)
		b.WriteByte(':')
	}
	b.WriteString(p.AttributeName)
	if p.SubAttribute != nil {
		b.WriteByte('.')
		b.WriteString(*p.SubAttribute)
	}
}

// evalFilter evaluates a value filter against one multi-valued attribute element.
// String comparisons are case-insensitive (RFC 7643 caseExact defaults to false).
func evalFilter(ar *arena, e filter.Expression, el *jobj) bool {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		return evalAttrExp(ar, x, el)
	case *filter.LogicalExpression:
		if x.Operator == filter.AND {
			return evalFilter(ar, x.Left, el) && evalFilter(ar, x.Right, el)
		}
		return evalFilter(ar, x.Left, el) || evalFilter(ar, x.Right, el)
	case *filter.NotExpression:
		return !evalFilter(ar, x.Expression, el)
	}
	return false
}

func evalAttrExp(ar *arena, x *filter.AttributeExpression, el *jobj) bool {
	var m *jmem
	if i := el.plainIndex(x.AttributePath.AttributeName); i >= 0 {
		m = &el.mem[i]
		if x.AttributePath.SubAttribute != nil {
			m = nil
			if so := el.mem[i].obj(ar); so != nil {
				if j := so.plainIndex(*x.AttributePath.SubAttribute); j >= 0 {
					m = &so.mem[j]
				}
			}
		}
	}
	if x.Operator == filter.PR {
		return m != nil && m.hasValue()
	}
	if m == nil || m.isNull() {
		eq := x.CompareValue == nil
		switch x.Operator {
		case filter.EQ:
			return eq
		case filter.NE:
			return !eq
		}
		return false
	}
	if m.o != nil || m.a != nil || m.val == "" || m.val[0] == '{' || m.val[0] == '[' {
		return x.Operator == filter.NE
	}
	return compareScalar(x.Operator, gjson.Parse(m.val), x.CompareValue)
}

// compareScalar compares a JSON scalar with a filter literal.
func compareScalar(op filter.CompareOperator, r gjson.Result, cv any) bool {
	c := 0 // -1, 0, 1 ordering; only meaningful when ok
	ok := false
	switch v := cv.(type) {
	case string:
		s := decodeFilterString(v)
		var have string
		switch r.Type {
		case gjson.String:
			have = r.Str
		case gjson.True, gjson.False:
			have = r.Raw
		default:
			return op == filter.NE
		}
		switch op {
		case filter.CO:
			return strings.Contains(strings.ToLower(have), strings.ToLower(s))
		case filter.SW:
			return strings.HasPrefix(strings.ToLower(have), strings.ToLower(s))
		case filter.EW:
			return strings.HasSuffix(strings.ToLower(have), strings.ToLower(s))
		}
		if strings.EqualFold(have, s) {
			c, ok = 0, true
		} else {
			c, ok = strings.Compare(strings.ToLower(have), strings.ToLower(s)), true
		}
	case json.Number:
		f, err := v.Float64()
		if r.Type != gjson.Number || err != nil {
			return op == filter.NE
		}
		ok = true
		switch n := r.Num; {
		case n < f:
			c = -1
		case n > f:
			c = 1
		}
	case bool:
		var have bool
		switch {
		case r.Type == gjson.True || r.Type == gjson.False:
			have = r.Type == gjson.True
		case r.Type == gjson.String && strings.EqualFold(r.Str, "true"):
			have = true
		case r.Type == gjson.String && strings.EqualFold(r.Str, "false"):
		default:
			return op == filter.NE
		}
		switch op {
		case filter.EQ:
			return have == v
		case filter.NE:
			return have != v
		}
		return false
	case nil:
		return op == filter.NE
	default:
		return false
	}
	if !ok {
		return false
	}
	return OrderedMatch(c, op)
}

// OrderedMatch reports whether a comparison result c (negative, zero or positive, as from
// strings.Compare) satisfies the ordering operator op (eq, ne, gt, ge, lt, le); any other
// operator is false.
func OrderedMatch(c int, op filter.CompareOperator) bool {
	switch op {
	case filter.EQ:
		return c == 0
	case filter.NE:
		return c != 0
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}

// decodeFilterString decodes the escapes of a filter string literal.
func decodeFilterString(raw string) string {
	if strings.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &s); err != nil {
		return raw
	}
	return s
}

// Key classification: a key of a resource (or of a path-less PATCH value) may name an
// extension object, or be an attribute path of one or more steps (URN-qualified,
// dotted, value-filtered), as Entra ID writes them.

const (
	kPlain     = iota // a bare attribute name (the member key itself)
	kAttr             // a qualified, dotted or value-filtered path
	kContainer        // an extension schema object
	kOpaque           // anything else
)

// kpath is a classified key.
type kpath struct {
	kind uint8
	uri  string // the known extension URN for kContainer, or the qualifier for kAttr
	attr string
	fil  *vfilter
	sub  string
}

var (
	plainKey  = &kpath{kind: kPlain}
	opaqueKey = &kpath{kind: kOpaque}
)

// hasPathByte reports whether key holds ':', '.' or '[' (a URN, a sub-attribute or a
// filter). It is strings.ContainsAny(key, ":.["), which builds its byte set on every call:
// a fifth of classifying a resource's keys.
func hasPathByte(key string) bool {
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case ':', '.', '[':
			return true
		}
	}
	return false
}

// classify returns the key classification of a member, computing it once; atRoot says
// whether the member is a resource root key.
func classify(m *jmem, tr *typeRules, atRoot bool) *kpath {
	if m.kp == nil {
		m.kp = classifyKey(m.key, tr, atRoot)
	}
	return m.kp
}

func classifyKey(key string, tr *typeRules, atRoot bool) *kpath {
	if !hasPathByte(key) {
		return plainKey
	}
	head := key
	if b := strings.IndexByte(key, '['); b >= 0 {
		head = key[:b]
	}
	rest := key
	k := kpath{kind: kAttr} // copied to the heap only when it is the answer (out below)
	if c := strings.LastIndexByte(head, ':'); c >= 0 {
		if !atRoot {
			return opaqueKey
		}
		matched := false
		for i, u := range tr.uris {
			if foldEq(key, u) {
				return tr.uriKeys[i]
			}
			if len(key) > len(u) && key[len(u)] == ':' && hasPrefixFold(key, u) {
				k.uri, rest, matched = u, key[len(u)+1:], true
				break
			}
		}
		if !matched {
			if !isCoreURI(head) {
				return opaqueKey
			}
			rest = key[c+1:]
		}
	}
	switch {
	case strings.IndexByte(rest, '[') >= 0:
		// Only parse (slowly) what could match a rule's attribute.
		if !containsFold(tr.attrs, rest[:strings.IndexByte(rest, '[')]) {
			return opaqueKey
		}
		p, err := tr.parsePath(rest)
		if err != nil || p.uri != "" || p.fil == nil {
			return opaqueKey
		}
		k.attr, k.fil, k.sub = p.attr, p.fil, p.sub
	case strings.IndexByte(rest, ':') >= 0:
		return opaqueKey
	default:
		k.attr = rest
		if d := strings.IndexByte(rest, '.'); d >= 0 {
			k.attr, k.sub = rest[:d], rest[d+1:]
			if k.attr == "" || k.sub == "" || strings.IndexByte(k.sub, '.') >= 0 {
				return opaqueKey
			}
		}
		if k.attr == "" {
			return opaqueKey
		}
	}
	out := k // declared here, so only this path allocates
	return &out
}
