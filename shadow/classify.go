package shadow

import (
	"net/http"
	"net/url"
	"strings"
)

// Operation is what a SCIM request does.
type Operation string

// Operations a request can be classified as.
const (
	OpCreate  Operation = "create"  // POST /Users
	OpReplace Operation = "replace" // PUT /Users/{id}
	OpPatch   Operation = "patch"   // PATCH /Users/{id}
	OpDelete  Operation = "delete"  // DELETE /Users/{id}
	OpRead    Operation = "read"    // GET
	OpSearch  Operation = "search"  // POST …/.search
	OpBulk    Operation = "bulk"    // POST /Bulk
	OpOther   Operation = "other"   // not a SCIM request this module understands
	// OpUnknownWrite is a write to a path that is not a SCIM resource, seen in preview: it
	// is recorded as sent, never forwarded.
	OpUnknownWrite Operation = "unknown_write"
)

// IsWrite reports whether the operation changes the backend.
func (o Operation) IsWrite() bool {
	switch o {
	case OpCreate, OpReplace, OpPatch, OpDelete, OpBulk, OpUnknownWrite:
		return true
	}
	return false
}

// DefaultEndpoints maps resource endpoints to resource types, as RFC 7643 §8.7.2 names them.
var DefaultEndpoints = map[string]string{"Users": "User", "Groups": "Group"}

// serviceEndpoints are read-only discovery endpoints (RFC 7644 §4).
var serviceEndpoints = []string{"Schemas", "ResourceTypes", "ServiceProviderConfig", "Me"}

// Target is a classified request: which resource it addresses and what it does to it.
type Target struct {
	Base         string    // the path before the endpoint, e.g. "/scim/v2" ("" at the root)
	Endpoint     string    // "Users", "Bulk", "" for a root .search
	ResourceType string    // "User", "Group", "" when the request spans types
	ID           string    // resource id, "" for a collection
	Op           Operation // what the request does
}

// Classify finds the SCIM endpoint in a request path (under any base path, such as
// /scim/v2) and the operation of the method on it. endpoints maps endpoint names to
// resource types (nil means DefaultEndpoints); names match case-insensitively. The endpoint
// is looked for at the end of the path — …/Users, …/Users/{id}, …/Users/.search, …/Bulk —
// so a base path whose segments look like endpoints (/tenants/me/scim/v2/Users) does not
// confuse it. escapedPath is the path as sent (URL.EscapedPath), so an id holding an
// encoded slash stays one segment.
func Classify(method, escapedPath string, endpoints map[string]string) Target {
	return classifyParts(method, splitPath(escapedPath), endpoints)
}

// classifyParts is Classify on a split path.
func classifyParts(method string, p pathParts, endpoints map[string]string) Target {
	if endpoints == nil {
		endpoints = DefaultEndpoints
	}
	// …/Users/{id} and …/Users/.search
	if p.n >= 2 {
		if name, rt, ok := lookupEndpoint(p.prev, endpoints); ok {
			t := classifyResource(method, Target{Endpoint: name, ResourceType: rt}, p.last, true)
			t.Base = p.base2
			return t
		}
		for _, svc := range serviceEndpoints {
			if strings.EqualFold(p.prev, svc) { // /Schemas/{id}, /ResourceTypes/{name}
				return serviceTarget(method, svc, p.base2)
			}
		}
	}
	switch {
	case p.last == ".search":
		if method == http.MethodPost {
			return Target{Base: p.base1, Op: OpSearch}
		}
		return Target{Op: OpOther}
	case strings.EqualFold(p.last, "Bulk"):
		if method == http.MethodPost {
			return Target{Base: p.base1, Endpoint: "Bulk", Op: OpBulk}
		}
		return Target{Endpoint: "Bulk", Op: OpOther}
	}
	for _, svc := range serviceEndpoints {
		if strings.EqualFold(p.last, svc) {
			return serviceTarget(method, svc, p.base1)
		}
	}
	if name, rt, ok := lookupEndpoint(p.last, endpoints); ok {
		t := classifyResource(method, Target{Endpoint: name, ResourceType: rt}, "", false)
		t.Base = p.base1
		return t
	}
	return Target{Op: OpOther}
}

