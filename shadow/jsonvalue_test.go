package shadow

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// slowDecode is encoding/json's decode with UseNumber, the reference of decodeJSONNumbers.
func slowDecode(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

var jsonValueSeeds = []string{
	`{"userName":"ada","active":true,"n":-1.5e3,"x":null,"emails":[{"value":"a@b","primary":true}],"name":{"givenName":"Ada"}}`,
	`{"a":1,"a":2,"A":3}`, `{"":{"":[]}}`, `[1,"two",{"three":[3]},null,false]`, `"str"`, `12`, `null`, `  {"k": "v"}  `,
	`{"esc":"\"\\\/\b\f\n\r\t\u00e9\u20ac"}`, `{"s":"\ud83d\ude00"}`, `{"lone":"\ud800"}`, `{"lone":"\uDFFF x"}`, `{"bs":"\\ud800"}`,
	`{"a":1} trailing`, `{"a":1}{"b":2}`, `{"a":}`, `{"a":1`, "{\"bad\":\"\xff\"}", `[]`, `{}`, ``, ` `, `{"n":0.0000000000000000000001}`,
	`{"deep":[[[[[[[[[[{"x":[1]}]]]]]]]]]]}`, `{"k\u0000":"v\u0000"}`, `{"ctrl":"` + "\t" + `"}`,
}

// FuzzDecodeJSONValue: decodeJSONNumbers (the one-pass fast path, encoding/json fallback) gives
// what encoding/json alone gives, into an any and into a map, errors included.
func FuzzDecodeJSONValue(f *testing.F) {
	for _, s := range jsonValueSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got, want any
		gotErr, wantErr := decodeJSONNumbers(raw, &got), slowDecode(raw, &want)
		if (gotErr == nil) != (wantErr == nil) || (wantErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("%q into any: error %v, encoding/json %v", raw, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q into any:\n got  %#v\n want %#v", raw, got, want)
		}
		var gotM, wantM map[string]any
		gotErr, wantErr = decodeJSONNumbers(raw, &gotM), slowDecode(raw, &wantM)
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(gotM, wantM) {
			t.Fatalf("%q into map: %#v (%v), encoding/json %#v (%v)", raw, gotM, gotErr, wantM, wantErr)
		}
	})
}

// FuzzValidJSONAgrees: validJSON (gjson's check) accepts exactly what encoding/json's
// json.Valid accepts, on valid UTF-8; the store relies on it for every document it keeps
// (PostgreSQL's jsonb refuses what is not JSON).
func FuzzValidJSONAgrees(f *testing.F) {
	for _, s := range jsonValueSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`01`, `-`, `1.`, `1e`, `1e+`, `-0`, `0.5E-3`, "\"\x01\"", `"\u12"`, `"\x"`, `[1,]`, `{"a":1,}`,
		`tru`, `nul`, `"a"  "b"`, "\"\x7f\"", `[`, `{"a" 1}`, `1 2`, `+1`, `.5`, `"\/"`, `"\'"`, `NaN`, "\xef\xbb\xbf{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if got, want := validJSON(raw), utf8.Valid(raw) && json.Valid(raw); got != want {
			t.Fatalf("%q: validJSON %v, encoding/json %v", raw, got, want)
		}
	})
}

// TestDecodeJSONValueTakesTheFastPath: the documents of a preview write take the fast
// path (the fallback is only for what the two decoders could disagree on).
func TestDecodeJSONValueTakesTheFastPath(t *testing.T) {
	for _, s := range []string{jsonValueSeeds[0], `{"s":"\u00e9"}`, `[]`, `{"bs":"x\\y"}`} {
		if _, ok := decodeJSONValue([]byte(s)); !ok {
			t.Errorf("%s: fell back to encoding/json", s)
		}
	}
	for _, s := range []string{`{"lone":"\ud800"}`, `{"a":1} x`, "\"\xff\"", `{"a":`} {
		if _, ok := decodeJSONValue([]byte(s)); ok {
			t.Errorf("%s: took the fast path", s)
		}
	}
}

