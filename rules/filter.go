package rules

import (
	"errors"
	"fmt"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// RewriteFilter rewrites a filter expression (from filter= or a /.search body): every
// attribute path at or below a From path is renamed to the rule's target, also inside
// value filters. The original string comes back when nothing matched; an unparseable
// filter comes back unchanged with an error. Besides RFC 7644 filters it understands
// the single comparison on a filtered sub-attribute Entra ID sends for lookups
// (`emails[type eq "work"].value eq "x"`).
func (s *Set) RewriteFilter(resourceType, filterExpr string) (string, error) {
	tr := s.lookup(resourceType)
	if tr == nil || !tr.mentionsFrom(filterExpr) {
		return filterExpr, nil
	}
	e, flat := parseFlatFilter(filterExpr)
	var err error
	if !flat {
		e, err = parseFilterSafe(filterExpr)
	}
	if err == nil && !validExpr(e, 0) {
		err = fmt.Errorf("filter nested deeper than %d levels", maxNesting)
	}
	if err != nil {
		if errors.Is(err, errFilterLimits) {
			return filterExpr, fmt.Errorf("rules: rewriting %s filter: %w", resourceType, err)
		}
		if out, ok := tr.rewriteFilteredComparison(filterExpr); ok {
			return out, nil
		}
		return filterExpr, fmt.Errorf("rules: rewriting %s filter %q: %w", resourceType, filterExpr, err)
	}
	ne, changed := tr.renameExpr(e)
	if !changed {
		return filterExpr, nil
	}
	var b strings.Builder
	writeExpr(&b, ne, false)
	return b.String(), nil
}

// rewriteFilteredComparison handles `attr[filter].sub op value`, which RFC 7644 filters
// do not allow but Entra ID sends. ok is false when f is not of that shape.
func (tr *typeRules) rewriteFilteredComparison(f string) (string, bool) {
	end, inStr, closed := -1, false, false
	for i := 0; i < len(f) && end < 0; i++ {
		switch c := f[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == ']':
			closed = true
		case c == ' ' && closed:
			end = i
		}
	}
	if end < 0 {
		return "", false
	}
	path, rest := f[:end], f[end:]
	p, err := tr.parsePath(path)
	if err != nil || p.fil == nil || p.sub == "" {
		return "", false
	}
	if _, err := parseAttrExpSafe("x" + rest); err != nil {
		return "", false
	}
	r, from := tr.fromFor(p)
	if from == nil {
		return f, true
	}
	np, ok := rebase(p, from, r.target)
	if !ok {
		return f, true
	}
	return np + rest, true
}

// mentionsFrom reports whether s contains the name of a From attribute (in any case).
// A filter that does not cannot need a rewrite, and skipping the parser keeps reads
// fast; such a filter is returned as is even when it would not parse.
func (tr *typeRules) mentionsFrom(s string) bool {
	for _, a := range tr.fromAttrs {
		for i := 0; i+len(a) <= len(s); i++ {
			if foldEq(s[i:i+len(a)], a) {
				return true
			}
		}
	}
	return false
}

// fromFor finds the rule whose From path p is at or below.
func (tr *typeRules) fromFor(p *apath) (*crule, *apath) {
	for _, r := range tr.rules {
		for _, f := range r.from {
			if atOrBelow(p, f) {
				return r, f
			}
		}
	}
	return nil, nil
}

// pathOfAttr converts a filter attribute path.
func pathOfAttr(ap filter.AttributePath) *apath {
	p := &apath{attr: ap.AttributeName, sub: ap.SubAttributeName()}
	if u := ap.URI(); u != "" && !isCoreURI(u) {
		p.uri = u
	}
	return p
}

// attrPathOf builds a filter attribute path.
func attrPathOf(uri, attr, sub string) filter.AttributePath {
	ap := filter.AttributePath{AttributeName: attr}
	if uri != "" {
		u := uri
		ap.URIPrefix = &u
	}
	if sub != "" {
		s := sub
		ap.SubAttribute = &s
	}
	return ap
}

// renameExpr renames the attribute paths of a filter that lie at or below a From path.
func (tr *typeRules) renameExpr(e filter.Expression) (filter.Expression, bool) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		p := pathOfAttr(x.AttributePath)
		r, f := tr.fromFor(p)
		if f == nil {
			return e, false
		}
		return comparisonAt(p, f, r.target, x.Operator, x.CompareValue)
	case *filter.LogicalExpression:
		l, c1 := tr.renameExpr(x.Left)
		r, c2 := tr.renameExpr(x.Right)
		if !c1 && !c2 {
			return e, false
		}
		return &filter.LogicalExpression{Left: l, Right: r, Operator: x.Operator}, true
	case *filter.NotExpression:
		in, c := tr.renameExpr(x.Expression)
		if !c {
			return e, false
		}
		return &filter.NotExpression{Expression: in}, true
	case *filter.ValuePath:
		return tr.renameValuePath(x)
	}
	return e, false
}

