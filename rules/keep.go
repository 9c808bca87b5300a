package rules

import "fmt"

// HasOnlyOnCreate reports whether a resource type has rules applied on creates only — the
// attributes KeepOnReplace carries over into a PUT.
func (s *Set) HasOnlyOnCreate(resourceType string) bool {
	tr := s.lookup(resourceType)
	if tr == nil {
		return false
	}
	for _, r := range tr.rules {
		if r.onlyNew {
			return true
		}
	}
	return false
}

// KeepOnReplace copies the value of every only_on create target from current (the resource
// as the backend has it now) into body, a PUT body already rewritten by RewriteResource with
// OpReplace. RFC 7644 §3.5.1 lets a PUT clear what it leaves out; carrying the current
// value over keeps an IdP update from wiping an attribute only creates may set. A target
// current lacks stays absent; a body that already holds the target keeps its value.
func (s *Set) KeepOnReplace(resourceType string, body, current []byte) ([]byte, error) {
	tr := s.lookup(resourceType)
	if tr == nil || !s.HasOnlyOnCreate(resourceType) {
		return body, nil
	}
	ar, car := getArena(), getArena()
	defer ar.release()
	defer car.release()
	root, lead, trail, err := ar.parseRoot(body, tr.rootSpare)
	if err != nil {
		return body, fmt.Errorf("rules: keeping %s attributes on replace: body: %w", resourceType, err)
	}
	croot, _, _, err := car.parseRoot(current, 0)
	if err != nil {
		return body, fmt.Errorf("rules: keeping %s attributes on replace: current resource: %w", resourceType, err)
	}
	rw := rewriter{tr: tr, ar: ar, root: root}
	cur := rewriter{tr: tr, ar: car, root: croot}
	for _, r := range tr.rules {
		if !r.onlyNew {
			continue
		}
		var cbuf, tbuf [4]occ
		have := cur.collect(r.target, cbuf[:0])
		c := cur.pick(have, true)
		if c < 0 {
			continue
		}
		targets := rw.collect(r.target, tbuf[:0])
		if rw.pick(targets, true) >= 0 {
			continue
		}
		rw.setTarget(r.target, targets, nil, value{raw: have[c].member().text()})
	}
	return rw.output(body, lead, trail), nil
}
