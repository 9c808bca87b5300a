package shadow

import (
	"errors"
	"net/http"
	"time"
)

// Review endpoints of connection credentials:
//
//	POST   /connections/{c}/token   → 201 {"connection","token","created_at"}: a new token, shown
//	                                  this once; it replaces the connection's previous one
//	DELETE /connections/{c}/token   → {"deleted":true}; 404 when the connection has none
func credentialRoutes() []apiRoute {
	return []apiRoute{
		{"POST /connections/{c}/token", (*ReviewAPI).issueToken},
		{"DELETE /connections/{c}/token", (*ReviewAPI).deleteToken},
	}
}

func (a *ReviewAPI) credentials() *Credentials {
	if a.Credentials != nil {
		return a.Credentials
	}
	return &Credentials{Store: a.Store}
}

func (a *ReviewAPI) issueToken(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	if conn == "" {
		writeReviewError(w, http.StatusBadRequest, "empty connection name")
		return
	}
	token, err := a.credentials().Issue(r.Context(), conn)
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, "issuing a token: "+err.Error())
		return
	}
	writeReviewJSON(w, http.StatusCreated, map[string]any{
		"connection": conn,
		"token":      token,
		"created_at": time.Now().UTC(),
		"note":       "shown once: only its SHA-256 is stored; issuing another token replaces this one",
	})
}

func (a *ReviewAPI) deleteToken(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("c")
	err := a.Store.DeleteCredential(r.Context(), conn)
	if errors.Is(err, ErrNotFound) {
		writeReviewError(w, http.StatusNotFound, "the connection has no token")
		return
	}
	if err != nil {
		writeReviewError(w, http.StatusInternalServerError, err.Error())
		return
	}
	a.credentials().Forget(conn)
	writeReviewJSON(w, http.StatusOK, map[string]any{"deleted": true})
}
