package rules

// Finding, setting and removing the places an attribute path addresses in a resource
// (or in a path-less PATCH value, which is a partial resource).

// frame is one step of an occurrence: member i of o, or element i of a.
type frame struct {
	o    *jobj
	a    *jarr
	i    int
	role uint8
}

// Frame roles: which spelling a member key takes when it is normalised.
const (
	roleFixed     = iota // keep the key (multi-step keys, array elements)
	roleContainer        // extension object key: the URN
	roleAttr             // attribute key
	roleSub              // sub-attribute key
)

// occ is one place a path addresses: a chain of frames from the root to the value.
type occ struct {
	fr      [4]frame
	n       int
	multi   bool     // the last key covers several path steps ("name.givenName")
	exact   bool     // every renamable key on the way has the rule's spelling
	elemAt  int      // index of the frame whose value is a multi-valued element, or -1
	elemFil *vfilter // the filter that selected that element
}

func (oc occ) push(o *jobj, a *jarr, i int, role uint8) occ {
	if oc.n < len(oc.fr) {
		oc.fr[oc.n] = frame{o: o, a: a, i: i, role: role}
		oc.n++
	}
	oc.multi = false
	return oc
}

// member returns the member the occurrence ends at, or nil when it ends at an element.
func (oc *occ) member() *jmem {
	f := oc.fr[oc.n-1]
	if f.o == nil {
		return nil
	}
	return &f.o.mem[f.i]
}

// same reports whether two occurrences end at the same place.
func (oc *occ) same(x *occ) bool {
	if x == nil || oc.n == 0 || x.n == 0 {
		return false
	}
	a, b := oc.fr[oc.n-1], x.fr[x.n-1]
	return a.o == b.o && a.a == b.a && a.i == b.i
}

// rewriter rewrites one resource or one path-less PATCH value in place.
type rewriter struct {
	tr       *typeRules
	ar       *arena
	root     *jobj
	patch    bool // a partial resource inside a PATCH operation
	replace  bool // a PUT: only-on-create rules drop their attributes
	findings []Finding
}

// collect appends every occurrence of p to dst, in document order.
func (rw *rewriter) collect(p *apath, dst []occ) []occ {
	return rw.collectIn(rw.root, p, true, occ{exact: true, elemAt: -1}, dst)
}

func (rw *rewriter) collectIn(o *jobj, p *apath, atRoot bool, base occ, dst []occ) []occ {
	for i := range o.mem {
		m := &o.mem[i]
		if m.del {
			continue
		}
		k := classify(m, rw.tr, atRoot)
		switch k.kind {
		case kOpaque:
			continue
		case kContainer:
			if !atRoot || p.uri == "" || !foldEq(k.uri, p.uri) {
				continue
			}
			if c := m.obj(rw.ar); c != nil {
				oc := base.push(o, nil, i, roleContainer)
				oc.exact = oc.exact && m.key == p.uri
				dst = rw.collectIn(c, p, false, oc, dst)
			}
			continue
		}
		attr, uri := k.attr, k.uri
		if k.kind == kPlain {
			attr, uri = m.key, ""
		}
		if !foldEq(attr, p.attr) || (atRoot && !foldEq(uri, p.uri)) || (!atRoot && uri != "") {
			continue
		}
		switch {
		case k.fil == nil && k.sub == "":
			role := uint8(roleAttr)
			if k.kind != kPlain {
				role = roleFixed
			}
			oc := base.push(o, nil, i, role)
			oc.exact = oc.exact && (k.kind != kPlain || m.key == p.attr)
			oc.multi = k.kind != kPlain
			dst = rw.descend(m, p, oc, dst)
		case k.fil == nil:
			if p.fil == nil && p.sub != "" && foldEq(k.sub, p.sub) {
				oc := base.push(o, nil, i, roleFixed)
				oc.multi = true
				dst = append(dst, oc)
			}
		default:
			if p.fil == nil || k.fil.canon != p.fil.canon {
				continue
			}
			oc := base.push(o, nil, i, roleFixed)
			switch {
			case k.sub != "":
				if foldEq(k.sub, p.sub) {
					oc.multi = true
					dst = append(dst, oc)
				}
			case p.sub == "":
				oc.multi = true
				dst = append(dst, oc)
			default:
				if el := m.obj(rw.ar); el != nil {
					oc.elemAt, oc.elemFil = oc.n-1, p.fil
					dst = rw.subIn(el, p, oc, dst)
				}
			}
		}
	}
	return dst
}

