package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Rule says where one attribute must land.
type Rule struct {
	Target        string          // attribute path, e.g. "favoriteColor", "name.givenName", `emails[type eq "work"].value`
	From          []string        // fallback paths, looked at in order when Target is absent
	WarnIfMissing bool            // report a missing_attribute warning when Target, From and Default give nothing
	Default       json.RawMessage // JSON value set when Target and every From are absent (nil: none)
	OnlyOnCreate  bool            // attribute dropped from updates (PUT, PATCH)
}

// ResourceRules are the rules of one resource type ("User", "Group", matched case-insensitively).
type ResourceRules struct {
	Rules []Rule
	Drop  []string // attribute paths the backend must never receive
}

// Operation is the kind of write a resource body belongs to.
type Operation int

// Operations understood by RewriteResource (OpPatch bodies go to RewritePatch).
const (
	OpCreate  Operation = iota // POST: a new resource
	OpReplace                  // PUT: a full replacement
	OpPatch                    // PATCH: a PatchOp message
)

// Finding severities and codes.
const (
	SeverityWarning = "warning" // something the operator should look at
	SeverityInfo    = "info"    // something the rules did
	SeverityError   = "error"   // the backend would refuse the request (predicted in preview)

	CodeMissing     = "missing_attribute" // warning: a rule's target is absent and nothing filled it
	CodeFallback    = "fallback_used"     // info: the target was taken from a From path
	CodeUnparseable = "unparseable"       // warning: a part of the input could not be handled
	CodeDropped     = "dropped"           // info: an attribute or a PATCH operation was removed
	CodeDefault     = "default_used"      // info: the target was set to the rule's default
)

// Finding is one thing a rewrite noticed or did.
type Finding struct {
	Severity  string `json:"severity"`            // "warning" or "info"
	Code      string `json:"code"`                // one of the Code… constants
	Attribute string `json:"attribute,omitempty"` // the rule's target path (or dropped path)
	Source    string `json:"source,omitempty"`    // the from path that was used, as written in the rule
	Path      string `json:"path,omitempty"`      // for predicted errors: the path in the request the error is about
	Kind      string `json:"kind,omitempty"`      // for normalized findings: the normalisation (KindOpCase, …)
	Message   string `json:"message"`
}

// Set is a compiled, immutable, concurrency-safe rule set.
type Set struct {
	types []*typeRules
}

// typeRules are the compiled rules of one resource type.
type typeRules struct {
	name  string
	rules []*crule
	drops []*apath
	uris  []string // extension schema URNs named by any path, as first written
	// uriKeys are the key classifications of uris' container members (classifyKey).
	uriKeys []*kpath
	paths   []*apath // every target, from and drop path
	// hasFrom says whether any rule has From paths (filters and lists need them).
	hasFrom bool
	// rootSpare is the room kept for members the rules may add to a resource root.
	rootSpare int
	attrs     []string // attribute names of every path
	fromAttrs []string // attribute names of the From paths

	cache  sync.Map // request path → cachedPath
	cached atomic.Int64
	// simple memoises the paths parseSimple takes (request path → *apath).
	simple  sync.Map
	nsimple atomic.Int64
}

// crule is a compiled Rule.
type crule struct {
	target    *apath
	from      []*apath
	warn      bool
	def       string // compact JSON, "" for none
	onlyNew   bool
	overlap   bool   // a value-filtered From shares the target's attribute
	revName   string // the target's name mayReverse looks for (reverse.go)
	revAnchor int    // the index of its rarest letter
	fromOK    []bool // whether each From can be set (a reverse mapping target), see apath.checkSettable

	msgMissing, msgDefault, msgDropped string
	msgFallback                        []string
}

// maxNesting bounds the JSON nesting depth the rewriters accept.
const maxNesting = 128

// Compile validates and compiles rules per resource type. Every path is parsed as an
// RFC 7644 attribute path; an error names the resource type, the rule and the bad path.
// A nil or empty map gives an empty Set.
func Compile(byType map[string]ResourceRules) (*Set, error) {
	s := &Set{}
	names := make([]string, 0, len(byType))
	for name := range byType {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		if strings.TrimSpace(name) == "" {
			return nil, errors.New("rules: empty resource type name")
		}
		for _, other := range names[:i] {
			if foldEq(other, name) {
				return nil, fmt.Errorf("rules: resource type %q given twice (also as %q)", name, other)
			}
		}
		tr, err := compileType(name, byType[name])
		if err != nil {
			return nil, err
		}
		if len(tr.rules) > 0 || len(tr.drops) > 0 {
			s.types = append(s.types, tr)
		}
	}
	return s, nil
}

