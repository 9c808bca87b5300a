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
	if endpoints == nil {
		endpoints = DefaultEndpoints
	}
	raw := strings.Split(strings.Trim(escapedPath, "/"), "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		seg, err := url.PathUnescape(r)
		if err != nil {
			seg = r // a stray '%' is part of the name
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
	// …/Users/{id} and …/Users/.search
	if n >= 2 {
		if name, rt, ok := lookupEndpoint(segs[n-2], endpoints); ok {
			t := classifyResource(method, Target{Endpoint: name, ResourceType: rt}, segs[n-1:])
			t.Base = base(n - 2)
			return t
		}
		for _, svc := range serviceEndpoints {
			if strings.EqualFold(segs[n-2], svc) { // /Schemas/{id}, /ResourceTypes/{name}
				return serviceTarget(method, svc, base(n-2))
			}
		}
	}
	last := segs[n-1]
	switch {
	case last == ".search":
		if method == http.MethodPost {
			return Target{Base: base(n - 1), Op: OpSearch}
		}
		return Target{Op: OpOther}
	case strings.EqualFold(last, "Bulk"):
		if method == http.MethodPost {
			return Target{Base: base(n - 1), Endpoint: "Bulk", Op: OpBulk}
		}
		return Target{Endpoint: "Bulk", Op: OpOther}
	}
	for _, svc := range serviceEndpoints {
		if strings.EqualFold(last, svc) {
			return serviceTarget(method, svc, base(n-1))
		}
	}
	if name, rt, ok := lookupEndpoint(last, endpoints); ok {
		t := classifyResource(method, Target{Endpoint: name, ResourceType: rt}, nil)
		t.Base = base(n - 1)
		return t
	}
	return Target{Op: OpOther}
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

func classifyResource(method string, t Target, rest []string) Target {
	switch {
	case len(rest) == 0:
		switch method {
		case http.MethodGet, http.MethodHead:
			t.Op = OpRead
		case http.MethodPost:
			t.Op = OpCreate
		default:
			t.Op = OpOther
		}
	case len(rest) == 1 && rest[0] == ".search":
		t.Op = OpOther
		if method == http.MethodPost {
			t.Op = OpSearch
		}
	case len(rest) == 1 && rest[0] != "" && rest[0] != "." && rest[0] != "..":
		t.ID = rest[0]
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
