package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// Stage lets chosen writes of a connection in preview through to the backend while the
// rest stay recorded: a staged go-live. A write goes live when its target (a user or a
// group) is named in Keys (userName / displayName, case-insensitive, or resource id), is a
// member of a group named in Groups (displayName or id), or falls in Percent of keys (a
// stable hash of the lower-cased key, so a key stays in once it is in). Widen it step by
// step, then switch the connection to live.
type Stage struct {
	Keys    []string `json:"keys,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Percent float64  `json:"percent,omitempty"`
}

// validate checks a stage from the API.
func (s *Stage) validate() error {
	if s.Percent < 0 || s.Percent > 100 {
		return fmt.Errorf("percent must be between 0 and 100, got %g", s.Percent)
	}
	return nil
}

// inPercent reports whether key falls in the first percent of the hash space.
func inPercent(key string, percent float64) bool {
	if percent <= 0 || key == "" {
		return false
	}
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(key)))
	return float64(h.Sum32()%10000) < percent*100
}

// StageTable caches the stages of a Store, re-read at most every refresh interval; a stage
// set through it is visible on this instance at once.
type StageTable struct {
	store   Store
	refresh time.Duration

	mu       sync.Mutex
	stages   map[string]Stage
	loadedAt time.Time
}

// NewStageTable returns a table over store.
func NewStageTable(store Store, refresh time.Duration) *StageTable {
	return &StageTable{store: store, refresh: refresh}
}

// Stage returns the stage of a connection; false when it has none (or the store cannot be
// read and none is known: nothing goes live).
func (t *StageTable) Stage(ctx context.Context, connection string) (Stage, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.loadedAt) > t.refresh {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		stages, err := t.store.Stages(lctx)
		cancel()
		if err == nil {
			t.stages = stages
		}
		t.loadedAt = time.Now()
	}
	st, ok := t.stages[connection]
	return st, ok
}

// Set stores a connection's stage (nil removes it) and makes it visible at once.
func (t *StageTable) Set(ctx context.Context, connection string, st *Stage) error {
	if err := t.store.SetStage(ctx, connection, st); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stages == nil {
		t.stages = map[string]Stage{}
	}
	if st == nil {
		delete(t.stages, connection)
	} else {
		t.stages[connection] = *st
	}
	return nil
}

// stagedLive reports whether a preview write goes live by the connection's stage.
func (e *Engine) stagedLive(r *http.Request, next http.Handler, d *Decision, effective []byte) bool {
	if e.Stages == nil || d.Mode != ModePreview || d.Target.ResourceType == "" || d.Target.Op == OpBulk {
		return false
	}
	st, ok := e.Stages.Stage(r.Context(), d.Connection)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), DefaultPredictTimeout)
	defer cancel()
	p := &predictor{e: e, r: r, next: next, ctx: ctx, d: d}
	t := d.Target
	key := resourceKey(t, effective)
	if key == "" && t.ID != "" {
		key, _, _ = e.memberName(p, t.Endpoint, t.ID)
	}
	kind := subjectKind(t.ResourceType)
	for _, k := range st.Keys {
		if (key != "" && strings.EqualFold(k, key)) || (t.ID != "" && k == t.ID) {
			return true
		}
	}
	if inPercent(key, st.Percent) {
		return true
	}
	for _, g := range st.Groups {
		switch {
		case kind == "group" && ((key != "" && strings.EqualFold(g, key)) || (t.ID != "" && g == t.ID)):
			return true
		case kind == "user" && t.ID != "" && e.groupMembers(p, g)[t.ID]:
			return true
		}
	}
	return false
}

// stageGroup is a cached member list of a staged group.
type stageGroup struct {
	members map[string]bool
	at      time.Time
}

// groupMembers returns the member ids of a group named by displayName or id, read through
// next and cached for a short while; empty when it cannot be read.
func (e *Engine) groupMembers(p *predictor, group string) map[string]bool {
	cacheKey := p.d.Connection + "\x00" + group
	if v, ok := e.stageGroups.Load(cacheKey); ok && time.Since(v.(stageGroup).at) < 30*time.Second {
		return v.(stageGroup).members
	}
	base := p.d.Target.Base + "/Groups"
	members := gjson.Result{}
	if status, body, err := p.get(base+"/"+url.PathEscape(group), ""); err == nil && status == http.StatusOK {
		members = gjson.GetBytes(body, "members")
	} else {
		filter := `displayName eq "` + strings.ReplaceAll(strings.ReplaceAll(group, `\`, `\\`), `"`, `\"`) + `"`
		status, body, err := p.get(base, "filter="+url.QueryEscape(filter))
		if err == nil && status == http.StatusOK {
			members = gjson.GetBytes(body, "Resources.0.members")
		}
	}
	out := map[string]bool{}
	members.ForEach(func(_, m gjson.Result) bool {
		out[m.Get("value").String()] = true
		return true
	})
	e.stageGroups.Store(cacheKey, stageGroup{members: out, at: time.Now()})
	return out
}

// forwardStaged forwards a write let through by the stage and marks the pending records of
// the same request forwarded (or failed), so the review shows what went live.
func (e *Engine) forwardStaged(w http.ResponseWriter, r *http.Request, next http.Handler, d *Decision, original, effective []byte) {
	rec := e.newRecord(r, d, original, effective)
	to, status, detail := forwardCapturing(w, r, next)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.storeTimeout())
	defer cancel()
	if e.Store != nil {
		if _, err := e.Store.MarkPendingForwarded(ctx, d.Connection, rec.DedupeHash, to, status, detail); err != nil {
			d.Err = fmt.Errorf("marking the staged write's records: %w", err)
		}
	}
}

// Review endpoints of staged go-live:
//
//	GET    /connections/{c}/stage   → {"connection","stage":{"keys","groups","percent"}|null}
//	PUT    /connections/{c}/stage   body: a Stage → the same; widen it step by step
//	DELETE /connections/{c}/stage   → {"connection","stage":null}
func stageRoutes() []apiRoute {
	return []apiRoute{
		{"GET /connections/{c}/stage", (*ReviewAPI).getStage},
		{"PUT /connections/{c}/stage", (*ReviewAPI).putStage},
		{"DELETE /connections/{c}/stage", (*ReviewAPI).putStage},
	}
}

func (a *ReviewAPI) stages() *StageTable {
	if a.Stages != nil {
		return a.Stages
	}
	return NewStageTable(a.Store, 0)
}

func (a *ReviewAPI) getStage(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	all, err := a.Store.Stages(r.Context())
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, err.Error())
		return
	}
	var st *Stage
	if s, ok := all[conn]; ok {
		st = &s
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"connection": conn, "stage": st})
}

func (a *ReviewAPI) putStage(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	var st *Stage
	if r.Method == http.MethodPut {
		st = new(Stage)
		dec := json.NewDecoder(io.LimitReader(r.Body, reviewMaxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(st); err != nil {
			writeReviewError(w, http.StatusBadRequest, fmt.Sprintf(`body must be a stage such as {"keys":["ada@example.com"],"groups":["Pilots"],"percent":10}: %v`, err))
			return
		}
		if err := st.validate(); err != nil {
			writeReviewError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if err := a.stages().Set(r.Context(), conn, st); err != nil && !errors.Is(err, ErrNotFound) {
		writeReviewError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeReviewJSON(w, http.StatusOK, map[string]any{"connection": conn, "stage": st})
}