// comparisonAt builds `op value` on the place of p, which lies at or below from, moved
// below the target t.
func comparisonAt(p, from, t *apath, op filter.CompareOperator, cv any) (filter.Expression, bool) {
	if !atOrBelow(from, p) {
		// p is strictly below from: a bare attribute with a sub-attribute added.
		if p.fil != nil || !from.simple() || !t.simple() {
			return nil, false
		}
		return &filter.AttributeExpression{AttributePath: attrPathOf(t.uri, t.attr, p.sub), Operator: op, CompareValue: cv}, true
	}
	if t.fil == nil {
		return &filter.AttributeExpression{AttributePath: attrPathOf(t.uri, t.attr, t.sub), Operator: op, CompareValue: cv}, true
	}
	if _, single := t.fil.expr.(*filter.AttributeExpression); !single {
		return nil, false // a value filter holds at most two comparisons
	}
	return &filter.ValuePath{
		AttributePath: attrPathOf(t.uri, t.attr, ""),
		ValueFilter: &filter.LogicalExpression{
			Left:     t.fil.expr,
			Right:    &filter.AttributeExpression{AttributePath: attrPathOf("", t.sub, ""), Operator: op, CompareValue: cv},
			Operator: filter.AND,
		},
	}, true
}

func (tr *typeRules) renameValuePath(x *filter.ValuePath) (filter.Expression, bool) {
	vp := pathOfAttr(x.AttributePath)
	// attr[<from's filter> and sub op v] is a comparison on a value-filtered From path.
	if lx, ok := x.ValueFilter.(*filter.LogicalExpression); ok && lx.Operator == filter.AND && vp.sub == "" {
		for _, r := range tr.rules {
			for _, f := range r.from {
				if f.fil == nil || f.sub == "" || !foldEq(f.uri, vp.uri) || !foldEq(f.attr, vp.attr) {
					continue
				}
				for _, pair := range [2][2]filter.Expression{{lx.Left, lx.Right}, {lx.Right, lx.Left}} {
					cmp, ok := pair[1].(*filter.AttributeExpression)
					if !ok || cmp.AttributePath.URIPrefix != nil || cmp.AttributePath.SubAttribute != nil ||
						!foldEq(cmp.AttributePath.AttributeName, f.sub) || exprCanon(pair[0]) != f.fil.canon {
						continue
					}
					if out, ok := comparisonAt(f, f, r.target, cmp.Operator, cmp.CompareValue); ok {
						return out, true
					}
				}
			}
		}
	}
	changed := false
	ap := x.AttributePath
	if vp.sub == "" {
		if r, f := tr.fromFor(vp); f != nil && f.simple() && r.target.simple() {
			ap = attrPathOf(r.target.uri, r.target.attr, "")
			vp = pathOfAttr(ap)
			changed = true
		}
	}
	inner, c := tr.renameInner(vp, x.ValueFilter)
	if !changed && !c {
		return x, false
	}
	return &filter.ValuePath{AttributePath: ap, ValueFilter: inner}, true
}

