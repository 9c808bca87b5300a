package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// fidelityStep is one write an IdP sends. {{user:x}} and {{group:x}} in Path and Body stand
// for the backend ids of seeded (or earlier created) resources.
type fidelityStep struct {
	Name   string
	Method string
	Path   string
	Body   string
	// Creates names the resource a successful create makes, for later steps.
	Creates string
	// Error is the finding code the prediction must report (and the backend then returns).
	Error string
}

// fidelityFlows are Okta, Entra and OneLogin shapes from IDP-DIALECTS.md, in our own words.
var fidelityFlows = []fidelityStep{
	// Okta
	{Name: "okta create user", Method: "POST", Path: "/Users", Creates: "user:olivia", Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"olivia@example.com","name":{"givenName":"Olivia","familyName":"Okta"},"emails":[{"primary":true,"value":"olivia@example.com","type":"work"}],"displayName":"Olivia Okta","locale":"en-US","externalId":"00u-olivia","groups":[],"password":"pw-olivia-1","active":true}`},
	{Name: "okta create duplicate user", Method: "POST", Path: "/Users", Error: "conflict", Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ALICE@example.com","name":{"givenName":"Alice","familyName":"Again"},"active":true}`},
	{Name: "okta full PUT update", Method: "PUT", Path: "/Users/{{user:alice}}", Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"{{user:alice}}","userName":"alice@example.com","name":{"givenName":"Alice","familyName":"Anderson-Smith"},"emails":[{"primary":true,"value":"alice@example.com","type":"work"}],"displayName":"Alice Anderson-Smith","active":true,"groups":[],"meta":{"resourceType":"User"}}`},
	{Name: "okta path-less deactivate", Method: "PATCH", Path: "/Users/{{user:bob}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`},
	{Name: "okta path-less reactivate", Method: "PATCH", Path: "/Users/{{user:bob}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`},
	{Name: "okta create group", Method: "POST", Path: "/Groups", Creates: "group:sales", Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Sales","members":[]}`},
	{Name: "okta group rename re-sent (no-op) with member add and remove", Method: "PATCH", Path: "/Groups/{{group:eng}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"{{group:eng}}","displayName":"Engineering"}},{"op":"remove","path":"members[value eq \"{{user:carol}}\"]"},{"op":"add","path":"members","value":[{"value":"{{user:dave}}","display":"dave@example.com"}]}]}`},
	{Name: "okta members full replace", Method: "PATCH", Path: "/Groups/{{group:eng}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"members","value":[{"value":"{{user:alice}}"},{"value":"{{user:erin}}"}]}]}`},
	{Name: "okta add misspelled member id", Method: "PATCH", Path: "/Groups/{{group:eng}}", Error: "unknown_member", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"00000000-0000-4000-8000-00000000beef","display":"ghost@example.com"}]}]}`},
	// Entra
	{Name: "entra create user with enterprise extension", Method: "POST", Path: "/Users", Creates: "user:eve", Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"externalId":"eve-ext","userName":"eve@example.com","active":true,"displayName":"Eve Entra","emails":[{"primary":true,"type":"work","value":"eve@example.com"}],"name":{"formatted":"Eve Entra","familyName":"Entra","givenName":"Eve"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Finance","employeeNumber":"E-77"}}`},
	{Name: "entra capitalised ops with filtered email path", Method: "PATCH", Path: "/Users/{{user:alice}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"alice.anderson@example.com"},{"op":"Replace","path":"name.familyName","value":"Anderson"},{"op":"Add","path":"title","value":"Staff Engineer"}]}`},
	{Name: "entra manager as object", Method: "PATCH", Path: "/Users/{{user:alice}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"{{user:bob}}"}}]}`},
	{Name: "entra disable with string boolean", Method: "PATCH", Path: "/Users/{{user:dave}}", Error: "invalid_value", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`},
	{Name: "entra add members", Method: "PATCH", Path: "/Groups/{{group:ops}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"{{user:erin}}"},{"value":"{{user:frank}}"}]}]}`},
	{Name: "entra value-array member removal removes only the listed one", Method: "PATCH", Path: "/Groups/{{group:ops}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"{{user:carol}}"}]}]}`},
	{Name: "entra path-less dotted and URN keys", Method: "PATCH", Path: "/Users/{{user:carol}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"name.givenName":"Caroline","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"C-42","active":true}}]}`},
	{Name: "entra patch unknown id", Method: "PATCH", Path: "/Users/00000000-0000-4000-8000-000000000404", Error: "not_found", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":false}]}`},
	// OneLogin
	{Name: "onelogin full PUT", Method: "PUT", Path: "/Users/{{user:erin}}", Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"erin@example.com","name":{"givenName":"Erin","familyName":"Onelogin"},"emails":[{"value":"erin@example.com","type":"work","primary":true}],"title":"Analyst","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Research"}}`},
	{Name: "onelogin group add lowercase", Method: "PATCH", Path: "/Groups/{{group:ops}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"{{user:alice}}"}]}]}`},
	{Name: "onelogin group remove lowercase", Method: "PATCH", Path: "/Groups/{{group:ops}}", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members","value":[{"value":"{{user:frank}}"}]}]}`},
	{Name: "onelogin suspend by PUT", Method: "PUT", Path: "/Users/{{user:frank}}", Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"frank@example.com","name":{"givenName":"Frank","familyName":"Five"},"active":false}`},
	{Name: "onelogin delete user", Method: "DELETE", Path: "/Users/{{user:frank}}"},
	{Name: "delete unknown user", Method: "DELETE", Path: "/Users/00000000-0000-4000-8000-000000000404", Error: "not_found"},
	{Name: "bad patch path", Method: "PATCH", Path: "/Users/{{user:carol}}", Error: "invalid_patch", Body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"name[[","value":"x"}]}`},
}

