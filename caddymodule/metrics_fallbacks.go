package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// NoteFallbacks forwards the warning recorder's batched fallback counts, so the
// instrumented store stays a shadow.FallbackNoter when the store is one (without it the
// recorder would add each use through NoteWarnings). Measured under the note_warnings
// operation: it is the same bookkeeping.
func (s *instrumentedStore) NoteFallbacks(ctx context.Context, deltas []shadow.FallbackDelta) error {
	fn, ok := s.Store.(shadow.FallbackNoter)
	if !ok { // one NoteWarnings per use, as the recorder does for such a store
		for _, d := range deltas {
			note := shadow.WarningNote{Connection: d.Connection, ResourceType: d.ResourceType, At: d.LastSeen,
				Fallbacks: []shadow.FallbackUse{{Attribute: d.Attribute, Source: d.Source}}}
			for range d.Count {
				if _, err := s.NoteWarnings(ctx, note); err != nil {
					return fmt.Errorf("note fallbacks: %w", err)
				}
			}
		}
		return nil
	}
	began := time.Now()
	err := fn.NoteFallbacks(ctx, deltas)
	observeStore("note_warnings", began, err)
	return err
}
