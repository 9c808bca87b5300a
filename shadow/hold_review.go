package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Review endpoints of the hold queue (see Holds):
//
//	POST /connections/{c}/records/{id}/approve   → {"approved":[id]}   held or failed → approved
//	POST /connections/{c}/records/{id}/ignore    → {"ignored":[id]}    held, failed or approved → ignored
//	POST /connections/{c}/records/approve        body: a DecisionFilter → {"approved":[ids…]}
//	POST /connections/{c}/records/ignore         body: a DecisionFilter → {"ignored":[ids…]}
//
// Approving or ignoring a record that is not waiting (pending, forwarded, …) is 409.
func holdRoutes() []apiRoute {
	return []apiRoute{
		{"POST /connections/{c}/records/{id}/approve", decideOne(StatusApproved)},
		{"POST /connections/{c}/records/{id}/ignore", decideOne(StatusIgnored)},
		{"POST /connections/{c}/records/approve", decideMany(StatusApproved)},
		{"POST /connections/{c}/records/ignore", decideMany(StatusIgnored)},
	}
}

// DecisionFilter selects the waiting records of a connection to approve or ignore. At
// least one field must be set; {"all":true} selects every waiting record.
type DecisionFilter struct {
	IDs          []int64 `json:"ids,omitempty"`
	All          bool    `json:"all,omitempty"`
	User         string  `json:"user,omitempty"`
	Group        string  `json:"group,omitempty"`
	ResourceType string  `json:"resource,omitempty"`
	Method       string  `json:"method,omitempty"`
	Deprovisions bool    `json:"deprovisions,omitempty"`
	// Guard selects the records a guard held ("deprovision", "member_removal").
	Guard string `json:"guard,omitempty"`

	// Set by the review page's bulk actions only (not in the JSON API):
	status     RecordStatus // only records with this status
	errorsOnly bool         // only records with predicted errors
}

func (f DecisionFilter) empty() bool {
	return len(f.IDs) == 0 && !f.All && f.User == "" && f.Group == "" && f.ResourceType == "" &&
		f.Method == "" && !f.Deprovisions && f.Guard == ""
}

// decisionKey is the JSON key of a decision's answer.
func decisionKey(to RecordStatus) string {
	if to == StatusApproved {
		return "approved"
	}
	return "ignored"
}

func decideOne(to RecordStatus) func(*ReviewAPI, http.ResponseWriter, *http.Request) {
	return func(a *ReviewAPI, w http.ResponseWriter, r *http.Request) {
		conn := r.PathValue("c")
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeReviewError(w, http.StatusBadRequest, "record id must be a positive integer")
			return
		}
		rec, err := a.Store.Record(r.Context(), conn, id)
		if errors.Is(err, ErrNotFound) {
			writeReviewError(w, http.StatusNotFound, "no such record")
			return
		}
		if err != nil {
			writeReviewError(w, http.StatusInternalServerError, fmt.Sprintf("reading record: %v", err))
			return
		}
		changed, err := a.decide(r.Context(), conn, []int64{id}, to)
		if err != nil {
			writeReviewError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if len(changed) == 0 {
			writeReviewError(w, http.StatusConflict, notWaitingMessage(id, rec.Status))
			return
		}
		writeReviewJSON(w, http.StatusOK, map[string]any{decisionKey(to): changed})
	}
}

func decideMany(to RecordStatus) func(*ReviewAPI, http.ResponseWriter, *http.Request) {
	return func(a *ReviewAPI, w http.ResponseWriter, r *http.Request) {
		conn := r.PathValue("c")
		var f DecisionFilter
		dec := json.NewDecoder(io.LimitReader(r.Body, reviewMaxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeReviewError(w, http.StatusBadRequest, fmt.Sprintf(`body must be a JSON filter such as {"all":true}, {"ids":[1,2]} or {"guard":"deprovision"}: %v`, err))
			return
		}
		if f.empty() {
			writeReviewError(w, http.StatusBadRequest, `empty filter: send {"all":true} to select every waiting record`)
			return
		}
		changed, err := a.decideFilter(r.Context(), conn, f, to)
		if err != nil {
			writeReviewError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if changed == nil {
			changed = []int64{}
		}
		writeReviewJSON(w, http.StatusOK, map[string]any{decisionKey(to): changed})
	}
}

// selectWaiting lists, in ascending order, the ids of the records f selects that the
// decision applies to.
func (a *ReviewAPI) selectWaiting(ctx context.Context, conn string, f DecisionFilter, to RecordStatus) ([]int64, error) {
	want := map[int64]bool{}
	for _, id := range f.IDs {
		want[id] = true
	}
	statuses := slices.DeleteFunc([]RecordStatus{StatusHeld, StatusFailed, StatusApproved}, func(st RecordStatus) bool {
		return !decidable(st, to) || f.status != "" && st != f.status
	})
	var ids []int64
	for _, st := range statuses {
		q := RecordQuery{User: f.User, Group: f.Group, ResourceType: f.ResourceType, Method: strings.ToUpper(f.Method),
			Deprovisions: f.Deprovisions, ErrorsOnly: f.errorsOnly, Status: st}
		err := scanRecords(ctx, a.Store, conn, q, func(rec *Record) {
			if len(want) > 0 && !want[rec.ID] {
				return
			}
			if f.Guard != "" && !strings.HasPrefix(rec.HoldReason, "guard "+f.Guard+":") {
				return
			}
			ids = append(ids, rec.ID)
		})
		if err != nil {
			return nil, fmt.Errorf("selecting %s records: %w", st, err)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// decideFilter approves or ignores the waiting records f selects and returns the ids it
// changed.
func (a *ReviewAPI) decideFilter(ctx context.Context, conn string, f DecisionFilter, to RecordStatus) ([]int64, error) {
	ids, err := a.selectWaiting(ctx, conn, f, to)
	if err != nil {
		return nil, err
	}
	return a.decide(ctx, conn, ids, to)
}

// decide approves or ignores the records ids (those that are waiting for it), tells
// OnDecide, and returns the ids it changed. The JSON API and the review page both decide
// through it.
func (a *ReviewAPI) decide(ctx context.Context, conn string, ids []int64, to RecordStatus) ([]int64, error) {
	changed, err := a.Store.DecideRecords(ctx, conn, ids, to)
	if err != nil {
		return nil, err
	}
	if a.OnDecide != nil && len(changed) > 0 {
		a.OnDecide(conn, changed, to)
	}
	return changed, nil
}

// decidable reports whether a record with status st can be approved (to: approved) or
// ignored (to: ignored).
func decidable(st, to RecordStatus) bool {
	return st == StatusHeld || st == StatusFailed || (to == StatusIgnored && st == StatusApproved)
}

// notWaitingMessage says why record id with status st cannot be decided.
func notWaitingMessage(id int64, st RecordStatus) string {
	return fmt.Sprintf("record %d is %s: only held or failed records can be approved, and held, failed or approved ones ignored", id, st)
}
