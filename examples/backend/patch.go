package backend

import (
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// PATCH (RFC 7644 §3.5.2). elimity has already lower-cased "op", parsed and
// validated "path" against the schemas, dropped "id" from path-less values and
// type-checked every value (so "False" for a boolean is already a 400). What
// is left — applying the operation to the stored resource — is done here.

var (
	errNoTarget = scimerrors.ScimError{
		ScimType: scimerrors.ScimTypeNoTarget,
		Detail:   "The specified path did not yield an attribute or attribute value that could be operated on.",
		Status:   http.StatusBadRequest,
	}
	errInvalidPath = scimerrors.ScimErrorInvalidPath
	errMutability  = scimerrors.ScimErrorMutability
)

// target is a resolved PATCH path.
type target struct {
	ext    string // "" for the core schema, else the extension URN
	attr   schema.CoreAttribute
	sub    *schema.CoreAttribute // sub-attribute (name.givenName, emails[...].value)
	filter filter.Expression     // value filter (emails[type eq "work"])
}

func (h *resourceHandler) resolve(p filter.Path) (target, error) {
	var t target
	attrs := h.coreSchema().Attributes
	if uri := p.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, h.coreSchema().ID) {
		found := false
		for _, ext := range h.extensions() {
			if strings.EqualFold(uri, ext.ID) {
				attrs, t.ext, found = ext.Attributes, ext.ID, true
			}
		}
		if !found {
			return t, errInvalidPath
		}
	}
	attr, ok := attrs.ContainsAttribute(p.AttributePath.AttributeName)
	if !ok {
		return t, errInvalidPath
	}
	t.attr = attr
	subName := p.AttributePath.SubAttributeName()
	if p.ValueExpression != nil {
		if subName != "" || !attr.MultiValued() || !attr.HasSubAttributes() {
			return t, errInvalidPath
		}
		t.filter = p.ValueExpression
		subName = p.SubAttributeName()
	}
	if subName != "" {
		sa, ok := attr.SubAttributes().ContainsAttribute(subName)
		if !ok {
			return t, errInvalidPath
		}
		t.sub = &sa
	}
	return t, nil
}

func isReadOnly(a schema.CoreAttribute) bool { return a.Mutability() == "readOnly" }

func (h *resourceHandler) applyOperation(doc map[string]any, op scim.PatchOperation) error {
	if op.Path != nil {
		t, err := h.resolve(*op.Path)
		if err != nil {
			return err
		}
		if isReadOnly(t.attr) || (t.sub != nil && isReadOnly(*t.sub)) {
			return errMutability
		}
		return applyTarget(doc, op.Op, t, op.Value)
	}
	// No path: the value is a map of attribute paths (possibly dotted,
	// possibly URN-qualified) to values; elimity validated each entry.
	values, ok := op.Value.(map[string]any)
	if !ok {
		return scimerrors.ScimErrorInvalidValue
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, err := filter.ParsePath([]byte(k))
		if err != nil {
			return errInvalidPath
		}
		t, err := h.resolve(p)
		if err != nil {
			return err
		}
		if isReadOnly(t.attr) || (t.sub != nil && isReadOnly(*t.sub)) {
			continue // like PUT: read-only attributes in a full object are ignored
		}
		if err := applyTarget(doc, op.Op, t, values[k]); err != nil {
			return err
		}
	}
	return nil
}

func applyTarget(doc map[string]any, op string, t target, value any) error {
	container := doc
	if t.ext != "" {
		m, _ := doc[t.ext].(map[string]any)
		if m == nil {
			if op == scim.PatchOperationRemove {
				return nil
			}
			m = map[string]any{}
			doc[t.ext] = m
		}
		container = m
	}
	switch {
	case t.filter != nil:
		return applyFiltered(container, op, t, value)
	case t.sub != nil:
		applySub(container, op, t, value)
		return nil
	default:
		applyWhole(container, op, t.attr, value)
		return nil
	}
}