// renameInner renames the sub-attributes a value filter on vp compares.
func (tr *typeRules) renameInner(vp *apath, e filter.Expression) (filter.Expression, bool) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		if x.AttributePath.URIPrefix != nil || x.AttributePath.SubAttribute != nil || vp.sub != "" {
			return e, false
		}
		p := &apath{uri: vp.uri, attr: vp.attr, sub: x.AttributePath.AttributeName}
		r, f := tr.fromFor(p)
		if f == nil || !atOrBelow(f, p) {
			return e, false
		}
		t := r.target
		if t.fil != nil || t.sub == "" || !foldEq(t.uri, vp.uri) || !foldEq(t.attr, vp.attr) {
			return e, false
		}
		return &filter.AttributeExpression{AttributePath: attrPathOf("", t.sub, ""), Operator: x.Operator, CompareValue: x.CompareValue}, true
	case *filter.LogicalExpression:
		l, c1 := tr.renameInner(vp, x.Left)
		r, c2 := tr.renameInner(vp, x.Right)
		if !c1 && !c2 {
			return e, false
		}
		return &filter.LogicalExpression{Left: l, Right: r, Operator: x.Operator}, true
	case *filter.NotExpression:
		in, c := tr.renameInner(vp, x.Expression)
		if !c {
			return e, false
		}
		return &filter.NotExpression{Expression: in}, true
	}
	return e, false
}

func exprCanon(e filter.Expression) string {
	var b strings.Builder
	writeExpr(&b, e, false)
	return strings.ToLower(b.String())
}

// RewriteAttributeList rewrites a comma-separated attributes= / excludedAttributes=
// list: entries at or below a From path name the target instead (without a value
// filter, which lists cannot carry); duplicates that creates are removed.
func (s *Set) RewriteAttributeList(resourceType, list string) string {
	tr := s.lookup(resourceType)
	if tr == nil || !tr.hasFrom || strings.TrimSpace(list) == "" {
		return list
	}
	parts := strings.Split(list, ",")
	changed := false
	for i, part := range parts {
		name := strings.TrimSpace(part)
		if name == "" || strings.ContainsAny(name, "[]\" ") {
			continue
		}
		p, err := tr.parsePath(name)
		if err != nil {
			continue
		}
		r, f := tr.fromFor(p)
		if f == nil {
			continue
		}
		t := r.target
		np := &apath{uri: t.uri, attr: t.attr, sub: t.sub}
		if !atOrBelow(f, p) {
			if !f.simple() || !t.simple() {
				continue
			}
			np.sub = p.sub
		}
		np.finish()
		parts[i] = np.flat
		changed = true
	}
	if !changed {
		return list
	}
	out := parts[:0]
	for _, p := range parts {
		dup := false
		for _, q := range out {
			if foldEq(strings.TrimSpace(p), strings.TrimSpace(q)) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

// RewriteSearch rewrites a POST …/.search body: its filter, attributes and
// excludedAttributes. An unparseable body or filter comes back unchanged with an error.
func (s *Set) RewriteSearch(resourceType string, body []byte) ([]byte, error) {
	tr := s.lookup(resourceType)
	if tr == nil || !tr.hasFrom {
		return body, nil
	}
	ar := getArena()
	defer ar.release()
	root, lead, trail, err := ar.parseRoot(body, spare)
	if err != nil {
		return body, fmt.Errorf("rules: rewriting %s search: %w", resourceType, err)
	}
	if i := root.plainIndex("filter"); i >= 0 {
		if f, ok := stringValue(root.mem[i].val); ok {
			nf, err := s.RewriteFilter(resourceType, f)
			if err != nil {
				return body, fmt.Errorf("rules: rewriting %s search: %w", resourceType, err)
			}
			if nf != f {
				root.setValue(i, quote(nf))
			}
		}
	}
	for _, key := range [...]string{"attributes", "excludedAttributes"} {
		i := root.plainIndex(key)
		if i < 0 {
			continue
		}
		m := &root.mem[i]
		if l, ok := stringValue(m.val); ok {
			if nl := s.RewriteAttributeList(resourceType, l); nl != l {
				root.setValue(i, quote(nl))
			}
			continue
		}
		a := m.arr(ar)
		if a == nil {
			continue
		}
		var seen []string
		for j := range a.el {
			l, ok := stringValue(a.el[j].val)
			if !ok {
				continue
			}
			nl := s.RewriteAttributeList(resourceType, l)
			if nl != l && containsFold(seen, nl) {
				a.removeEl(j)
				continue
			}
			seen = append(seen, nl)
			if nl != l {
				a.el[j].val = quote(nl)
				a.changed = true
			}
		}
	}
	rw := rewriter{root: root}
	return rw.output(body, lead, trail), nil
}
