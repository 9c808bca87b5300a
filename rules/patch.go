package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RewritePatch rewrites a PATCH body (a PatchOp message with "Operations"): operation
// paths naming a From path point at the target instead, operations on dropped or
// only-on-create attributes are removed, and the value objects of path-less operations
// (and of operations on a parent of a rule's path) are rewritten like partial
// resources, without defaults or missing-attribute warnings. A body that is not a
// PatchOp message comes back unchanged with an error.
func (s *Set) RewritePatch(resourceType string, body []byte) ([]byte, []Finding, error) {
	tr := s.lookup(resourceType)
	if tr == nil {
		return body, nil, nil
	}
	ar := getArena()
	defer ar.release()
	root, lead, trail, err := ar.parseRoot(body, spare)
	if err != nil {
		return body, nil, fmt.Errorf("rules: rewriting %s PATCH: %w", resourceType, err)
	}
	oi := root.plainIndex("Operations")
	if oi < 0 {
		return body, nil, fmt.Errorf("rules: rewriting %s PATCH: %w", resourceType, errors.New("no Operations member"))
	}
	ops := root.mem[oi].arr(ar)
	if ops == nil {
		return body, nil, fmt.Errorf("rules: rewriting %s PATCH: %w", resourceType, errors.New("Operations is not an array"))
	}
	for j := range ops.el {
		if ops.el[j].obj(ar) == nil {
			return body, nil, fmt.Errorf("rules: rewriting %s PATCH: operation %d is not an object", resourceType, j)
		}
	}
	rw := rewriter{tr: tr, ar: ar, root: root, patch: true}
	for j := range ops.el {
		rw.patchOp(ops, j)
	}
	return rw.output(body, lead, trail), rw.findings, nil
}

// patchOp rewrites operation j of ops.
func (rw *rewriter) patchOp(ops *jarr, j int) {
	o := ops.el[j].o
	where := opName(j)
	opi := o.plainIndex("op")
	if opi < 0 {
		rw.note(SeverityWarning, CodeUnparseable, "", "", where.String()+" has no op; left unchanged")
		return
	}
	name, ok := stringValue(o.mem[opi].val)
	if !ok {
		rw.note(SeverityWarning, CodeUnparseable, "", "", where.String()+": op is not a string; left unchanged")
		return
	}
	isRemove := foldEq(name, "remove")
	if !isRemove && !foldEq(name, "add") && !foldEq(name, "replace") {
		rw.note(SeverityWarning, CodeUnparseable, "", "", where.String()+": unknown op "+strconv.Quote(name)+"; left unchanged")
		return
	}
	pi, vi := o.plainIndex("path"), o.plainIndex("value")
	if pi < 0 || o.mem[pi].isNull() {
		if isRemove || vi < 0 {
			return
		}
		v := o.mem[vi].obj(rw.ar)
		if v == nil {
			return
		}
		before := v.live()
		sub := rewriter{tr: rw.tr, ar: rw.ar, root: v, patch: true}
		sub.run()
		rw.findings = append(rw.findings, sub.findings...)
		if before > 0 && v.live() == 0 {
			ops.removeEl(j)
		}
		return
	}
	pv := o.mem[pi].val
	if len(pv) > 2 && pv[0] == '"' {
		// Most paths name attributes no rule knows (group members): skip those before
		// decoding the string.
		head := pv[1 : len(pv)-1]
		if b := strings.IndexByte(head, '['); b >= 0 {
			head = head[:b]
		}
		if strings.IndexByte(head, '\\') < 0 && !rw.tr.knowsPath(head) {
			return
		}
	}
	ps, ok := stringValue(pv)
	if !ok {
		rw.note(SeverityWarning, CodeUnparseable, "", "", where.String()+": path is not a string; left unchanged")
		return
	}
	p, err := rw.tr.opPath(ps)
	if err != nil {
		rw.note(SeverityWarning, CodeUnparseable, ps, "", where.String()+": path "+strconv.Quote(ps)+" left unchanged: "+err.Error())
		return
	}
	if p == nil {
		return
	}
	// Operations on dropped or only-on-create attributes go.
	for _, d := range rw.tr.drops {
		if atOrBelow(p, d) {
			ops.removeEl(j)
			rw.note(SeverityInfo, CodeDropped, d.raw, "", where.String()+" on "+ps+" removed: attribute "+d.raw+" is dropped")
			return
		}
	}
	for _, r := range rw.tr.rules {
		if !r.onlyNew {
			continue
		}
		if atOrBelow(p, r.target) {
			ops.removeEl(j)
			rw.note(SeverityInfo, CodeDropped, r.target.raw, "", where.String()+" on "+ps+" removed: "+r.msgDropped)
			return
		}
		for _, f := range r.from {
			if atOrBelow(p, f) {
				ops.removeEl(j)
				rw.note(SeverityInfo, CodeDropped, r.target.raw, f.raw, where.String()+" on "+ps+" removed: "+r.msgDropped)
				return
			}
		}
	}
	// A path at or below a From path points at the target instead.
	for _, r := range rw.tr.rules {
		for fi, f := range r.from {
			if !atOrBelow(p, f) {
				continue
			}
			np, ok := rebase(p, f, r.target)
			if !ok {
				rw.note(SeverityWarning, CodeUnparseable, r.target.raw, f.raw,
					where.String()+": path "+strconv.Quote(ps)+" cannot be expressed below "+r.target.raw+"; left unchanged")
				return
			}
			o.setValue(pi, quote(np))
			rw.note(SeverityInfo, CodeFallback, r.target.raw, f.raw, r.msgFallback[fi])
			return
		}
	}
	// An add or replace on a parent of a rule's path: rewrite its value as a partial
	// resource holding just that parent.
	if isRemove || vi < 0 || !rw.tr.isAncestor(p) {
		return
	}
	vt := o.mem[vi].text()
	if len(vt) == 0 || vt[0] != '{' && vt[0] != '[' {
		return
	}
	sroot := rw.ar.parseObj("{" + quote(ps) + ":" + vt + "}")
	sub := rewriter{tr: rw.tr, ar: rw.ar, root: sroot, patch: true}
	sub.run()
	if !sroot.dirty() {
		return
	}
	rw.findings = append(rw.findings, sub.findings...)
	first := true
	for k := range sroot.mem {
		m := &sroot.mem[k]
		if m.del {
			continue
		}
		if first {
			first = false
			if m.key != ps {
				o.setValue(pi, m.rkey)
			}
			o.setValue(vi, m.text())
			continue
		}
		e := &ops.el[j]
		e.extra = append(e.extra, "{\"op\":"+o.mem[opi].val+",\"path\":"+m.rkey+",\"value\":"+m.text()+"}")
		ops.changed = true
	}
	if first {
		ops.removeEl(j)
	}
}