// decodeBenchUser is the load harness's ~2 KB user (bench.UserBody(1); bench imports this
// package, so it is copied here).
const decodeBenchUser = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"user1@example.org","name":{"givenName":"Isabel","familyName":"Moreno 1","formatted":"Isabel Moreno 1"},"emails":[{"primary":true,"value":"user1@example.org","type":"other"},{"primary":false,"value":"u1@home.example","type":"home"}],"displayName":"Isabel Moreno 1","externalId":"00u1","active":true,"groups":[],"password":"Tr0ub4dor&3-correct-horse","title":"Senior Platform Engineer","userType":"Employee","timezone":"Europe/Madrid","phoneNumbers":[{"value":"+34 600 000 000","type":"mobile","primary":true},{"value":"+34 910 000 000","type":"work"}],"addresses":[{"type":"work","streetAddress":"Calle de Alcala 1","locality":"Madrid","region":"MD","postalCode":"28014","country":"ES","primary":true}],"favorite_color":"teal","preferences":{"nickname":"Isa","theme":"dark"},"department":"Platform","entitlements":[{"value":"vpn-access"},{"value":"prod-read"},{"value":"staging-write"}],"roles":[{"value":"engineer","display":"Engineer","primary":true}],"x509Certificates":[],"ims":[{"value":"isabel.moreno","type":"xmpp"}],"photos":[{"value":"https://photos.example.org/1/profile-large.jpg","type":"photo"},{"value":"https://photos.example.org/1/profile-small.jpg","type":"thumbnail"}],"profileUrl":"https://people.example.org/1","employeeNumber":"E-1","costCenter":"CC-5100","organization":"Example Org","division":"Engineering","managerEmail":"oscar.alvarez@example.org","officeLocation":"Madrid HQ, Floor 4, Desk 4.117","mobileDevice":"ios","loginShell":"/bin/zsh","githubHandle":"imoreno","slackHandle":"@isabel","startDate":"2021-03-15","badgeId":"B-99812","parkingSpot":"P2-117","emergencyContact":"Luis Moreno +34 600 111 222","shirtSize":"M","dietaryPreferences":"vegetarian","pronouns":"she/her","homeOffice":false,"contractor":false,"seniority":7,"notes":"Transferred from the Barcelona office in 2023; owns the build infrastructure and the release tooling."}`

// BenchmarkDecodeJSONValue compares encoding/json's decode with the fast path on it.
func BenchmarkDecodeJSONValue(b *testing.B) {
	raw := []byte(decodeBenchUser)
	for _, c := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"encoding-json", slowDecode}, {"fast-path", decodeJSONNumbers}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				var v any
				if err := c.decode(raw, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzCreateDiffFromTree: the prediction diffs a create against the tree ApplyCreate
// encoded instead of decoding its bytes again; both give the same changes.
func FuzzCreateDiffFromTree(f *testing.F) {
	f.Add([]byte(decodeBenchUser))
	f.Add([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"value":"1","display":"A"},{"value":"2"}]}`))
	f.Add([]byte(`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m"},"department":"D"},"emails":[{"value":"x","type":"work"}],"n":1.50,"Password":"p"}`))
	f.Add([]byte(`{"userName":"b","x":{"y":[1,{"z":null}]},"urn:x:y":{"a":true}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		projected, tree, err := applyCreateTree(body)
		if err != nil {
			return
		}
		want := Diff(nil, projected)
		if got := diffTrees(map[string]any{}, tree); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n from the tree %+v\n from bytes    %+v", body, got, want)
		}
	})
}

// FuzzPatchDiffFromTree: as FuzzCreateDiffFromTree, for a PATCH (body as a PatchOp) and a
// PUT (body as the replacement) of a live resource.
func FuzzPatchDiffFromTree(f *testing.F) {
	f.Add([]byte(decodeBenchUser), []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"name.givenName","value":"X"},{"op":"add","path":"emails","value":[{"value":"n@x","type":"home"}]}]}`))
	f.Add([]byte(`{"id":"g","schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"value":"1"},{"value":"2"}]}`),
		[]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"1\"]"}]}`))
	f.Add([]byte(`{"id":"u","userName":"a","password":"p","meta":{"location":"https://x/Users/u"}}`), []byte(`{"userName":"b","title":"T"}`))
	f.Fuzz(func(t *testing.T, live, body []byte) {
		if projected, tree, err := applyPatchTree(live, body); err == nil {
			if got, want := diffTrees(decodeObjectLoose(live), tree), Diff(live, projected); !reflect.DeepEqual(got, want) {
				t.Fatalf("patch %s of %s:\n from the tree %+v\n from bytes    %+v", body, live, got, want)
			}
		}
		if projected, tree, err := applyReplaceTree(live, body); err == nil {
			if got, want := diffTrees(decodeObjectLoose(live), tree), Diff(live, projected); !reflect.DeepEqual(got, want) {
				t.Fatalf("replace of %s by %s:\n from the tree %+v\n from bytes    %+v", live, body, got, want)
			}
		}
	})
}

// FuzzAppendJSONTree: appendJSONTree writes any decoded JSON tree byte for byte as
// encoding/json does (sorted keys, no HTML escaping, its string escapes and numbers).
func FuzzAppendJSONTree(f *testing.F) {
	for _, s := range jsonValueSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"<a&b>":"x\u2028y\u007f","n":[1e400,-0.0,1E+2],"z":{"B":1,"a":2,"":null}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v any
		if slowDecode(raw, &v) != nil {
			return
		}
		want, err := encodeJSONLibrary(v)
		got, ok := appendJSONTree(nil, v)
		if (err == nil) != ok || (ok && !bytes.Equal(got, want)) {
			t.Fatalf("%q:\n tree    %q (%v)\n library %q (%v)", raw, got, ok, want, err)
		}
	})
}

// BenchmarkEncodeJSONTree compares encoding/json with appendJSONTree on the decoded user.
func BenchmarkEncodeJSONTree(b *testing.B) {
	var v any
	if err := slowDecode([]byte(decodeBenchUser), &v); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		encode func(any) ([]byte, error)
	}{{"encoding-json", encodeJSONLibrary}, {"tree", func(v any) ([]byte, error) { return encodeJSONCompact(v, 0) }}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.encode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzMultiAddedAgreesWithPairing: a multi-valued attribute with nothing before gives the
// same sorted changes through multiAdded as through the pairing of multiPaired.
func FuzzMultiAddedAgreesWithPairing(f *testing.F) {
	for _, seed := range []string{
		`[{"value":"a@x","type":"work","primary":true},{"value":"b@x","type":"other"},{"value":"a@x","type":"work"}]`,
		`[{"value":"u1","display":"Ann","$ref":"https://x/Users/u1"},{"value":"u2","type":"Group"},{"value":"u1"},null]`,
		`["admin","user","admin",{"x":1},[1,2],null,3]`,
		`[{"type":"work","streetAddress":"Calle 1"},{"primary":true}]`,
	} {
		for _, name := range []string{"emails", "members", "roles", "addresses"} {
			f.Add(name, []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, name string, raw []byte) {
		var b []any
		if slowDecode(raw, &b) != nil {
			return
		}
		var added, paired changeLister
		added.multiAdded("p", name, b)
		paired.multiPaired("p", name, nil, b)
		if a, p := added.sorted(), paired.sorted(); !reflect.DeepEqual(a, p) {
			t.Fatalf("%s %s:\nmultiAdded  %v\nmultiPaired %v", name, raw, a, p)
		}
	})
}

// At encoding/json's nesting limit the fast path hands over: a document nested exactly
// that deep decodes, one level more is encoding/json's error, as encoding/json alone.
func TestDecodeJSONValueDepth(t *testing.T) {
	for _, depth := range []int{maxDecodeDepth, maxDecodeDepth + 1} {
		raw := []byte(strings.Repeat(`[`, depth-1) + `{"a":1}` + strings.Repeat(`]`, depth-1))
		_, fast := decodeJSONValue(raw)
		if want := depth <= maxDecodeDepth; fast != want {
			t.Errorf("depth %d: fast path %v, want %v", depth, fast, want)
		}
		var got, want any
		gotErr, wantErr := decodeJSONNumbers(raw, &got), slowDecode(raw, &want)
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("depth %d: error %v, encoding/json %v", depth, gotErr, wantErr)
		}
	}
}
