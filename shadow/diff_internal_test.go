package shadow

import (
	"strings"
	"testing"
)

// TestLowerEqualsMatchesToLower: the allocation-free comparison of pickKeyFold answers as
// strings.ToLower(k) == lower, for ASCII and non-ASCII keys (the Kelvin sign lowers to
// "k", the long s does not lower to "s").
func TestLowerEqualsMatchesToLower(t *testing.T) {
	keys := []string{"", "userName", "USERNAME", "username", "user_Name", "émail", "ÉMAIL", "\u212Aey", "key", "\u017Fn", "sn", "a:B", "userNam", "userNames"}
	lowers := []string{"", "username", "user_name", "émail", "key", "sn", "a:b", "usernam"}
	for _, k := range keys {
		for _, l := range lowers {
			if got, want := lowerEquals(k, l), strings.ToLower(k) == l; got != want {
				t.Errorf("lowerEquals(%q, %q) = %v, want %v", k, l, got, want)
			}
		}
	}
}