// descend continues below an attribute member.
func (rw *rewriter) descend(m *jmem, p *apath, oc occ, dst []occ) []occ {
	switch {
	case p.fil != nil:
		a := m.arr(rw.ar)
		if a == nil {
			return dst
		}
		for j := range a.el {
			e := &a.el[j]
			if e.del {
				continue
			}
			eo := e.obj(rw.ar)
			if eo == nil || !evalFilter(rw.ar, p.fil.expr, eo) {
				continue
			}
			ec := oc.push(nil, a, j, roleFixed)
			ec.elemAt, ec.elemFil = ec.n-1, p.fil
			if p.sub == "" {
				dst = append(dst, ec)
				continue
			}
			dst = rw.subIn(eo, p, ec, dst)
		}
		return dst
	case p.sub != "":
		if so := m.obj(rw.ar); so != nil {
			dst = rw.subIn(so, p, oc, dst)
		}
		return dst
	}
	return append(dst, oc)
}

func (rw *rewriter) subIn(o *jobj, p *apath, oc occ, dst []occ) []occ {
	for i := range o.mem {
		m := &o.mem[i]
		if m.del || !foldEq(m.key, p.sub) {
			continue
		}
		sc := oc.push(o, nil, i, roleSub)
		sc.exact = sc.exact && m.key == p.sub
		dst = append(dst, sc)
	}
	return dst
}

// has reports whether an occurrence holds a value: any member in a PATCH value (null
// clears), a non-null, non-empty value in a resource (RFC 7643 §2.5).
func (rw *rewriter) has(oc *occ) bool {
	m := oc.member()
	return m == nil || rw.patch || m.hasValue()
}

// pick chooses the occurrence that counts: the first with the rule's exact spelling,
// else the first; only occurrences holding a value when present is set. -1 if none.
func (rw *rewriter) pick(occs []occ, present bool) int {
	found := -1
	for i := range occs {
		if occs[i].member() == nil || present && !rw.has(&occs[i]) {
			continue
		}
		if occs[i].exact {
			return i
		}
		if found < 0 {
			found = i
		}
	}
	return found
}

// normalise renames the keys on the way to oc to the rule's spelling.
func (rw *rewriter) normalise(oc *occ, p *apath) {
	if oc.exact {
		return
	}
	for k := 0; k < oc.n; k++ {
		f := oc.fr[k]
		if f.o == nil {
			continue
		}
		var key, q string
		switch f.role {
		case roleContainer:
			key, q = p.uri, p.qURI
		case roleAttr:
			key, q = p.attr, p.qAttr
		case roleSub:
			key, q = p.sub, p.qSub
		default:
			continue
		}
		if f.o.mem[f.i].key != key {
			f.o.rename(f.i, key, q)
		}
	}
}

// remove deletes an occurrence, then the objects, elements and arrays it leaves empty
// on the way up (an element counts as empty when only its filter attributes remain).
func (rw *rewriter) remove(oc *occ) {
	last := oc.fr[oc.n-1]
	if last.o != nil {
		last.o.remove(last.i)
	} else {
		last.a.removeEl(last.i)
	}
	for k := oc.n - 2; k >= 0; k-- {
		f := oc.fr[k]
		var vo *jobj
		var va *jarr
		if f.o != nil {
			vo, va = f.o.mem[f.i].o, f.o.mem[f.i].a
		} else {
			vo = f.a.el[f.i].o
		}
		empty := false
		switch {
		case vo != nil:
			empty = vo.live() == 0 || k == oc.elemAt && onlyFilterAttrs(vo, oc.elemFil)
		case va != nil:
			empty = va.live() == 0
		}
		if !empty {
			return
		}
		if f.o != nil {
			f.o.remove(f.i)
		} else {
			f.a.removeEl(f.i)
		}
	}
}

