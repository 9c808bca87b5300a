package shadow

import (
	"fmt"
	"testing"
)

func TestInPercentStableAndProportional(t *testing.T) {
	in := 0
	for i := range 10000 {
		key := fmt.Sprintf("user%d@example.com", i)
		a := inPercent(key, 10)
		if a != inPercent(key, 10) || a != inPercent(fmt.Sprintf("USER%d@example.com", i), 10) {
			t.Fatalf("%s: not stable or not case-insensitive", key)
		}
		if a && !inPercent(key, 20) {
			t.Fatalf("%s: in at 10%% but not at 20%% (widening must keep keys in)", key)
		}
		if a {
			in++
		}
	}
	if in < 800 || in > 1200 {
		t.Errorf("10%% selected %d of 10000 keys", in)
	}
	if inPercent("x", 0) || !inPercent("x", 100) || inPercent("", 100) {
		t.Error("edge cases")
	}
}
