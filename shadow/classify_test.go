package shadow_test

import (
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

type classifyCase struct {
	method, path string
	want         shadow.Target
}

// sameTarget compares what a Target says about the request: endpoint, resource type, id
// and operation.
func sameTarget(a, b shadow.Target) bool {
	return a.Endpoint == b.Endpoint && a.ResourceType == b.ResourceType && a.ID == b.ID && a.Op == b.Op
}

// runClassify compares Targets, except that for OpOther only Op and ID count: the engine
// hands such requests to next untouched and reads nothing else of the Target.
func runClassify(t *testing.T, endpoints map[string]string, tests []classifyCase) {
	t.Helper()
	for _, tc := range tests {
		got := shadow.Classify(tc.method, tc.path, endpoints)
		if tc.want.Op == shadow.OpOther {
			got.Endpoint, got.ResourceType = tc.want.Endpoint, tc.want.ResourceType
		}
		if !sameTarget(got, tc.want) {
			t.Errorf("Classify(%q, %q) = %+v, want %+v", tc.method, tc.path, shadow.Classify(tc.method, tc.path, endpoints), tc.want)
		}
		if got.Op.IsWrite() && got.Endpoint == "" {
			t.Errorf("Classify(%q, %q) = %+v: a write without an endpoint", tc.method, tc.path, got)
		}
	}
}

func TestClassify(t *testing.T) {
	users := func(id string, op shadow.Operation) shadow.Target {
		return shadow.Target{Endpoint: "Users", ResourceType: "User", ID: id, Op: op}
	}
	groups := func(id string, op shadow.Operation) shadow.Target {
		return shadow.Target{Endpoint: "Groups", ResourceType: "Group", ID: id, Op: op}
	}
	svc := func(name string, op shadow.Operation) shadow.Target { return shadow.Target{Endpoint: name, Op: op} }
	other := shadow.Target{Op: shadow.OpOther}
	const id = "2819c223-7f76-453a-919d-413861904646"

	runClassify(t, nil, []classifyCase{
		// Collections under different base paths.
		{"POST", "/scim/v2/Users", users("", shadow.OpCreate)},
		{"POST", "/Users", users("", shadow.OpCreate)},
		{"POST", "Users", users("", shadow.OpCreate)},
		{"POST", "/tenants/x/scim/v2/Groups", groups("", shadow.OpCreate)},
		{"GET", "/scim/v2/Users", users("", shadow.OpRead)},
		{"HEAD", "/scim/v2/Users", users("", shadow.OpRead)},
		{"OPTIONS", "/scim/v2/Users", users("", shadow.OpOther)},
		{"PATCH", "/scim/v2/Users", users("", shadow.OpOther)},
		{"PUT", "/scim/v2/Groups", groups("", shadow.OpOther)},
		{"DELETE", "/scim/v2/Groups", groups("", shadow.OpOther)},
		// Resources.
		{"GET", "/scim/v2/Users/" + id, users(id, shadow.OpRead)},
		{"HEAD", "/scim/v2/Users/" + id, users(id, shadow.OpRead)},
		{"PUT", "/scim/v2/Users/" + id, users(id, shadow.OpReplace)},
		{"PATCH", "/scim/v2/Users/" + id, users(id, shadow.OpPatch)},
		{"DELETE", "/scim/v2/Users/" + id, users(id, shadow.OpDelete)},
		{"POST", "/scim/v2/Users/" + id, users(id, shadow.OpOther)},
		{"OPTIONS", "/scim/v2/Users/" + id, users(id, shadow.OpOther)},
		{"PATCH", "/tenants/x/scim/v2/Groups/abc", groups("abc", shadow.OpPatch)},
		{"DELETE", "/tenants/x/scim/v2/Groups/abc", groups("abc", shadow.OpDelete)},
		// Names match case-insensitively; Endpoint is the configured spelling.
		{"POST", "/users", users("", shadow.OpCreate)},
		{"PATCH", "/SCIM/V2/USERS/abc", users("abc", shadow.OpPatch)},
		{"DELETE", "/scim/v2/gRoUpS/G1", groups("G1", shadow.OpDelete)},
		// Ids arrive percent-decoded; the id is kept as it is (case too).
		{"PATCH", "/scim/v2/Users/john doe", users("john doe", shadow.OpPatch)},
		{"DELETE", "/scim/v2/Users/bjensen@example.com", users("bjensen@example.com", shadow.OpDelete)},
		{"PUT", "/scim/v2/Users/a+b=c;d", users("a+b=c;d", shadow.OpReplace)},
		{"DELETE", "/scim/v2/Users/50%", users("50%", shadow.OpDelete)},
		{"GET", "/scim/v2/Users/Ünïcødé", users("Ünïcødé", shadow.OpRead)},
		{"PATCH", "/scim/v2/Users/Groups", users("Groups", shadow.OpPatch)},
		{"DELETE", "/scim/v2/Groups/Bulk", groups("Bulk", shadow.OpDelete)},
		// . and .. are never ids.
		{"DELETE", "/scim/v2/Users/..", users("", shadow.OpOther)},
		{"DELETE", "/scim/v2/Users/.", users("", shadow.OpOther)},
		{"PUT", "/scim/v2/Users/abc/..", users("", shadow.OpOther)},
		// Trailing and repeated slashes.
		{"POST", "/scim/v2/Users/", users("", shadow.OpCreate)},
		{"POST", "/scim/v2/Users///", users("", shadow.OpCreate)},
		{"PATCH", "/scim/v2/Users/abc/", users("abc", shadow.OpPatch)},
		{"DELETE", "/scim/v2/Users//abc", users("", shadow.OpOther)},
		// Deeper paths are not SCIM resources.
		{"PATCH", "/scim/v2/Users/a/b", users("", shadow.OpOther)},
		{"GET", "/scim/v2/Groups/abc/members", groups("", shadow.OpOther)},
		// Searches.
		{"POST", "/scim/v2/.search", shadow.Target{Op: shadow.OpSearch}},
		{"POST", "/.search", shadow.Target{Op: shadow.OpSearch}},
		{"GET", "/scim/v2/.search", other},
		{"POST", "/scim/v2/Users/.search", users("", shadow.OpSearch)},
		{"POST", "/scim/v2/groups/.search/", groups("", shadow.OpSearch)},
		{"GET", "/scim/v2/Users/.search", users("", shadow.OpOther)},
		{"POST", "/scim/v2/Users/.SEARCH", users(".SEARCH", shadow.OpOther)},
		// Bulk.
		{"POST", "/scim/v2/Bulk", svc("Bulk", shadow.OpBulk)},
		{"POST", "/scim/v2/bulk/", svc("Bulk", shadow.OpBulk)},
		{"GET", "/scim/v2/Bulk", svc("Bulk", shadow.OpOther)},
		{"PUT", "/scim/v2/Bulk", svc("Bulk", shadow.OpOther)},
		// Service provider endpoints are read-only.
		{"GET", "/scim/v2/Schemas", svc("Schemas", shadow.OpRead)},
		{"GET", "/scim/v2/schemas/urn:ietf:params:scim:schemas:core:2.0:User", svc("Schemas", shadow.OpRead)},
		{"POST", "/scim/v2/Schemas", svc("Schemas", shadow.OpOther)},
		{"GET", "/scim/v2/ServiceProviderConfig", svc("ServiceProviderConfig", shadow.OpRead)},
		{"HEAD", "/serviceproviderconfig", svc("ServiceProviderConfig", shadow.OpRead)},
		{"PUT", "/scim/v2/ServiceProviderConfig", svc("ServiceProviderConfig", shadow.OpOther)},
		{"GET", "/scim/v2/ResourceTypes/User", svc("ResourceTypes", shadow.OpRead)},
		{"GET", "/scim/v2/Me", svc("Me", shadow.OpRead)},
		{"PATCH", "/scim/v2/Me", svc("Me", shadow.OpOther)},
		// Not SCIM.
		{"GET", "/", other},
		{"GET", "", other},
		{"POST", "/scim/v2", other},
		{"POST", "/scim/v2/Devices", other},
		{"DELETE", "/healthz", other},
	})
}

func TestClassifyCustomEndpoints(t *testing.T) {
	endpoints := map[string]string{"Devices": "Device", "Users": "User"}
	runClassify(t, endpoints, []classifyCase{
		{"DELETE", "/scim/v2/Devices/d1", shadow.Target{Endpoint: "Devices", ResourceType: "Device", ID: "d1", Op: shadow.OpDelete}},
		{"POST", "/scim/v2/devices", shadow.Target{Endpoint: "Devices", ResourceType: "Device", Op: shadow.OpCreate}},
		{"PATCH", "/scim/v2/Users/u1", shadow.Target{Endpoint: "Users", ResourceType: "User", ID: "u1", Op: shadow.OpPatch}},
		{"POST", "/scim/v2/Groups", shadow.Target{Op: shadow.OpOther}},
		{"POST", "/scim/v2/Bulk", shadow.Target{Endpoint: "Bulk", Op: shadow.OpBulk}},
	})
	// An empty map knows no resource endpoints (nil means the defaults).
	runClassify(t, map[string]string{}, []classifyCase{
		{"POST", "/scim/v2/Users", shadow.Target{Op: shadow.OpOther}},
		{"GET", "/scim/v2/Schemas", shadow.Target{Endpoint: "Schemas", Op: shadow.OpRead}},
	})
}

// TestClassifyBasePathNamedLikeEndpoint: the SCIM endpoint is the last (or second to
// last) segment of the path, whatever the base path holds. A tenant called "me", "users",
// "groups" or "schemas" in a base path such as /tenants/{tenant}/scim/v2 must not hide
// the endpoint: a write misread as OpOther is forwarded in preview mode (invariant 1).
func TestClassifyBasePathNamedLikeEndpoint(t *testing.T) {
	runClassify(t, nil, []classifyCase{
		{"POST", "/tenants/me/scim/v2/Users", shadow.Target{Endpoint: "Users", ResourceType: "User", Op: shadow.OpCreate}},
		{"POST", "/tenants/users/scim/v2/Groups", shadow.Target{Endpoint: "Groups", ResourceType: "Group", Op: shadow.OpCreate}},
		{"PATCH", "/orgs/groups/scim/v2/Users/u1", shadow.Target{Endpoint: "Users", ResourceType: "User", ID: "u1", Op: shadow.OpPatch}},
		{"DELETE", "/tenants/schemas/scim/v2/Users/u1", shadow.Target{Endpoint: "Users", ResourceType: "User", ID: "u1", Op: shadow.OpDelete}},
		{"POST", "/tenants/bulk/scim/v2/Bulk", shadow.Target{Endpoint: "Bulk", Op: shadow.OpBulk}},
		{"GET", "/tenants/users/scim/v2/Groups", shadow.Target{Endpoint: "Groups", ResourceType: "Group", Op: shadow.OpRead}},
	})
}

func TestOperationIsWrite(t *testing.T) {
	for op, want := range map[shadow.Operation]bool{
		shadow.OpCreate: true, shadow.OpReplace: true, shadow.OpPatch: true, shadow.OpDelete: true, shadow.OpBulk: true,
		shadow.OpRead: false, shadow.OpSearch: false, shadow.OpOther: false, "": false, "CREATE": false,
	} {
		if got := op.IsWrite(); got != want {
			t.Errorf("%q.IsWrite() = %v, want %v", op, got, want)
		}
	}
}