func onlyFilterAttrs(o *jobj, f *vfilter) bool {
	if f == nil {
		return false
	}
	for i := range o.mem {
		if o.mem[i].del {
			continue
		}
		if !containsFold(f.attrs, o.mem[i].key) {
			return false
		}
	}
	return true
}

// value is what setTarget writes: a member's value (moved) or JSON text.
type value struct {
	m   *jmem
	raw string
}

func (v value) text() string {
	if v.m != nil {
		return v.m.text()
	}
	return v.raw
}

func (o *jobj) put(i int, v value) {
	if v.m != nil {
		o.moveValue(i, v.m)
		return
	}
	o.setValue(i, v.raw)
}

// setTarget writes v at p. targets are p's occurrences (none holding a value); src is
// the occurrence v comes from (nil for a default). It reports whether it could (false:
// a value of another kind is in the way) and whether it renamed the source in place
// (the source must then not be removed).
func (rw *rewriter) setTarget(p *apath, targets []occ, src *occ, v value) (ok, inPlace bool) {
	defer func() {
		if ok && p.uri != "" && !rw.patch {
			rw.ensureSchema(p)
		}
	}()
	// 1. A resource may hold the target as null: fill that place.
	if !rw.patch {
		if i := rw.pick(targets, false); i >= 0 && !targets[i].fr[targets[i].n-1].o.mem[targets[i].fr[targets[i].n-1].i].del {
			f := targets[i].fr[targets[i].n-1]
			f.o.put(f.i, v)
			rw.normalise(&targets[i], p)
			return true, false
		}
	}
	// 2. Rename the source key in place when the IdP's key form allows it.
	if src != nil && src.n > 0 {
		if last := src.fr[src.n-1]; last.o != nil {
			switch {
			case src.multi && src.n == 1:
				last.o.rename(last.i, p.flat, p.qFlat)
				return true, true
			case src.multi && src.n == 2 && src.fr[0].role == roleContainer && p.uri != "" &&
				foldEq(src.fr[0].o.mem[src.fr[0].i].key, p.uri):
				last.o.rename(last.i, p.flatRel, p.qFlatRel)
				oc := *src
				oc.exact, oc.n = false, 1
				rw.normalise(&oc, p)
				return true, true
			case !src.multi && last.o == rw.targetParent(p):
				// Same parent: the keys on the way are the target's, in the From's case.
				oc := *src
				oc.exact = false
				oc.fr[oc.n-1].role = roleAttr
				if p.fil != nil || p.sub != "" {
					oc.fr[oc.n-1].role = roleSub
				}
				rw.normalise(&oc, p)
				return true, true
			}
		}
	}
	// 3. Write the canonical nested form.
	return rw.setCanonical(p, v), false
}

// targetParent returns the object p's last key lives in, if it exists, without creating.
func (rw *rewriter) targetParent(p *apath) *jobj {
	base := rw.root
	if p.uri != "" {
		i := rw.containerIndex(p.uri)
		if i < 0 {
			return nil
		}
		base = base.mem[i].obj(rw.ar)
		if base == nil {
			return nil
		}
	}
	if p.fil == nil && p.sub == "" {
		return base
	}
	i := base.plainIndex(p.attr)
	if i < 0 {
		return nil
	}
	if p.fil == nil {
		return base.mem[i].obj(rw.ar)
	}
	a := base.mem[i].arr(rw.ar)
	if a == nil {
		return nil
	}
	for j := range a.el {
		if a.el[j].del {
			continue
		}
		if eo := a.el[j].obj(rw.ar); eo != nil && evalFilter(rw.ar, p.fil.expr, eo) {
			return eo
		}
	}
	return nil
}

