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
	// StatusHeld: a live write held by a hold policy or a guard, waiting for approve or
	// ignore; its retries get the retryable rejection.
	StatusHeld RecordStatus = "held"
	// StatusForwarding: an approved (or guarded) write being forwarded right now.
	StatusForwarding RecordStatus = "forwarding"
	// StatusObserved: a write of live traffic kept as the example request of a new warning
	// (see WarningNote.Example). It was forwarded as usual: it never counts as pending,
	// is never deduplicated and is never approved.
	StatusObserved RecordStatus = "observed"
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
	// bodyValid says Body is valid UTF-8 JSON already (storedRequestOf checked it), so
	// that SaveRecord does not check it again.
	bodyValid bool
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
	// HoldReason says why a live write was held: the hold policy or the guard that
	// tripped; "" for records that were not held.
	HoldReason string `json:"hold_reason,omitempty"`
	// BackendStatus and BackendError are what the backend answered when the write was
	// forwarded after approval (status forwarded or failed); 0 and "" before.
	BackendStatus int    `json:"backend_status,omitempty"`
	BackendError  string `json:"backend_error,omitempty"`
	// docsValid says Changes, Findings and Projected are valid UTF-8 JSON already (the
	// engine encoded them, fillRecord), so that SaveRecord does not check them again.
	docsValid bool
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
	Warnings     int64  `json:"warnings"`     // open warnings: (resource, attribute) pairs still missing
	Held         int64  `json:"held"`         // held live writes waiting for approve or ignore
}

// Store keeps records and run-time connection modes. Implementations are safe for concurrent
// use; SaveRecord returns only once the record is durably committed.
type Store interface {
	FallbackNoter // batched fallback counts of the warning bookkeeping (store_fallbacks.go)
	// SaveRecord commits rec. When a pending record of the same connection has the same
	// DedupeHash, that record's Attempts is incremented and its LastSeenAt set instead.
	// It returns the stored record without its documents (Original, Effective, Changes,
	// Findings, Live and Projected: Record reads them); reading back the ~9 KB a preview
	// write stores was a fifth of a save's CPU. rec.CreatedAt and LastSeenAt are set by
	// the caller.
	SaveRecord(ctx context.Context, rec *Record) (Record, error)
	// Record returns one record of a connection, or ErrNotFound.
	Record(ctx context.Context, connection string, id int64) (Record, error)
	// Records lists a connection's records, newest first, and the cursor of the next page
	// ("" when there is none).
	Records(ctx context.Context, connection string, q RecordQuery) ([]Record, string, error)
	// DeleteRecords removes every record of a connection and returns how many.
	DeleteRecords(ctx context.Context, connection string) (int64, error)
	// Connections lists connections that have records, warnings or a stored mode, by
	// name. Its counts are of pending records, and of open warnings.
	Connections(ctx context.Context) ([]ConnectionInfo, error)
	// SetMode stores a run-time mode for a connection.
	SetMode(ctx context.Context, connection string, mode Mode) error
	// Modes returns every stored run-time mode by connection name.
	Modes(ctx context.Context) (map[string]Mode, error)
	// PendingProjection returns the Projected document of the newest pending record of a
	// connection whose target has the type (case-insensitive) and id (exact), nil when
	// that record has none, or ErrNotFound. The engine chains projections through it on
	// every preview PATCH, PUT and DELETE, so it neither reads the record's subjects nor
	// decodes its stored requests.
	PendingProjection(ctx context.Context, connection, resourceType, id string) (json.RawMessage, error)
	// PendingResourceGroups selects one page of the pending resources of a connection as
	// PendingResources shows them (q as there; a Cursor it did not produce is
	// ErrBadCursor) and returns each resource's pending records newest first, the most
	// recently written resource first, and whether more follow. The records carry only
	// what PendingResources reads (see sqlCore.PendingResourceGroups): no Subjects,
	// request bodies or times.
	PendingResourceGroups(ctx context.Context, connection string, q ResourceQuery) ([][]Record, bool, error)
	// Purge removes records last seen before t and returns how many.
	Purge(ctx context.Context, before time.Time) (int64, error)

	// Warnings (see warnings.go). Open warnings outlive DeleteRecords and Purge; their
	// example record id becomes 0 when that record goes. Purge also removes the warnings
	// resolved before its time.

	// NoteWarnings applies one write's warning bookkeeping in one transaction: it opens
	// or bumps a warning per Missing attribute, resolves the open warnings of Present
	// attributes, counts Fallbacks, and saves note.Example when needed (see WarningNote).
	NoteWarnings(ctx context.Context, note WarningNote) (NoteResult, error)
	// WarningSummary lists, per resource type and attribute, the open warnings and the
	// fallback counts of a connection, by resource type and attribute.
	WarningSummary(ctx context.Context, connection string) ([]WarningAttribute, error)
	// WarningUsers lists the resources of a connection with open warnings (only those
	// missing attribute, case-insensitive, when it is not ""), by resource type and key,
	// and the cursor of the next page ("" on the last). limit 0 means
	// DefaultWarningUserLimit; at most MaxWarningUserLimit. A cursor WarningUsers did not
	// produce is ErrBadCursor.
	WarningUsers(ctx context.Context, connection, attribute, cursor string, limit int) ([]WarningUser, string, error)
	// UserWarnings lists the open warnings of the resources of a connection with the
	// given key (case-insensitive), by resource type and attribute.
	UserWarnings(ctx context.Context, connection, key string) ([]Warning, error)
	// Holds, approvals and guard counts (see store_hold.go).
	HoldStore
	// Per-connection credentials (see store_credentials.go).
	CredentialStore
	// Staged go-live (see store_stage.go).
	StageStore
	// Close releases the store.
	Close() error
}

