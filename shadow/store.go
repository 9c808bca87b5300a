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
	Original     StoredRequest   `json:"original"`  // as the IdP sent it (redacted)
	Effective    StoredRequest   `json:"effective"` // as the backend would get it (redacted)
	Changes      json.RawMessage `json:"changes,omitempty"`
	Findings     json.RawMessage `json:"findings,omitempty"`
}

// RecordQuery selects records of one connection. Zero fields do not filter.
type RecordQuery struct {
	User         string       // key or resource id of a User record
	ResourceType string       // "User", "Group", …
	Method       string       // "POST", "PATCH", …
	Status       RecordStatus // pending, …
	Cursor       string       // opaque, from a previous page
	Limit        int          // 0 means 100; at most 1000
}

// ConnectionInfo summarises one connection known to the store.
type ConnectionInfo struct {
	Name    string `json:"name"`
	Mode    Mode   `json:"mode,omitempty"` // run-time override; empty when none is stored
	Pending int64  `json:"pending"`
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
	// Purge removes records last seen before t and returns how many.
	Purge(ctx context.Context, before time.Time) (int64, error)
	// Close releases the store.
	Close() error
}
