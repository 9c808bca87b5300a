package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// RecordStatus is where a recorded write stands in its life.
type RecordStatus string

// Record statuses.
const (
	StatusPending   RecordStatus = "pending"   // recorded, waiting for go-live or approval
	StatusApproved  RecordStatus = "approved"  // approved: the next identical retry is forwarded
	StatusIgnored   RecordStatus = "ignored"   // ignored: later retries get a final error
	StatusForwarded RecordStatus = "forwarded" // forwarded to the backend after approval
	StatusFailed    RecordStatus = "failed"    // forwarded, and the backend refused it
)

// Mode says what a connection does with writes.
type Mode string

// Connection modes.
const (
	ModeLive    Mode = "live"    // forward every request
	ModePreview Mode = "preview" // record writes and answer with a retryable rejection
)

// ParseMode turns "live" or "preview" into a Mode.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeLive, ModePreview:
		return Mode(s), nil
	}
	return "", errors.New(`mode must be "live" or "preview", got "` + s + `"`)
}

// ErrNotFound is returned by a Store when a record or connection does not exist.
var ErrNotFound = errors.New("not found")

// StoredRequest is one HTTP request as kept in the store, already redacted.
type StoredRequest struct {
	Method string              `json:"method"`
	URL    string              `json:"url"` // path and query as received
	Header map[string][]string `json:"header,omitempty"`
	Body   json.RawMessage     `json:"body,omitempty"` // JSON bodies as JSON
	Text   string              `json:"text,omitempty"` // a body that is not JSON, as text
}

// Record is one recorded write.
type Record struct {
	ID           int64           `json:"id"`
	Connection   string          `json:"connection"`
	CreatedAt    time.Time       `json:"created_at"`
	LastSeenAt   time.Time       `json:"last_seen_at"`
	Attempts     int             `json:"attempts"`
	Method       string          `json:"method"`
	Path         string          `json:"path"`
	ResourceType string          `json:"resource_type"`
	ResourceID   string          `json:"resource_id,omitempty"`
	Key          string          `json:"key,omitempty"` // userName, displayName or externalId
	Operation    string          `json:"operation"`     // create, replace, patch, delete, bulk
	Status       RecordStatus    `json:"status"`
	DedupeHash   string          `json:"-"`
	Original     StoredRequest   `json:"original"`           // as the IdP sent it (redacted)
	Effective    StoredRequest   `json:"effective"`          // as the backend would get it (redacted)
	Changes      json.RawMessage `json:"changes,omitempty"`  // []Change: projected − live
	Findings     json.RawMessage `json:"findings,omitempty"` // []Finding (rules' and predicted errors)
	// Live is the target resource as the backend had it when the write was recorded (for a
	// chain of pending writes to one resource: the previous record's Projected); null for a
	// create or when it could not be read.
	Live json.RawMessage `json:"live,omitempty"`
	// Projected is the resource after this write by RFC 7644 semantics; null for a DELETE
	// or a write predicted to fail.
	Projected   json.RawMessage `json:"projected,omitempty"`
	Errors      int             `json:"errors"`      // findings of severity "error"
	Deprovision bool            `json:"deprovision"` // deactivates, deletes, or removes members
	// Subjects are the resources the write touches: its own target and every member
	// added or removed, so records can be filtered by user or group.
	Subjects []Subject `json:"subjects,omitempty"`
}

// Subject is one resource a recorded write touches.
type Subject struct {
	Kind   string `json:"kind"`             // "user" or "group"
	ID     string `json:"id,omitempty"`     // resource id, when known
	Key    string `json:"key,omitempty"`    // userName / displayName, when known
	Change string `json:"change,omitempty"` // "added" or "removed" for group members; "" for the target
}

// RecordQuery selects records of one connection. Zero fields do not filter.
type RecordQuery struct {
	User         string       // a user subject's key (case-insensitive) or id
	Group        string       // a group subject's key (case-insensitive) or id
	ErrorsOnly   bool         // records with Errors > 0
	Deprovisions bool         // records with Deprovision set
	ResourceType string       // "User", "Group", …
	Method       string       // "POST", "PATCH", …
	Status       RecordStatus // pending, …
	Cursor       string       // opaque, from a previous page
	Limit        int          // 0 means 100; at most 1000
}

// ConnectionInfo summarises one connection known to the store.
type ConnectionInfo struct {
	Name         string `json:"name"`
	Mode         Mode   `json:"mode,omitempty"` // run-time override; empty when none is stored
	Pending      int64  `json:"pending"`
	Errors       int64  `json:"errors"`       // pending records with errors
	Deprovisions int64  `json:"deprovisions"` // pending records that deprovision
}

// Store keeps records and run-time connection modes. Implementations are safe for concurrent
// use; SaveRecord returns only once the record is durably committed.
type Store interface {
	// SaveRecord commits rec. When a pending record of the same connection has the same
	// DedupeHash, that record's Attempts is incremented and its LastSeenAt set instead,
	// and the stored record is returned. rec.CreatedAt and LastSeenAt are set by the caller.
	SaveRecord(ctx context.Context, rec *Record) (Record, error)
	// Record returns one record of a connection, or ErrNotFound.
	Record(ctx context.Context, connection string, id int64) (Record, error)
	// Records lists a connection's records, newest first, and the cursor of the next page
	// ("" when there is none).
	Records(ctx context.Context, connection string, q RecordQuery) ([]Record, string, error)
	// DeleteRecords removes every record of a connection and returns how many.
	DeleteRecords(ctx context.Context, connection string) (int64, error)
	// Connections lists connections that have records or a stored mode, by name.
	Connections(ctx context.Context) ([]ConnectionInfo, error)
	// SetMode stores a run-time mode for a connection.
	SetMode(ctx context.Context, connection string, mode Mode) error
	// Modes returns every stored run-time mode by connection name.
	Modes(ctx context.Context) (map[string]Mode, error)
	// LatestPending returns the newest pending record of a connection whose target is the
	// given resource (by type and id, or by type and key when id is empty), or ErrNotFound.
	// The engine chains projections through it.
	LatestPending(ctx context.Context, connection, resourceType, id, key string) (Record, error)
	// Purge removes records last seen before t and returns how many.
	Purge(ctx context.Context, before time.Time) (int64, error)
	// Close releases the store.
	Close() error
}
