package shadow

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ErrorSchema is the schema URI of an RFC 7644 §3.12 error response.
const ErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

// ContentType is the SCIM media type (RFC 7644 §8.1).
const ContentType = "application/scim+json"

// scimError is the body of an RFC 7644 §3.12 error response.
type scimError struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// WriteError answers with an RFC 7644 error body. scimType may be empty.
func WriteError(w http.ResponseWriter, status int, scimType, detail string) {
	body, _ := json.Marshal(scimError{
		Schemas:  []string{ErrorSchema},
		Status:   strconv.Itoa(status),
		ScimType: scimType,
		Detail:   detail,
	})
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
