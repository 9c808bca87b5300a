package shadow_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// fuzzSeeds are resources and PatchOp messages in the shapes the IdPs send.
var fuzzSeeds = []struct{ resource, patch string }{
	{idpUser, ptPatchBody(`[{"op":"replace","value":{"active":false}}]`)},
	{idpUser, ptPatchBody(`[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@y"},{"op":"Add","path":"emails[type eq \"home\"].value","value":"h@y"}]`)},
	{idpUser, ptPatchBody(`[{"op":"replace","value":{"name.givenName":"A","` + entURN + `:employeeNumber":"7","` + entURN + `":{"department":"D"}}}]`)},
	{idpUser, ptPatchBody(`[{"op":"Add","path":"` + entURN + `:manager","value":"m"},{"op":"Replace","path":"active","value":"False"}]`)},
	{idpUser, ptPatchBody(`[{"op":"remove","path":"emails[not (primary pr)]"},{"op":"add","path":"favoriteColor","value":[1,{"a":null}]}]`)},
	{idpGroup("11111111-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002"),
		ptPatchBody(`[{"op":"replace","value":{"id":"x","displayName":"N"}},{"op":"remove","path":"members[value eq \"11111111-0000-4000-8000-000000000001\"]"},{"op":"add","path":"members","value":[{"value":"v"}]}]`)},
	{idpGroup("11111111-0000-4000-8000-000000000001"), ptPatchBody(`[{"op":"Remove","path":"members","value":[{"value":"11111111-0000-4000-8000-000000000001"}]}]`)},
	{rfcUser, ptPatchBody(`[{"op":"replace","path":"addresses[type eq \"work\" and primary eq true].streetAddress","value":"1"}]`)},
	{`{"x":{"y":[{"z":1}]}}`, ptPatchBody(`[{"op":"add","path":"x.y","value":{"q":2}},{"op":"replace","path":"urn:a:b:c","value":{}}]`)},
	{`{}`, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[null,{"op":"add"}]}`},
}

// FuzzApplyPatch: ApplyPatch never panics, and either refuses (a *PatchError, or a plain
// error for a resource that is no JSON object) or returns a JSON object that Diff compares
// with itself as no change.
func FuzzApplyPatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s.resource), []byte(s.patch))
	}
	f.Fuzz(func(t *testing.T, resource, patch []byte) {
		out, err := shadow.ApplyPatch(resource, patch)
		if err != nil {
			var pe *shadow.PatchError
			var obj map[string]any
			if json.Unmarshal(resource, &obj) == nil && obj != nil && !errors.As(err, &pe) {
				t.Fatalf("a JSON object resource gave a plain error: %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(out, &obj); err != nil || obj == nil {
			t.Fatalf("result is not a JSON object: %v: %q", err, out)
		}
		if d := shadow.Diff(out, out); len(d) != 0 {
			t.Fatalf("Diff(result, result) = %+v", d)
		}
		// A prediction can be the live state of the next one (pending writes chain).
		if _, err := shadow.ApplyPatch(out, patch); err != nil {
			var pe *shadow.PatchError
			if !errors.As(err, &pe) {
				t.Fatalf("re-applying to the result: %v", err)
			}
		}
	})
}

// FuzzDiff: Diff never panics, Diff(x, x) is empty for valid x, and every change is
// well-formed JSON.
func FuzzDiff(f *testing.F) {
	f.Add([]byte(idpUser), []byte(withAttrsRaw(idpUser, "title", `"CTO"`)))
	f.Add([]byte(rfcGroupAll), []byte(rfcGroupMandy))
	f.Add([]byte(dtUser), []byte(`null`))
	f.Add([]byte(``), []byte(dtUser))
	f.Add([]byte(`{"a":[1,1,{"value":2}],"A":{"b":null}}`), []byte(`{"a":[1,{"VALUE":2.0}],"urn:x":{"y":[{}]}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, x := range [][]byte{a, b} {
			if json.Valid(x) {
				if d := shadow.Diff(x, x); len(d) != 0 {
					t.Fatalf("Diff(x, x) = %+v for %q", d, x)
				}
			}
		}
		for _, c := range shadow.Diff(a, b) {
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("change %+v does not marshal: %v", c, err)
			}
			switch c.Op {
			case "add", "remove", "replace":
			default:
				t.Fatalf("op %q", c.Op)
			}
		}
	})
}

// withAttrsRaw sets one top-level attribute (for seeds, where no *testing.T is at hand).
func withAttrsRaw(doc, key, raw string) string {
	var m map[string]any
	if json.Unmarshal([]byte(doc), &m) != nil {
		return doc
	}
	var v any
	if json.Unmarshal([]byte(raw), &v) != nil {
		return doc
	}
	m[key] = v
	out, _ := json.Marshal(m)
	return string(out)
}

// FuzzApplyPatchOperation drives the engine with one well-formed operation whose op, path and
// value are fuzzed (value is JSON when it parses, else a string), against a user and a group:
// more of the filter, path and merge logic is reached than with raw message bytes. ApplyPatch
// must refuse with a *PatchError or return an object that Diff finds equal to itself.
func FuzzApplyPatchOperation(f *testing.F) {
	f.Add("add", "members", []byte(`[{"value":"x","display":"X"}]`))
	f.Add("Replace", `emails[type eq "work"].value`, []byte(`"a@b"`))
	f.Add("remove", `members[value eq "x" or value eq "y"]`, []byte(``))
	f.Add("add", `addresses[type eq "home" and primary eq true].streetAddress`, []byte(`"1 St"`))
	f.Add("replace", "", []byte(`{"name.givenName":"A","`+entURN+`":{"department":"D"},"members":[]}`))
	f.Add("replace", entURN+":manager", []byte(`{"value":"m"}`))
	f.Add("add", "favoriteColor[value pr].x", []byte(`{"y":[1,2]}`))
	f.Fuzz(func(t *testing.T, op, path string, value []byte) {
		operation := map[string]any{"op": op}
		if path != "" {
			operation["path"] = path
		}
		if len(value) > 0 {
			var v any
			if json.Unmarshal(value, &v) == nil {
				operation["value"] = v
			} else {
				operation["value"] = string(value)
			}
		}
		body, err := json.Marshal(map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{operation},
		})
		if err != nil {
			return
		}
		for _, resource := range []string{idpUser, rfcGroupAll, `{}`} {
			out, err := shadow.ApplyPatch([]byte(resource), body)
			if err != nil {
				var pe *shadow.PatchError
				if !errors.As(err, &pe) {
					t.Fatalf("plain error for a valid resource: %v", err)
				}
				continue
			}
			var obj map[string]any
			if err := json.Unmarshal(out, &obj); err != nil || obj == nil {
				t.Fatalf("result is not a JSON object: %v: %q", err, out)
			}
			if d := shadow.Diff(out, out); len(d) != 0 {
				t.Fatalf("Diff(result, result) = %+v", d)
			}
			_ = shadow.Diff([]byte(resource), out)
		}
	})
}