// fidelityCaddyfile: preview with no mapping rules, so the backend sees what the IdP sent.
const fidelityCaddyfile = `{
	admin {{ADMIN}}
	scim_shadow {
		store sqlite {{DB}}
		mode_refresh 100ms
	}
}
:{{PORT}} {
	route /scim/v2/* {
		scim_shadow {
			connection fid
			mode preview
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
}`

// seed creates users and groups directly in the backend and returns their ids by name.
func seed(t *testing.T, be *testBackend) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		status, out := do(t, http.MethodPost, be.URL+"/scim/v2/Users", fmt.Sprintf(
			`{"userName":"%s@example.com","name":{"givenName":"%s","familyName":"Anderson"},"emails":[{"value":"%s@example.com","type":"work","primary":true}],"active":true}`,
			u, strings.ToUpper(u[:1])+u[1:], u), nil)
		if status != http.StatusCreated {
			t.Fatalf("seeding %s: %d %s", u, status, out)
		}
		ids["user:"+u] = decode(t, out)["id"].(string)
	}
	for name, members := range map[string][]string{"eng": {"alice", "bob", "carol"}, "ops": {"alice", "bob", "carol", "dave", "erin"}} {
		var m []string
		for _, u := range members {
			m = append(m, `{"value":"`+ids["user:"+u]+`"}`)
		}
		display := map[string]string{"eng": "Engineering", "ops": "Operations"}[name]
		status, out := do(t, http.MethodPost, be.URL+"/scim/v2/Groups", `{"displayName":"`+display+`","members":[`+strings.Join(m, ",")+`]}`, nil)
		if status != http.StatusCreated {
			t.Fatalf("seeding group %s: %d %s", name, status, out)
		}
		ids["group:"+name] = decode(t, out)["id"].(string)
	}
	return ids
}

