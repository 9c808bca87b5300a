package rules

import "strings"

// HasWarnTargets reports whether a resource type has rules with WarnIfMissing. It does
// not allocate: callers use it to skip warning bookkeeping on the request path.
func (s *Set) HasWarnTargets(resourceType string) bool {
	tr := s.lookup(resourceType)
	if tr == nil {
		return false
	}
	for _, r := range tr.rules {
		if r.warn {
			return true
		}
	}
	return false
}

// WarnTargets returns the targets of the rules of a resource type with WarnIfMissing, as
// written in the rules (the Attribute of their missing_attribute findings), in rule order.
func (s *Set) WarnTargets(resourceType string) []string {
	tr := s.lookup(resourceType)
	if tr == nil {
		return nil
	}
	var out []string
	for _, r := range tr.rules {
		if r.warn {
			out = append(out, r.target.raw)
		}
	}
	return out
}

// WarnPresent returns the WarnIfMissing targets (as WarnTargets spells them) that an
// effective body — one RewriteResource or RewritePatch already rewrote — gives a value,
// so that an open missing_attribute warning of the resource can be resolved.
//
//   - OpCreate, OpReplace: the target holds a value in the resource (not null, not an
//     empty array), found as RewriteResource finds it (qualified or not, any key case).
//   - OpPatch: an add or replace operation whose path is the target or below it (e.g. a
//     sub-attribute) with a non-null value, or whose value — path-less, or on a parent
//     of the target such as the extension URN — holds the target with a value. Removes
//     never count. Paths are compared as rules compare them (URN qualification, key
//     case, value filters).
//
// A body that cannot be parsed gives nil: presence is then unknown, and nothing resolves.
func (s *Set) WarnPresent(resourceType string, op Operation, body []byte) []string {
	tr := s.lookup(resourceType)
	if tr == nil || !s.HasWarnTargets(resourceType) {
		return nil
	}
	ar := getArena()
	defer ar.release()
	root, _, _, err := ar.parseRootView(body, 0) // the answer is rule targets: nothing of body outlives the call
	if err != nil {
		return nil
	}
	var found []bool
	switch op {
	case OpCreate, OpReplace:
		found = tr.warnHeld(ar, root, nil)
	case OpPatch:
		found = tr.warnPatched(ar, root)
	default:
		return nil
	}
	var out []string
	i := 0
	for _, r := range tr.rules {
		if !r.warn {
			continue
		}
		if found[i] {
			out = append(out, r.target.raw)
		}
		i++
	}
	return out
}

// warnHeld marks, in found (one entry per warn rule; allocated when nil), the warn
// targets that the resource (or partial resource) root holds with a value.
func (tr *typeRules) warnHeld(ar *arena, root *jobj, found []bool) []bool {
	if found == nil {
		found = make([]bool, tr.warnCount())
	}
	rw := rewriter{tr: tr, ar: ar, root: root}
	i := 0
	for _, r := range tr.rules {
		if !r.warn {
			continue
		}
		if !found[i] {
			var buf [4]occ
			found[i] = rw.pick(rw.collect(r.target, buf[:0]), true) >= 0
		}
		i++
	}
	return found
}

// warnPatched marks the warn targets a PatchOp message sets (see WarnPresent).
func (tr *typeRules) warnPatched(ar *arena, root *jobj) []bool {
	found := make([]bool, tr.warnCount())
	oi := root.plainIndex("Operations")
	if oi < 0 {
		return found
	}
	ops := root.mem[oi].arr(ar)
	if ops == nil {
		return found
	}
	for j := range ops.el {
		if ops.el[j].del {
			continue
		}
		o := ops.el[j].obj(ar)
		if o == nil {
			continue
		}
		opi, vi := o.plainIndex("op"), o.plainIndex("value")
		if opi < 0 || vi < 0 || o.mem[vi].isNull() {
			continue
		}
		name, ok := stringValue(o.mem[opi].val)
		if !ok || !foldEq(name, "add") && !foldEq(name, "replace") {
			continue
		}
		pi := o.plainIndex("path")
		if pi < 0 || o.mem[pi].isNull() {
			if v := o.mem[vi].obj(ar); v != nil {
				tr.warnHeld(ar, v, found)
			}
			continue
		}
		ps, ok := stringValue(o.mem[pi].val)
		if !ok {
			continue
		}
		p, err := tr.opPath(strings.TrimSpace(ps))
		if err != nil || p == nil {
			continue
		}
		vt := o.mem[vi].text()
		i := 0
		for _, r := range tr.rules {
			if !r.warn {
				continue
			}
			switch {
			case found[i]:
			case atOrBelow(p, r.target):
				found[i] = o.mem[vi].hasValue()
			case atOrBelow(r.target, p) && len(vt) > 0 && (vt[0] == '{' || vt[0] == '['):
				// An operation on a parent: its value is a partial resource holding just
				// that parent.
				sroot := ar.parseObj("{" + quote(ps) + ":" + vt + "}")
				found[i] = tr.warnHeld(ar, sroot, nil)[i]
			}
			i++
		}
	}
	return found
}

// warnCount is the number of rules with WarnIfMissing.
func (tr *typeRules) warnCount() int {
	n := 0
	for _, r := range tr.rules {
		if r.warn {
			n++
		}
	}
	return n
}
