package shadow

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestFoldedPairsMatchesPerNameLookup: foldedPairs pairs keys as a scan per lower-case name
// would (the sorted union of lower-cased names; per name, the first key in sorted order of
// each object and its value), for ASCII and non-ASCII keys (the Kelvin sign lowers to "k",
// the long s does not lower to "s"), keys that fold together, null values and empty keys.
func TestFoldedPairsMatchesPerNameLookup(t *testing.T) {
	keys := []string{"", "userName", "USERNAME", "username", "user_Name", "émail", "ÉMAIL", "\u212Aey", "key", "\u017Fn", "sn", "a:B", "userNam", "userNames"}
	for i := range 200 {
		a, b := map[string]any{}, map[string]any{}
		for j, k := range keys {
			switch (i*7 + j*(i%5+1)) % 5 {
			case 0:
				a[k] = j
			case 1:
				b[k] = j
			case 2:
				a[k], b[k] = j, nil
			case 3:
				a[k], b[k] = nil, j
			}
		}
		if got, want := foldedPairs(a, b), perNameLookup(a, b); !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: a=%v b=%v\nfoldedPairs  %v\nper-name     %v", i, a, b, got, want)
		}
	}
}

// perNameLookup is foldedPairs by its definition: one scan of each object per name.
func perNameLookup(a, b map[string]any) []foldedPair {
	set := map[string]bool{}
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if k != "" {
				set[strings.ToLower(k)] = true
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	pick := func(m map[string]any, lower string) (string, any) {
		found := ""
		for k := range m {
			if k != "" && strings.ToLower(k) == lower && (found == "" || k < found) {
				found = k
			}
		}
		if found == "" {
			return "", nil
		}
		return found, m[found]
	}
	out := []foldedPair{}
	for _, n := range names {
		p := foldedPair{name: n}
		p.ka, p.va = pick(a, n)
		p.kb, p.vb = pick(b, n)
		out = append(out, p)
	}
	return out
}
