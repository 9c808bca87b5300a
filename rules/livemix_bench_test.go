package rules

import "testing"

// benchPatch is the user PATCH of the load harness's live mix (bench/payload.go): a path a
// rule renames, a path-less value with a key a rule moves, and active.
const benchPatch = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` +
	`{"op":"replace","path":"favorite_color","value":"color-7"},` +
	`{"op":"replace","value":{"department":"Dept 7","title":"Engineer 7"}},` +
	`{"op":"replace","path":"active","value":true}]}`

// BenchmarkLiveMixRules is the rule work of each request kind of the harness's live mix,
// with the five rules of BenchmarkRewriteResource.
func BenchmarkLiveMixRules(b *testing.B) {
	s := benchSet(b)
	b.Run("filter", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := s.RewriteFilter("User", `favorite_color eq "c7" and active eq true`); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("attributes", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = s.RewriteAttributeList("User", "userName,favorite_color")
		}
	})
	b.Run("patch", func(b *testing.B) {
		body := []byte(benchPatch)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := s.RewritePatch("User", body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("create-2KB", func(b *testing.B) {
		body := []byte(benchUser)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := s.RewriteResource("User", OpCreate, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