// containerIndex finds the root member holding extension uri, preferring the exact spelling.
func (rw *rewriter) containerIndex(uri string) int {
	found := -1
	for i := range rw.root.mem {
		m := &rw.root.mem[i]
		if m.del {
			continue
		}
		if k := classify(m, rw.tr, true); k.kind == kContainer && foldEq(k.uri, uri) {
			if m.key == uri {
				return i
			}
			if found < 0 {
				found = i
			}
		}
	}
	return found
}

// setCanonical writes v at p in nested form, creating what is missing.
func (rw *rewriter) setCanonical(p *apath, v value) bool {
	base := rw.root
	if p.uri != "" {
		i := rw.containerIndex(p.uri)
		if i < 0 {
			i = base.add(p.uri, p.qURI, "{}")
		}
		if base.mem[i].isNull() {
			base.setValue(i, "{}")
		}
		c := base.mem[i].obj(rw.ar)
		if c == nil {
			return false
		}
		if base.mem[i].key != p.uri {
			base.rename(i, p.uri, p.qURI)
		}
		base = c
	}
	i := base.plainIndex(p.attr)
	if i >= 0 && base.mem[i].key != p.attr {
		base.rename(i, p.attr, p.qAttr)
	}
	switch {
	case p.fil == nil && p.sub == "":
		if i < 0 {
			i = base.add(p.attr, p.qAttr, "")
		}
		base.put(i, v)
	case p.fil == nil:
		if i < 0 || base.mem[i].isNull() {
			obj := "{" + p.qSub + ":" + v.text() + "}"
			if i < 0 {
				base.add(p.attr, p.qAttr, obj)
			} else {
				base.setValue(i, obj)
			}
			return true
		}
		so := base.mem[i].obj(rw.ar)
		if so == nil {
			return false
		}
		rw.putSub(so, p, v)
	default:
		if i < 0 || base.mem[i].isNull() {
			arr := "[" + newElement(p, v) + "]"
			if i < 0 {
				base.add(p.attr, p.qAttr, arr)
			} else {
				base.setValue(i, arr)
			}
			return true
		}
		a := base.mem[i].arr(rw.ar)
		if a == nil {
			return false
		}
		for j := range a.el {
			if a.el[j].del {
				continue
			}
			if eo := a.el[j].obj(rw.ar); eo != nil && evalFilter(rw.ar, p.fil.expr, eo) {
				rw.putSub(eo, p, v)
				return true
			}
		}
		a.push(newElement(p, v))
	}
	return true
}

func (rw *rewriter) putSub(o *jobj, p *apath, v value) {
	j := o.plainIndex(p.sub)
	if j < 0 {
		j = o.add(p.sub, p.qSub, "")
	} else if o.mem[j].key != p.sub {
		o.rename(j, p.sub, p.qSub)
	}
	o.put(j, v)
}

// newElement builds a multi-valued element from the filter's eq comparisons and v.
func newElement(p *apath, v value) string {
	if p.fil.elem == "" {
		return "{" + p.qSub + ":" + v.text() + "}"
	}
	return "{" + p.fil.elem + "," + p.qSub + ":" + v.text() + "}"
}

// ensureSchema adds uri to the resource's schemas array when it is missing.
func (rw *rewriter) ensureSchema(p *apath) {
	i := rw.root.plainIndex("schemas")
	if i < 0 {
		return
	}
	a := rw.root.mem[i].arr(rw.ar)
	if a == nil {
		return
	}
	for j := range a.el {
		if a.el[j].del {
			continue
		}
		if s, ok := stringValue(a.el[j].val); ok && foldEq(s, p.uri) {
			return
		}
	}
	a.push(p.qURI)
}
