package bench

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// Backend is a fast SCIM-ish backend that answers canned JSON without keeping state, so
// that the benchmarks measure the proxy and not a real SCIM server (the example backend
// in examples/backend parses and stores every request). It knows every id; a filter
// finds a user only when its value starts with "existing" (so creates never conflict).
type Backend struct {
	Reads, Writes atomic.Int64 // requests received, by kind
}

// ServeHTTP answers one request.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/_bench/counters" {
		fmt.Fprintf(w, `{"reads":%d,"writes":%d}`, b.Reads.Load(), b.Writes.Load())
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/scim/v2")
	w.Header().Set("Content-Type", "application/scim+json")
	if r.Method != http.MethodGet {
		b.Writes.Add(1)
	} else {
		b.Reads.Add(1)
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case r.Method == http.MethodGet && p == "/Schemas":
		_, _ = io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}`)
	case r.Method == http.MethodGet && len(parts) == 1:
		f := r.URL.Query().Get("filter")
		if strings.Contains(f, `"existing`) {
			fmt.Fprintf(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"startIndex":1,"itemsPerPage":1,"Resources":[%s]}`, liveUser("existing"))
			return
		}
		_, _ = io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]}`)
	case len(parts) == 2 && parts[0] == "Groups" && (r.Method == http.MethodGet || r.Method == http.MethodPatch || r.Method == http.MethodPut):
		fmt.Fprintf(w, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":%q,"displayName":"group %[1]s",`+
			`"members":[{"value":"u1","display":"user1@example.org"},{"value":"u2","display":"user2@example.org"}],`+
			`"meta":{"resourceType":"Group","location":"/scim/v2/Groups/%[1]s"}}`, parts[1])
	case len(parts) == 2 && (r.Method == http.MethodGet || r.Method == http.MethodPatch || r.Method == http.MethodPut):
		_, _ = io.WriteString(w, liveUser(parts[1]))
	case len(parts) == 2 && r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 1 && r.Method == http.MethodPost:
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, liveUser("new"))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404"}`)
	}
}
