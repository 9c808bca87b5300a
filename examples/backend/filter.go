package backend

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// Filters are parsed and validated by elimity (github.com/scim2/filter-parser)
// before GetAll is called. They are evaluated here rather than with elimity's
// Validator.PassesFilter, which cannot evaluate sub-attributes of multi-valued
// attributes (`emails.value eq "…"`) and looks up extension attributes under
// flattened "urn:…:attr" keys instead of the nested extension object.

// matchFilter reports whether the rendered resource doc passes e.
func (h *resourceHandler) matchFilter(e filter.Expression, doc map[string]any) bool {
	return evalExpr(e, doc, h.coreSchema(), h.extensions())
}

// evalExpr evaluates e against doc. core is the schema whose attributes are
// looked up for unqualified names; exts may be addressed by URN prefix.
func evalExpr(e filter.Expression, doc map[string]any, core schema.Schema, exts []schema.Schema) bool {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		l := evalExpr(e.Left, doc, core, exts)
		if e.Operator == filter.AND {
			return l && evalExpr(e.Right, doc, core, exts)
		}
		return l || evalExpr(e.Right, doc, core, exts)
	case *filter.NotExpression:
		return !evalExpr(e.Expression, doc, core, exts)
	case *filter.ValuePath:
		container, attr, ok := resolveAttr(e.AttributePath, doc, core, exts)
		if !ok || e.AttributePath.SubAttribute != nil {
			return false
		}
		sub := schema.Schema{ID: core.ID, Attributes: attr.SubAttributes()}
		for _, el := range asList(container[attr.Name()]) {
			if m, ok := el.(map[string]any); ok && evalExpr(e.ValueFilter, m, sub, nil) {
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		container, attr, ok := resolveAttr(e.AttributePath, doc, core, exts)
		if !ok {
			return false
		}
		values, cmpAttr, ok := collectValues(container, attr, e.AttributePath.SubAttributeName())
		if !ok {
			return false
		}
		switch e.Operator {
		case filter.PR:
			for _, v := range values {
				if !isEmpty(v) {
					return true
				}
			}
			return false
		case filter.NE:
			if e.CompareValue == nil {
				return len(values) > 0
			}
			for _, v := range values {
				if compare(v, filter.EQ, e.CompareValue, cmpAttr) {
					return false
				}
			}
			return true
		default:
			if e.CompareValue == nil && e.Operator == filter.EQ {
				return len(values) == 0
			}
			for _, v := range values {
				if compare(v, e.Operator, e.CompareValue, cmpAttr) {
					return true
				}
			}
			return false
		}
	}
	return false
}

// resolveAttr finds the attribute definition and the map holding it.
func resolveAttr(p filter.AttributePath, doc map[string]any, core schema.Schema, exts []schema.Schema) (map[string]any, schema.CoreAttribute, bool) {
	uri := p.URI()
	if uri == "" || strings.EqualFold(uri, core.ID) {
		attr, ok := core.Attributes.ContainsAttribute(p.AttributeName)
		return doc, attr, ok
	}
	for _, ext := range exts {
		if strings.EqualFold(uri, ext.ID) {
			attr, ok := ext.Attributes.ContainsAttribute(p.AttributeName)
			m, _ := doc[ext.ID].(map[string]any)
			return m, attr, ok
		}
	}
	return nil, schema.CoreAttribute{}, false
}

// collectValues returns the (non-nil) values addressed by attr[.sub] and the
// attribute definition to compare them with. A multi-valued complex attribute
// without a sub-attribute compares its "value" sub-attribute (RFC 7644 §3.4.2.2).
func collectValues(container map[string]any, attr schema.CoreAttribute, sub string) ([]any, schema.CoreAttribute, bool) {
	if container == nil {
		return nil, attr, true
	}
	raw := container[attr.Name()]
	cmpAttr := attr
	if sub == "" && attr.MultiValued() && attr.HasSubAttributes() {
		sub = "value"
	}
	if sub != "" {
		sa, ok := attr.SubAttributes().ContainsAttribute(sub)
		if !ok {
			return nil, attr, false
		}
		cmpAttr = sa
		sub = sa.Name()
	}
	var out []any
	add := func(v any) {
		if v != nil {
			out = append(out, v)
		}
	}
	if attr.MultiValued() {
		for _, el := range asList(raw) {
			if sub == "" {
				add(el)
			} else if m, ok := el.(map[string]any); ok {
				add(m[sub])
			}
		}
		return out, cmpAttr, true
	}
	if sub != "" {
		if m, ok := raw.(map[string]any); ok {
			add(m[sub])
		}
		return out, cmpAttr, true
	}
	add(raw)
	return out, cmpAttr, true
}

func isEmpty(v any) bool {
	switch vv := v.(type) {
	case nil:
		return true
	case string:
		return vv == ""
	case []any:
		return len(vv) == 0
	case map[string]any:
		return len(vv) == 0
	}
	return false
}

// compare applies a SCIM comparison operator to a stored value.
func compare(v any, op filter.CompareOperator, ref any, attr schema.CoreAttribute) bool {
	switch vv := v.(type) {
	case string:
		rs, ok := ref.(string)
		if !ok {
			return false
		}
		if attr.AttributeType() == "dateTime" {
			if c, ok := compareTimes(vv, rs); ok {
				return ordered(c, op)
			}
		}
		if !attr.CaseExact() {
			vv, rs = strings.ToLower(vv), strings.ToLower(rs)
		}
		switch op {
		case filter.CO:
			return strings.Contains(vv, rs)
		case filter.SW:
			return strings.HasPrefix(vv, rs)
		case filter.EW:
			return strings.HasSuffix(vv, rs)
		}
		return ordered(strings.Compare(vv, rs), op)
	case bool:
		rb, ok := ref.(bool)
		if !ok {
			return false
		}
		switch op {
		case filter.EQ:
			return vv == rb
		case filter.NE:
			return vv != rb
		}
		return false
	default:
		a, ok1 := toFloat(v)
		b, ok2 := toFloat(ref)
		if !ok1 || !ok2 {
			return false
		}
		switch {
		case a < b:
			return ordered(-1, op)
		case a > b:
			return ordered(1, op)
		}
		return ordered(0, op)
	}
}

func ordered(c int, op filter.CompareOperator) bool {
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

func compareTimes(a, b string) (int, bool) {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ta.Compare(tb), true
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func asList(v any) []any {
	switch vv := v.(type) {
	case []any:
		return vv
	case nil:
		return nil
	default:
		return []any{vv}
	}
}

// rewriteSubAttrValuePaths rewrites the non-standard (but Entra-emitted)
// filter form `attr[F].sub op value` into the RFC 7644 form
// `attr[F and sub op value]`, which filter-parser understands. Only an F that
// is a single comparison can be extended (filter-parser accepts at most two
// comparisons inside brackets); other inputs are returned unchanged.
func rewriteSubAttrValuePaths(f string) string {
	for range 16 {
		next, ok := rewriteOnce(f)
		if !ok {
			return f
		}
		f = next
	}
	return f
}

func rewriteOnce(f string) (string, bool) {
	inStr := false
	open := -1
	for i := 0; i < len(f); i++ {
		c := f[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[':
			open = i
		case ']':
			if i+1 >= len(f) || f[i+1] != '.' || open < 0 {
				continue
			}
			inner := f[open+1 : i]
			sub, op, val, end, ok := scanComparison(f, i+2)
			if !ok {
				return "", false
			}
			cond := sub + " " + op
			if val != "" {
				cond += " " + val
			}
			return fmt.Sprintf("%s[%s and %s]%s", f[:open], strings.TrimSpace(inner), cond, f[end:]), true
		}
	}
	return "", false
}

// scanComparison reads `name SP op [SP value]` starting at i.
func scanComparison(f string, i int) (name, op, val string, end int, ok bool) {
	isName := func(c byte) bool {
		return c == '_' || c == '-' || c == '$' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	}
	j := i
	for j < len(f) && isName(f[j]) {
		j++
	}
	if j == i {
		return "", "", "", 0, false
	}
	name = f[i:j]
	k := j
	for k < len(f) && f[k] == ' ' {
		k++
	}
	if k == j {
		return "", "", "", 0, false
	}
	o := k
	for o < len(f) && f[o] != ' ' && f[o] != ')' {
		o++
	}
	op = f[k:o]
	if strings.EqualFold(op, "pr") {
		return name, op, "", o, true
	}
	v := o
	for v < len(f) && f[v] == ' ' {
		v++
	}
	if v == o || v >= len(f) {
		return "", "", "", 0, false
	}
	e := v
	if f[v] == '"' {
		e = v + 1
		for e < len(f) && f[e] != '"' {
			if f[e] == '\\' {
				e++
			}
			e++
		}
		if e >= len(f) {
			return "", "", "", 0, false
		}
		e++
	} else {
		for e < len(f) && f[e] != ' ' && f[e] != ')' {
			e++
		}
	}
	return name, op, f[v:e], e, true
}