// applyWhole handles a path naming a whole attribute.
func applyWhole(c map[string]any, op string, attr schema.CoreAttribute, value any) {
	key := attr.Name()
	switch op {
	case scim.PatchOperationRemove:
		if value == nil || !attr.MultiValued() {
			delete(c, key)
			return
		}
		// Remove only the listed values (Entra: members + value array).
		items := asList(value)
		c[key] = slices.DeleteFunc(slices.Clone(asList(c[key])), func(el any) bool {
			return slices.ContainsFunc(items, func(it any) bool { return partialMatch(el, it, attr) })
		})
	case scim.PatchOperationAdd:
		switch {
		case attr.MultiValued():
			c[key] = union(asList(c[key]), asList(value), attr)
		case attr.HasSubAttributes():
			merge(c, key, value)
		default:
			c[key] = value
		}
	case scim.PatchOperationReplace:
		switch {
		case attr.MultiValued():
			items := slices.Clone(asList(value))
			c[key] = items
			enforcePrimary(items, items)
		case attr.HasSubAttributes():
			// RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged.
			merge(c, key, value)
		default:
			c[key] = value
		}
	}
}

// applySub handles attr.sub without a value filter.
func applySub(c map[string]any, op string, t target, value any) {
	key, sub := t.attr.Name(), t.sub.Name()
	if !t.attr.MultiValued() {
		m, _ := c[key].(map[string]any)
		if op == scim.PatchOperationRemove {
			if m != nil {
				delete(m, sub)
			}
			return
		}
		if m == nil {
			m = map[string]any{}
			c[key] = m
		}
		m[sub] = value
		return
	}
	// Multi-valued without filter: applies to every value.
	list := asList(c[key])
	if op != scim.PatchOperationRemove && len(list) == 0 {
		c[key] = []any{map[string]any{sub: value}}
		return
	}
	for _, el := range list {
		if m, ok := el.(map[string]any); ok {
			if op == scim.PatchOperationRemove {
				delete(m, sub)
			} else {
				m[sub] = value
			}
		}
	}
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func applyFiltered(c map[string]any, op string, t target, value any) error {
	key := t.attr.Name()
	list := asList(c[key])
	subSchema := schema.Schema{Attributes: t.attr.SubAttributes()}
	var matched []map[string]any
	isMatch := make([]bool, len(list))
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && evalExpr(t.filter, m, subSchema, nil) {
			matched = append(matched, m)
			isMatch[i] = true
		}
	}

	if t.sub != nil {
		sub := t.sub.Name()
		switch {
		case op == scim.PatchOperationRemove:
			for _, m := range matched {
				delete(m, sub)
			}
		case len(matched) > 0:
			for _, m := range matched {
				m[sub] = value
			}
			if sub == "primary" && value == true {
				enforcePrimary(list, anySlice(matched))
			}
		case op == scim.PatchOperationAdd:
			// add to a value that does not exist yet: create it from the
			// filter's equality conditions, e.g. {type: work, value: …}.
			el, ok := equalityObject(t.filter, t.attr)
			if !ok {
				return errNoTarget
			}
			el[sub] = value
			c[key] = append(list, el)
		default: // replace without a match: RFC 7644 §3.5.2.3
			return errNoTarget
		}
		return nil
	}

	items := asList(value)
	switch op {
	case scim.PatchOperationRemove:
		var kept []any
		for i, el := range list {
			if !isMatch[i] {
				kept = append(kept, el)
			}
		}
		c[key] = kept
	case scim.PatchOperationReplace:
		if len(matched) == 0 {
			return errNoTarget
		}
		var out []any
		inserted := false
		for i, el := range list {
			if !isMatch[i] {
				out = append(out, el)
				continue
			}
			if !inserted {
				out = append(out, items...)
				inserted = true
			}
		}
		enforcePrimary(out, items)
		c[key] = out
	case scim.PatchOperationAdd:
		if len(matched) == 0 {
			c[key] = union(list, items, t.attr)
			return nil
		}
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				for _, m := range matched {
					for k, v := range im {
						m[k] = v
					}
				}
			}
		}
	}
	return nil
}

