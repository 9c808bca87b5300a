package shadow

import (
	"context"
	"testing"
)

// TestSourceConnectionsBounded checks that connection names (which may come from request
// headers) cannot grow the source-path map without bound.
func TestSourceConnectionsBounded(t *testing.T) {
	e := &Engine{}
	e.setSource("known", "User", "favoriteColor", "favorite_color")
	e.nconns.Store(maxSourceConnections)
	e.setSource("new", "User", "favoriteColor", "favorite_color")
	if e.hasSources(context.Background(), "new") {
		t.Error("a connection beyond the bound was kept")
	}
	if _, ok := e.conns.Load("new"); ok {
		t.Error("a connection beyond the bound has an entry")
	}
	if !e.hasSources(context.Background(), "known") || e.usedSources("known")("user", "favoriteColor") != "favorite_color" {
		t.Error("a known connection lost its sources")
	}
}
