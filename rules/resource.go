package rules

import (
	"fmt"
)

// RewriteResource rewrites a POST (OpCreate) or PUT (OpReplace) body. An unparseable
// body (not JSON, not an object) comes back unchanged with an error; a body nothing
// changed in comes back as the same slice.
func (s *Set) RewriteResource(resourceType string, op Operation, body []byte) ([]byte, []Finding, error) {
	tr := s.lookup(resourceType)
	if tr == nil {
		return body, nil, nil
	}
	if op != OpCreate && op != OpReplace {
		return body, nil, fmt.Errorf("rules: rewriting %s resource: operation %d is not create or replace", resourceType, op)
	}
	ar := getArena()
	defer ar.release()
	root, lead, trail, err := ar.parseRoot(body, tr.rootSpare)
	if err != nil {
		return body, nil, fmt.Errorf("rules: rewriting %s resource: %w", resourceType, err)
	}
	rw := rewriter{tr: tr, ar: ar, root: root, replace: op == OpReplace}
	rw.run()
	return rw.output(body, lead, trail), rw.findings, nil
}

// output serialises the rewritten root, or returns body when nothing changed.
func (rw *rewriter) output(body []byte, lead, trail string) []byte {
	if !rw.root.dirty() {
		return body
	}
	out := make([]byte, 0, len(body)+len(body)/8+64)
	out = append(out, lead...)
	out = rw.root.appendTo(out)
	return append(out, trail...)
}

// run applies the drops, then every rule, to rw.root.
func (rw *rewriter) run() {
	for _, d := range rw.tr.drops {
		if rw.removeAll(d, nil) > 0 {
			rw.note(SeverityInfo, CodeDropped, d.raw, "", "attribute "+d.raw+" dropped")
		}
	}
	for _, r := range rw.tr.rules {
		rw.apply(r)
	}
}

func (rw *rewriter) note(sev, code, attr, src, msg string) {
	if rw.findings == nil {
		rw.findings = make([]Finding, 0, 4)
	}
	rw.findings = append(rw.findings, Finding{Severity: sev, Code: code, Attribute: attr, Source: src, Message: msg})
}

// removeAll removes every occurrence of p except keep, and counts them.
func (rw *rewriter) removeAll(p *apath, keep *occ) int {
	var buf [8]occ
	occs := rw.collect(p, buf[:0])
	n := 0
	for i := range occs {
		if occs[i].same(keep) {
			continue
		}
		rw.remove(&occs[i])
		n++
	}
	return n
}

// apply applies one rule.
func (rw *rewriter) apply(r *crule) {
	if r.onlyNew && (rw.replace || rw.patch) {
		if rw.removeAll(r.target, nil) > 0 {
			rw.note(SeverityInfo, CodeDropped, r.target.raw, "", r.msgDropped)
		}
		for _, f := range r.from {
			if rw.removeAll(f, nil) > 0 {
				rw.note(SeverityInfo, CodeDropped, r.target.raw, f.raw, r.msgDropped)
			}
		}
		return
	}
	var tbuf [4]occ
	targets := rw.collect(r.target, tbuf[:0])
	if c := rw.pick(targets, true); c >= 0 {
		rw.normalise(&targets[c], r.target)
		for _, f := range r.from {
			rw.removeAll(f, &targets[c])
		}
		return
	}
	for fi, f := range r.from {
		var fbuf [4]occ
		occs := rw.collect(f, fbuf[:0])
		s := rw.pick(occs, true)
		if s < 0 {
			// Only null leftovers (a PATCH value has none: there every key counts).
			for i := range occs {
				rw.remove(&occs[i])
			}
			continue
		}
		src := &occs[s]
		ok, inPlace := rw.setTarget(r.target, targets, src, value{m: src.member()})
		if !ok {
			rw.note(SeverityWarning, CodeUnparseable, r.target.raw, f.raw,
				"attribute "+r.target.raw+" cannot be set from "+f.raw+": a value of another kind is in its place")
			return
		}
		var keep *occ
		if r.overlap {
			// A From filter may select the element the target was just written to.
			var kbuf [4]occ
			ts := rw.collect(r.target, kbuf[:0])
			if c := rw.pick(ts, true); c >= 0 {
				keep = &ts[c]
			}
		}
		if !inPlace {
			rw.remove(src)
		}
		for i := range occs {
			if i != s && !occs[i].same(keep) {
				rw.remove(&occs[i])
			}
		}
		for _, g := range r.from[fi+1:] {
			rw.removeAll(g, keep)
		}
		rw.note(SeverityInfo, CodeFallback, r.target.raw, f.raw, r.msgFallback[fi])
		return
	}
	if rw.patch {
		return
	}
	switch {
	case r.def != "":
		if ok, _ := rw.setTarget(r.target, targets, nil, value{raw: r.def}); !ok {
			rw.note(SeverityWarning, CodeUnparseable, r.target.raw, "",
				"default of "+r.target.raw+" cannot be set: a value of another kind is in its place")
			return
		}
		rw.note(SeverityInfo, CodeDefault, r.target.raw, "", r.msgDefault)
	case r.warn:
		rw.note(SeverityWarning, CodeMissing, r.target.raw, "", r.msgMissing)
	}
}