// pathParts are what Classify looks at in a path split at '/' (after trimming the slashes
// around it) into n unescaped segments: the last two and the paths before them.
type pathParts struct {
	n            int
	last, prev   string // segments n-1 and n-2 ("" when n < 2)
	base1, base2 string // "/" + segments before n-1 (before n-2) joined with '/', "" when none
}

// splitPath splits an escaped path. A path without '%' is sliced, not copied: its
// segments are its own text.
func splitPath(escapedPath string) pathParts {
	trimmed := strings.Trim(escapedPath, "/")
	if strings.IndexByte(trimmed, '%') >= 0 {
		return splitEscapedPath(trimmed)
	}
	// "/" + trimmed[:k], sliced from escapedPath when it has a single leading slash.
	lead := strings.Index(escapedPath, trimmed)
	slash := func(k int) string {
		if lead == 1 {
			return escapedPath[:1+k]
		}
		return "/" + trimmed[:k]
	}
	p := pathParts{n: 1, last: trimmed}
	i := strings.LastIndexByte(trimmed, '/')
	if i < 0 {
		return p
	}
	p.n, p.last, p.base1 = 2, trimmed[i+1:], slash(i)
	j := strings.LastIndexByte(trimmed[:i], '/')
	p.prev = trimmed[j+1 : i]
	if j >= 0 {
		p.n = 3 + strings.Count(trimmed[:j], "/")
		p.base2 = slash(j)
	}
	return p
}

// splitEscapedPath splits a trimmed path holding escapes, unescaping each segment (a stray
// '%' is part of the name), so an encoded slash stays inside its segment.
func splitEscapedPath(trimmed string) pathParts {
	raw := strings.Split(trimmed, "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		seg, err := url.PathUnescape(r)
		if err != nil {
			seg = r
		}
		segs[i] = seg
	}
	n := len(segs)
	base := func(k int) string {
		if k <= 0 {
			return ""
		}
		return "/" + strings.Join(segs[:k], "/")
	}
	p := pathParts{n: n, last: segs[n-1], base1: base(n - 1)}
	if n >= 2 {
		p.prev, p.base2 = segs[n-2], base(n-2)
	}
	return p
}

// lookupEndpoint matches a path segment with a resource endpoint, case-insensitively.
func lookupEndpoint(seg string, endpoints map[string]string) (name, resourceType string, ok bool) {
	for name, rt := range endpoints {
		if strings.EqualFold(seg, name) {
			return name, rt, true
		}
	}
	return "", "", false
}

// serviceTarget classifies a discovery endpoint: readable, nothing else.
func serviceTarget(method, svc, base string) Target {
	if method == http.MethodGet || method == http.MethodHead {
		return Target{Base: base, Endpoint: svc, Op: OpRead}
	}
	return Target{Endpoint: svc, Op: OpOther}
}

// classifyResource classifies a request on a resource endpoint; rest is the segment after
// it, when hasRest.
func classifyResource(method string, t Target, rest string, hasRest bool) Target {
	switch {
	case !hasRest:
		switch method {
		case http.MethodGet, http.MethodHead:
			t.Op = OpRead
		case http.MethodPost:
			t.Op = OpCreate
		default:
			t.Op = OpOther
		}
	case rest == ".search":
		t.Op = OpOther
		if method == http.MethodPost {
			t.Op = OpSearch
		}
	case rest != "" && rest != "." && rest != "..":
		t.ID = rest
		switch method {
		case http.MethodGet, http.MethodHead:
			t.Op = OpRead
		case http.MethodPut:
			t.Op = OpReplace
		case http.MethodPatch:
			t.Op = OpPatch
		case http.MethodDelete:
			t.Op = OpDelete
		default:
			t.Op = OpOther
		}
	default:
		t.Op = OpOther
	}
	return t
}