func anySlice(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// equalityObject builds {attr: value} from `a eq v [and b eq w]` filters.
func equalityObject(e filter.Expression, attr schema.CoreAttribute) (map[string]any, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ || e.AttributePath.SubAttribute != nil || e.CompareValue == nil {
			return nil, false
		}
		sa, ok := attr.SubAttributes().ContainsAttribute(e.AttributePath.AttributeName)
		if !ok {
			return nil, false
		}
		return map[string]any{sa.Name(): e.CompareValue}, true
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return nil, false
		}
		l, ok1 := equalityObject(e.Left, attr)
		r, ok2 := equalityObject(e.Right, attr)
		if !ok1 || !ok2 {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// merge merges the sub-attributes of value into the complex attribute c[key].
func merge(c map[string]any, key string, value any) {
	vm, ok := value.(map[string]any)
	if !ok {
		c[key] = value
		return
	}
	m, _ := c[key].(map[string]any)
	if m == nil {
		m = map[string]any{}
		c[key] = m
	}
	for k, v := range vm {
		m[k] = v
	}
}

// union adds items to list unless already present. Group members are
// identified by "value" (a re-added member is merged, not duplicated); other
// multi-valued attributes by equality of all sub-attributes.
func union(list, items []any, attr schema.CoreAttribute) []any {
	list = slices.Clone(list)
	var added []any
	for _, it := range items {
		idx := -1
		for i, el := range list {
			if sameValue(el, it, attr) {
				idx = i
				break
			}
		}
		if idx < 0 {
			list = append(list, it)
			added = append(added, it)
			continue
		}
		if em, ok := list[idx].(map[string]any); ok {
			if im, ok := it.(map[string]any); ok {
				for k, v := range im {
					em[k] = v
				}
			}
		}
	}
	enforcePrimary(list, added)
	return list
}

func sameValue(el, it any, attr schema.CoreAttribute) bool {
	if attr.Name() == "members" {
		em, _ := el.(map[string]any)
		im, _ := it.(map[string]any)
		return em != nil && im != nil && em["value"] != nil && em["value"] == im["value"]
	}
	return partialMatch(el, it, attr) && partialMatch(it, el, attr)
}

// partialMatch reports whether every sub-attribute given in it equals the
// corresponding sub-attribute of el (case per the attribute's caseExact).
func partialMatch(el, it any, attr schema.CoreAttribute) bool {
	im, ok1 := it.(map[string]any)
	em, ok2 := el.(map[string]any)
	if !ok1 || !ok2 {
		return scalarEqual(el, it, attr)
	}
	if len(im) == 0 {
		return false
	}
	for k, v := range im {
		sa, ok := attr.SubAttributes().ContainsAttribute(k)
		if !ok {
			return false
		}
		if !scalarEqual(em[sa.Name()], v, sa) {
			return false
		}
	}
	return true
}

func scalarEqual(a, b any, attr schema.CoreAttribute) bool {
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	if ok1 && ok2 {
		if attr.CaseExact() {
			return as == bs
		}
		return strings.EqualFold(as, bs)
	}
	return a == b
}

// enforcePrimary keeps at most one "primary": true, preferring the values in
// preferred (the ones just written).
func enforcePrimary(list, preferred []any) {
	isPrimary := func(v any) bool {
		m, _ := v.(map[string]any)
		return m != nil && m["primary"] == true
	}
	var winner any
	for _, p := range preferred {
		if isPrimary(p) {
			winner = p
		}
	}
	if winner == nil {
		return
	}
	for _, el := range list {
		if m, ok := el.(map[string]any); ok && isPrimary(el) && !sameMap(m, winner) {
			m["primary"] = false
		}
	}
}

func sameMap(m map[string]any, v any) bool {
	o, ok := v.(map[string]any)
	return ok && reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(o).UnsafePointer()
}
