package shadow

import (
	"net/http"
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
)

// IsWrite reports whether the operation changes the backend.
func (o Operation) IsWrite() bool {
	switch o {
	case OpCreate, OpReplace, OpPatch, OpDelete, OpBulk:
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
	Endpoint     string    // "Users", "Bulk", "" for a root .search
	ResourceType string    // "User", "Group", "" when the request spans types
	ID           string    // resource id, "" for a collection
	Op           Operation // what the request does
}

// Classify finds the SCIM endpoint in a request path (under any base path, such as
// /scim/v2) and the operation of the method on it. endpoints maps endpoint names to
// resource types (nil means DefaultEndpoints); names match case-insensitively.
func Classify(method, path string, endpoints map[string]string) Target {
	if endpoints == nil {
		endpoints = DefaultEndpoints
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		rest := segs[i+1:]
		if seg == ".search" && len(rest) == 0 {
			if method == http.MethodPost {
				return Target{Op: OpSearch}
			}
			return Target{Op: OpOther}
		}
		if strings.EqualFold(seg, "Bulk") && len(rest) == 0 {
			if method == http.MethodPost {
				return Target{Endpoint: "Bulk", Op: OpBulk}
			}
			return Target{Endpoint: "Bulk", Op: OpOther}
		}
		for _, svc := range serviceEndpoints {
			if strings.EqualFold(seg, svc) {
				if method == http.MethodGet || method == http.MethodHead {
					return Target{Endpoint: svc, Op: OpRead}
				}
				return Target{Endpoint: svc, Op: OpOther}
			}
		}
		for name, rt := range endpoints {
			if !strings.EqualFold(seg, name) {
				continue
			}
			return classifyResource(method, Target{Endpoint: name, ResourceType: rt}, rest)
		}
	}
	return Target{Op: OpOther}
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
