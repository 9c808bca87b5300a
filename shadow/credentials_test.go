package shadow

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCredentialsAuthenticate(t *testing.T) {
	st, err := OpenSQLite(t.Context(), t.TempDir()+"/c.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &Credentials{Store: st}
	tokA, err := c.Issue(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tokA, TokenPrefix) || len(tokA) != len(TokenPrefix)+43 {
		t.Fatalf("token %q", tokA)
	}
	for _, h := range []string{"", "Basic " + tokA, "Bearer", "Bearer " + tokA + "x", "Bearer scims_"} {
		r := httptest.NewRequest("GET", "/Users", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if _, err := c.Authenticate(t.Context(), r); !errors.Is(err, ErrBadToken) {
			t.Errorf("%q: %v, want ErrBadToken", h, err)
		}
	}
	r := httptest.NewRequest("GET", "/Users", nil)
	r.Header.Set("Authorization", "bearer "+tokA)
	if conn, err := c.Authenticate(t.Context(), r); err != nil || conn != "acme" {
		t.Fatalf("valid token: %q %v", conn, err)
	}
	// Rotation on this instance takes effect at once, despite the cache.
	tokB, _ := c.Issue(t.Context(), "acme")
	if _, err := c.Authenticate(t.Context(), r); !errors.Is(err, ErrBadToken) {
		t.Errorf("rotated-out token: %v", err)
	}
	r.Header.Set("Authorization", "Bearer "+tokB)
	if conn, err := c.Authenticate(t.Context(), r); err != nil || conn != "acme" {
		t.Fatalf("new token: %q %v", conn, err)
	}
}