// FallbackUse is one use of a mapping rule's from path: the target attribute was taken
// from Source (a fallback_used finding).
type FallbackUse struct {
	Attribute string `json:"attribute"`
	Source    string `json:"source"`
}

// WarningNote is the warning bookkeeping of one write of one resource.
type WarningNote struct {
	Connection   string
	ResourceType string
	// Key is the resource's userName, displayName or externalId; warnings are keyed by it
	// (case-insensitive). "" when the write does not carry it (PATCH): then Missing is
	// ignored and Present resolves the warnings whose resource id is ResourceID.
	Key        string
	ResourceID string   // the resource id, when known; remembered on the warnings
	Missing    []string // warn_if_missing targets the write lacked
	Present    []string // warn_if_missing targets the write carried: their warnings resolve
	Fallbacks  []FallbackUse
	// ExampleRecordID is a record showing the request (in preview, the recorded write);
	// a new warning keeps it (an open one keeps its first). 0: none, see Example.
	ExampleRecordID int64
	// Example, when ExampleRecordID is 0, is saved (with status observed) in the same
	// transaction if, and only if, a Missing attribute has no open warning with an
	// example yet, and becomes that warning's example. So live traffic adds a record per
	// new warning, not per request.
	Example *Record
	At      time.Time // when the write was seen; zero: now
}

// NoteResult is what NoteWarnings changed.
type NoteResult struct {
	Opened          []string // Missing attributes that had no open warning: new warnings
	Resolved        []string // Present attributes whose open warning was resolved
	ExampleRecordID int64    // the example of the new warnings (given or saved), or the Example saved; 0: none
}

// WarningAttribute is one attribute of WarningSummary.
type WarningAttribute struct {
	ResourceType string          `json:"resource_type"`
	Attribute    string          `json:"attribute"`
	UsersMissing int64           `json:"users_missing"` // open warnings: resources still without it
	Fallbacks    []FallbackCount `json:"fallbacks"`     // from paths used for it, by source
}

// FallbackCount counts the uses of one from path of an attribute.
type FallbackCount struct {
	Source     string    `json:"source"`
	Count      int64     `json:"count"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

// WarningUser is one resource of WarningUsers.
type WarningUser struct {
	ResourceType string    `json:"resource_type"`
	Key          string    `json:"key"`        // one spelling seen (keys match case-insensitively)
	Attributes   []string  `json:"attributes"` // its open warnings' attributes, sorted
	Count        int64     `json:"count"`      // writes seen without them (the sum of the warnings' counts)
	LastSeenAt   time.Time `json:"last_seen_at"`
}

// Warning is one open warning: a resource's writes lack a warn_if_missing attribute.
type Warning struct {
	ResourceType    string    `json:"resource_type"`
	Key             string    `json:"key"` // as last seen
	ResourceID      string    `json:"resource_id,omitempty"`
	Attribute       string    `json:"attribute"`
	Count           int64     `json:"count"` // writes seen without it since it opened
	FirstSeenAt     time.Time `json:"first_seen_at"`
	LastSeenAt      time.Time `json:"last_seen_at"`
	ExampleRecordID int64     `json:"example_record_id,omitempty"` // 0: none, or deleted
}
