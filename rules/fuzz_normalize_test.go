package rules

import (
	"encoding/json"
	"testing"
)

// normalizeSeeds are Entra-, Okta- and OneLogin-shaped PATCH bodies and resources.
var normalizeSeeds = []string{
	po + `{"op":"Replace","path":"active","value":"False"}]}`,
	po + `{"op":"Remove","path":"members","value":[{"value":"u1"},{"value":"u2"}]}]}`,
	po + `{"op":"Add","path":"` + ent + `:manager","value":"m-9"}]}`,
	po + `{"op":"replace","value":{"name.givenName":"C","` + ent + `:employeeNumber":"7","active":"True","name":{"familyName":"N"}}}]}`,
	po + `{"op":"add","path":"emails[type eq \"work\"].primary","value":"TRUE"},{"op":"replace","value":{"active":false}}]}`,
	`{"userName":"a","active":"False","emails":[{"primary":"true","value":"x"}],"` + ent + `":{"manager":"m-1"}}`,
	entraCreateUser, oktaDeactivate, entraPathless, entraManager, entraGroupMembers,
}

// FuzzNormalize checks that normalisation never panics, keeps JSON valid and is idempotent.
func FuzzNormalize(f *testing.F) {
	for _, s := range normalizeSeeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	all := Normalization{true, true, true, true, true}
	f.Fuzz(func(t *testing.T, body []byte, patch bool) {
		run := NormalizeResource
		if patch {
			run = NormalizePatch
		}
		out, _, err := run(all, nil, body)
		if err != nil {
			if string(out) != string(body) {
				t.Fatalf("error %v with a changed body", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q: %q", body, out)
		}
		again, fs, err := run(all, nil, out)
		if err != nil || string(again) != string(out) || len(fs) != 0 {
			t.Fatalf("not idempotent:\n%s\n%s\n%+v %v", out, again, fs, err)
		}
	})
}

// FuzzReverseResponse checks that reverse mapping never panics, keeps JSON valid, and that
// rewriting the reversed body forward again moves no value a second time.
func FuzzReverseResponse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"Resources":[{"favoriteColor":"r","meta":{"resourceType":"User"}},{"displayName":"g","meta":{"resourceType":"Group"}}]}`))
	s := fuzzSet(f)
	used := usesOf(map[string]string{"User favoriteColor": "preferences.favoriteColor", "User " + ent + ":department": "department",
		"User " + `emails[type eq "work"].value`: "workEmail", "group displayName": "groupName"})
	f.Fuzz(func(t *testing.T, body []byte) {
		out, n, err := s.ReverseResponse("User", body, used)
		if full, fn, _ := s.appendReverse(nil, "User", body, used); string(full) != string(out) || fn != n {
			t.Fatalf("the shortcut answers %q (%d), the full path %q (%d)", out, n, full, fn)
		}
		if err != nil || n == 0 {
			if string(out) != string(body) {
				t.Fatalf("unchanged answer with a changed body")
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q: %q", body, out)
		}
		again, n2, _ := s.ReverseResponse("User", out, used)
		if n2 != 0 || string(again) != string(out) {
			t.Fatalf("second reverse moved %d: %s → %s", n2, out, again)
		}
	})
}