func compileType(name string, rr ResourceRules) (*typeRules, error) {
	tr := &typeRules{name: name}
	type role struct {
		p    *apath
		what string
	}
	var all []role
	for i, r := range rr.Rules {
		where := fmt.Sprintf("rules: %s rule %d", name, i+1)
		t, err := compilePath(r.Target)
		if err != nil {
			return nil, fmt.Errorf("%s: target: %w", where, err)
		}
		if err := t.checkSettable(); err != nil {
			return nil, fmt.Errorf("%s: target %q: %w", where, r.Target, err)
		}
		cr := &crule{target: t, warn: r.WarnIfMissing, onlyNew: r.OnlyOnCreate, revName: reverseName(t)}
		cr.revAnchor = rarestLetter(cr.revName)
		all = append(all, role{t, fmt.Sprintf("target of rule %d", i+1)})
		for j, f := range r.From {
			fp, err := compilePath(f)
			if err != nil {
				return nil, fmt.Errorf("%s: from %d: %w", where, j+1, err)
			}
			if fp.fil != nil && fp.sub == "" {
				return nil, fmt.Errorf("%s: from %q: a value-filtered path needs a sub-attribute", where, f)
			}
			cr.from = append(cr.from, fp)
			cr.fromOK = append(cr.fromOK, fp.checkSettable() == nil)
			cr.overlap = cr.overlap || fp.fil != nil && foldEq(fp.uri, t.uri) && foldEq(fp.attr, t.attr)
			all = append(all, role{fp, fmt.Sprintf("from %d of rule %d", j+1, i+1)})
		}
		if r.Default != nil {
			def, err := compactJSON(r.Default)
			if err != nil {
				return nil, fmt.Errorf("%s: default of %q: %w", where, r.Target, err)
			}
			if def == "null" {
				return nil, fmt.Errorf("%s: default of %q: null is not a value", where, r.Target)
			}
			cr.def = def
		}
		cr.msgMissing = "attribute " + t.raw + " is missing"
		if len(cr.from) > 0 {
			cr.msgMissing += " (no value in " + strings.Join(r.From, ", ") + " either)"
		}
		cr.msgDefault = "attribute " + t.raw + " is missing; default value " + cr.def + " set"
		cr.msgDropped = "attribute " + t.raw + " is only set on create; removed from the update"
		for _, f := range cr.from {
			cr.msgFallback = append(cr.msgFallback, "attribute "+t.raw+" taken from "+f.raw)
		}
		tr.rules = append(tr.rules, cr)
	}
	for i, d := range rr.Drop {
		dp, err := compilePath(d)
		if err != nil {
			return nil, fmt.Errorf("rules: %s drop %d: %w", name, i+1, err)
		}
		tr.drops = append(tr.drops, dp)
		all = append(all, role{dp, fmt.Sprintf("drop %d", i+1)})
	}
	// Paths must not overlap: one path equal to, inside or around another would make the
	// outcome depend on rule order and break idempotence.
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			a, b := all[i].p, all[j].p
			if atOrBelow(a, b) || atOrBelow(b, a) {
				return nil, fmt.Errorf("rules: %s: path %q (%s) overlaps %q (%s)", name, a.raw, all[i].what, b.raw, all[j].what)
			}
		}
		tr.paths = append(tr.paths, all[i].p)
	}
	canonicalSpelling(tr)
	for _, u := range tr.uris {
		tr.uriKeys = append(tr.uriKeys, &kpath{kind: kContainer, uri: u})
	}
	for _, r := range tr.rules {
		tr.hasFrom = tr.hasFrom || len(r.from) > 0
	}
	tr.rootSpare = min(len(tr.rules)+spare, 64)
	for _, p := range tr.paths {
		if !containsFold(tr.attrs, p.attr) {
			tr.attrs = append(tr.attrs, p.attr)
		}
	}
	for _, r := range tr.rules {
		for _, f := range r.from {
			if !containsFold(tr.fromAttrs, f.attr) {
				tr.fromAttrs = append(tr.fromAttrs, f.attr)
			}
		}
	}
	return tr, nil
}

// canonicalSpelling makes every path spell a shared URN or attribute the way it was
// first written, so normalising key case never flips between two rules.
func canonicalSpelling(tr *typeRules) {
	attrs := map[string]string{}
	for _, p := range tr.paths {
		if p.uri != "" {
			found := false
			for _, u := range tr.uris {
				if foldEq(u, p.uri) {
					p.uri, found = u, true
					break
				}
			}
			if !found {
				tr.uris = append(tr.uris, p.uri)
			}
		}
		key := strings.ToLower(p.uri + "\x00" + p.attr)
		if a, ok := attrs[key]; ok {
			p.attr = a
		} else {
			attrs[key] = p.attr
		}
		p.finish()
	}
}

func compactJSON(raw []byte) (string, error) {
	if !json.Valid(raw) {
		return "", errors.New("not valid JSON")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", fmt.Errorf("compacting: %w", err)
	}
	return b.String(), nil
}

// Empty reports whether the set has no rules and no drops (a nil Set is empty).
func (s *Set) Empty() bool {
	return s == nil || len(s.types) == 0
}

// lookup returns the rules of a resource type, or nil.
func (s *Set) lookup(resourceType string) *typeRules {
	if s == nil {
		return nil
	}
	for _, t := range s.types {
		if foldEq(t.name, resourceType) {
			return t
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if foldEq(x, s) {
			return true
		}
	}
	return false
}