func expand(s string, ids map[string]string) string {
	for k, v := range ids {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

// changeKey is a change in a form both sides can be compared in: members by id only
// (the backend adds display, $ref and type), every other value as canonical JSON without meta.
func changeKey(c shadow.Change) string {
	canon := func(raw json.RawMessage) string {
		if len(raw) == 0 {
			return ""
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return string(raw)
		}
		if m, ok := v.(map[string]any); ok {
			if strings.EqualFold(c.Path, "members") {
				return fmt.Sprint(m["value"])
			}
			delete(m, "meta") // its location names the host the resource was read through
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	return c.Op + " " + strings.ToLower(c.Path) + " " + canon(c.Old) + " → " + canon(c.New)
}

func changeKeys(cs []shadow.Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, changeKey(c))
	}
	sort.Strings(out)
	return out
}

// errorStatus is the status a predicted error code means.
var errorStatus = map[string]int{"not_found": 404, "conflict": 409, "unknown_member": 400, "invalid_patch": 400, "invalid_value": 400, "invalid_json": 400}

// TestFidelity records each flow step in preview, then applies it live, and compares the
// predicted diff and errors with what the backend really did.
func TestFidelity(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, fidelityCaddyfile, be)
	ids := seed(t, be)
	agree := 0
	for _, step := range fidelityFlows {
		ok := t.Run(step.Name, func(t *testing.T) {
			path, body := expand(step.Path, ids), expand(step.Body, ids)
			var reqBody any
			if body != "" {
				reqBody = body
			}
			c.review(t, http.MethodPut, "/connections/fid/mode", `{"mode":"preview"}`)
			status, out, h := c.scim(t, step.Method, path, reqBody)
			if status != http.StatusTooManyRequests || h.Get("X-Scim-Shadow-Record") == "" {
				t.Fatalf("preview: %d %s", status, out)
			}
			_, rec := c.review(t, http.MethodGet, "/connections/fid/records/"+h.Get("X-Scim-Shadow-Record"), nil)
			var predicted struct {
				Changes  []shadow.Change `json:"changes"`
				Findings []struct {
					Severity, Code, Message string
				} `json:"findings"`
			}
			raw, _ := json.Marshal(rec)
			if err := json.Unmarshal(raw, &predicted); err != nil {
				t.Fatal(err)
			}
			var predictedErrors []string
			for _, f := range predicted.Findings {
				if f.Severity == "error" {
					predictedErrors = append(predictedErrors, f.Code)
				}
			}

			// Before, live, after.
			before := backendState(t, be, path)
			c.review(t, http.MethodPut, "/connections/fid/mode", `{"mode":"live"}`)
			status, out, _ = c.scim(t, step.Method, path, reqBody)
			c.review(t, http.MethodDelete, "/connections/fid/records", nil)
			afterPath := path
			if step.Method == http.MethodPost && status == http.StatusCreated {
				id := decode(t, out)["id"].(string)
				afterPath = path + "/" + id
				if step.Creates != "" {
					ids[step.Creates] = id
				}
			}
			after := backendState(t, be, afterPath)

			if step.Error != "" {
				if len(predictedErrors) != 1 || predictedErrors[0] != step.Error {
					t.Errorf("predicted errors %v, want [%s]", predictedErrors, step.Error)
				}
				if status != errorStatus[step.Error] {
					t.Errorf("backend answered %d %s, the prediction %s means %d", status, out, step.Error, errorStatus[step.Error])
				}
				return
			}
			if len(predictedErrors) > 0 {
				t.Errorf("predicted errors %v for a write the backend accepts", predictedErrors)
			}
			if status >= 300 {
				t.Fatalf("live: %d %s", status, out)
			}
			actual := changeKeys(shadow.Diff(before, after))
			got := changeKeys(predicted.Changes)
			if strings.Join(actual, "\n") != strings.Join(got, "\n") {
				t.Errorf("predicted changes:\n  %s\nbackend changes:\n  %s", strings.Join(got, "\n  "), strings.Join(actual, "\n  "))
			}
		})
		if ok {
			agree++
		}
	}
	rate := float64(agree) / float64(len(fidelityFlows)) * 100
	t.Logf("fidelity: %d of %d flow steps agree (%.1f%%)", agree, len(fidelityFlows), rate)
	if agree != len(fidelityFlows) {
		t.Errorf("agreement %.1f%%, want 100%%", rate)
	}
}

// backendState reads a resource directly from the backend; nil when it does not exist or
// path is a collection.
func backendState(t *testing.T, be *testBackend, path string) []byte {
	t.Helper()
	if strings.Count(strings.Trim(path, "/"), "/") == 0 {
		return nil
	}
	status, out := do(t, http.MethodGet, be.URL+"/scim/v2"+path, nil, nil)
	if status != http.StatusOK {
		return nil
	}
	return out
}