// opName names operation j in messages.
type opName int

func (j opName) String() string { return "operation " + strconv.Itoa(int(j)) }

// opPath parses a PATCH operation path; a bare extension URN names the whole extension.
// A path whose attribute no rule names is not parsed (nil, nil): nothing can apply to
// it, and group membership operations carry many distinct filtered paths.
func (tr *typeRules) opPath(s string) (*apath, error) {
	for _, u := range tr.uris {
		if foldEq(s, u) {
			a := &apath{raw: s, uri: u, container: true}
			a.finish()
			return a, nil
		}
	}
	if !tr.knowsPath(s) {
		return nil, nil
	}
	return tr.parsePath(s)
}

// knowsPath reports whether a rule could apply to path s, by a quick look at the
// attribute name it starts with (or the extension it names).
func (tr *typeRules) knowsPath(s string) bool {
	return containsFold(tr.attrs, pathAttr(s)) || containsFold(tr.uris, s)
}

// pathAttr returns the attribute name a path starts with, by a quick look.
func pathAttr(s string) string {
	if b := strings.IndexByte(s, '['); b >= 0 {
		s = s[:b]
	}
	if c := strings.LastIndexByte(s, ':'); c >= 0 {
		s = s[c+1:]
	}
	if d := strings.IndexByte(s, '.'); d >= 0 {
		s = s[:d]
	}
	return strings.TrimSpace(s)
}

// isAncestor reports whether p is strictly above a path the rules act on.
func (tr *typeRules) isAncestor(p *apath) bool {
	for _, d := range tr.paths {
		if atOrBelow(d, p) && !atOrBelow(p, d) {
			return true
		}
	}
	return false
}

// rebase rewrites p, which is at or below from, to the same place below to.
func rebase(p, from, to *apath) (string, bool) {
	if atOrBelow(from, p) {
		return to.flat, true
	}
	// p is strictly below from: from is a bare attribute, p adds a filter and/or sub.
	if !from.simple() || !to.simple() {
		return "", false
	}
	np := &apath{uri: to.uri, attr: to.attr, fil: p.fil, sub: p.sub}
	np.finish()
	return np.flat, true
}
