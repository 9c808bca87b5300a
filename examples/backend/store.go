package backend

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

type kind int

const (
	kindUser kind = iota
	kindGroup
)

// record is one stored resource. attrs holds the validated attributes with
// canonical (schema-cased) names, including "externalId" and, for users, the
// write-only "password" and the enterprise extension under its URN. It never
// holds "id", "meta", "schemas" or the computed user "groups".
type record struct {
	id       string
	seq      uint64
	attrs    map[string]any
	created  time.Time
	modified time.Time
	version  uint64
}

// service is the shared state behind both resource handlers. One mutex guards
// users and groups together because membership spans both.
type service struct {
	basePath string
	log      *slog.Logger

	user, ent, group schema.Schema

	mu     sync.Mutex
	seq    uint64
	users  map[string]*record
	groups map[string]*record
}

// resourceHandler implements scim.ResourceHandler for one resource type.
type resourceHandler struct {
	svc  *service
	kind kind
}

var _ scim.ResourceHandler = (*resourceHandler)(nil)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func notFound(id string) error { return scimerrors.ScimErrorResourceNotFound(id) }

func badValue(detail string) error {
	return scimerrors.ScimError{ScimType: scimerrors.ScimTypeInvalidValue, Detail: detail, Status: http.StatusBadRequest}
}

func conflict(detail string) error {
	return scimerrors.ScimError{ScimType: scimerrors.ScimTypeUniqueness, Detail: detail, Status: http.StatusConflict}
}

func (h *resourceHandler) table() map[string]*record {
	if h.kind == kindUser {
		return h.svc.users
	}
	return h.svc.groups
}

func (h *resourceHandler) Create(r *http.Request, attributes scim.ResourceAttributes) (scim.Resource, error) {
	s := h.svc
	s.mu.Lock()
	defer s.mu.Unlock()

	attrs, err := h.canonical(map[string]any(attributes))
	if err != nil {
		return scim.Resource{}, err
	}
	if err := h.checkConstraints("", attrs); err != nil {
		return scim.Resource{}, err
	}
	now := time.Now().UTC()
	s.seq++
	rec := &record{id: newID(), seq: s.seq, attrs: attrs, created: now, modified: now, version: 1}
	for h.table()[rec.id] != nil || s.users[rec.id] != nil || s.groups[rec.id] != nil {
		rec.id = newID()
	}
	h.table()[rec.id] = rec
	return h.resource(r, rec), nil
}

func (h *resourceHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	s := h.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := h.table()[id]
	if rec == nil {
		return scim.Resource{}, notFound(id)
	}
	return h.resource(r, rec), nil
}

func (h *resourceHandler) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	s := h.svc
	s.mu.Lock()
	defer s.mu.Unlock()

	recs := make([]*record, 0, len(h.table()))
	for _, rec := range h.table() {
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })

	var matched []scim.Resource
	for _, rec := range recs {
		res := h.resource(r, rec)
		if params.FilterValidator != nil {
			doc := map[string]any(res.Attributes)
			if !h.matchFilter(params.FilterValidator.GetFilter(), doc) {
				continue
			}
		}
		matched = append(matched, res)
	}

	page := scim.Page{TotalResults: len(matched), Resources: []scim.Resource{}}
	start := params.StartIndex - 1
	if start < len(matched) && params.Count > 0 {
		end := min(start+params.Count, len(matched))
		page.Resources = append(page.Resources, matched[start:end]...)
	}
	return page, nil
}

func (h *resourceHandler) Replace(r *http.Request, id string, attributes scim.ResourceAttributes) (scim.Resource, error) {
	s := h.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := h.table()[id]
	if rec == nil {
		return scim.Resource{}, notFound(id)
	}
	attrs, err := h.canonical(map[string]any(attributes))
	if err != nil {
		return scim.Resource{}, err
	}
	// password is write-only: a PUT without it keeps the stored one.
	if pw, ok := rec.attrs["password"]; ok && h.kind == kindUser {
		if _, given := attrs["password"]; !given {
			attrs["password"] = pw
		}
	}
	if err := h.checkConstraints(id, attrs); err != nil {
		return scim.Resource{}, err
	}
	h.commit(rec, attrs)
	return h.resource(r, rec), nil
}

func (h *resourceHandler) Delete(r *http.Request, id string) error {
	s := h.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.table()[id] == nil {
		return notFound(id)
	}
	delete(h.table(), id)
	// Drop the deleted resource from every group it was a member of.
	for _, g := range s.groups {
		members, _ := g.attrs["members"].([]any)
		kept := slices.DeleteFunc(slices.Clone(members), func(m any) bool {
			mm, _ := m.(map[string]any)
			return mm["value"] == id
		})
		if len(kept) != len(members) {
			attrs := deepCopyMap(g.attrs)
			if len(kept) == 0 {
				delete(attrs, "members")
			} else {
				attrs["members"] = kept
			}
			(&resourceHandler{svc: s, kind: kindGroup}).commit(g, attrs)
		}
	}
	return nil
}

func (h *resourceHandler) Patch(r *http.Request, id string, operations []scim.PatchOperation) (scim.Resource, error) {
	s := h.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := h.table()[id]
	if rec == nil {
		return scim.Resource{}, notFound(id)
	}
	doc := deepCopyMap(rec.attrs)
	for _, op := range operations {
		if err := h.applyOperation(doc, op); err != nil {
			return scim.Resource{}, err
		}
	}
	attrs, err := h.canonical(doc)
	if err != nil {
		return scim.Resource{}, err
	}
	if err := h.checkConstraints(id, attrs); err != nil {
		return scim.Resource{}, err
	}
	h.commit(rec, attrs)
	return h.resource(r, rec), nil
}

// commit stores attrs, bumping lastModified/version only on a real change.
func (h *resourceHandler) commit(rec *record, attrs map[string]any) {
	if reflect.DeepEqual(rec.attrs, attrs) {
		return
	}
	rec.attrs = attrs
	now := time.Now().UTC()
	if !now.After(rec.modified) {
		now = rec.modified.Add(time.Microsecond)
	}
	rec.modified = now
	rec.version++
}

// coreSchema/extensions return the schemas of the handler's resource type.
func (h *resourceHandler) coreSchema() schema.Schema {
	if h.kind == kindUser {
		return h.svc.user
	}
	return h.svc.group
}

func (h *resourceHandler) extensions() []schema.Schema {
	if h.kind == kindUser {
		return []schema.Schema{h.svc.ent}
	}
	return nil
}

// canonical turns a candidate attribute map into its stored form: a single
// object given for a multi-valued attribute is wrapped in an array, the map is
// re-validated with elimity's schema validation (types, required attributes,
// canonical names; read-only and unknown attributes are dropped), and empty
// values are pruned. For groups, members are checked and de-duplicated.
func (h *resourceHandler) canonical(doc map[string]any) (map[string]any, error) {
	core := h.coreSchema()
	wrapMultiValued(doc, core.Attributes)
	out, scimErr := core.Validate(doc)
	if scimErr != nil {
		return nil, *scimErr
	}
	for _, ext := range h.extensions() {
		var extDoc map[string]any
		for k, v := range doc {
			if strings.EqualFold(k, ext.ID) {
				extDoc, _ = v.(map[string]any)
			}
		}
		if extDoc == nil {
			continue
		}
		wrapMultiValued(extDoc, ext.Attributes)
		extOut, scimErr := ext.Validate(extDoc)
		if scimErr != nil {
			return nil, *scimErr
		}
		// manager.displayName is read-only and therefore dropped by elimity;
		// it is filled in on output from the referenced user.
		out[ext.ID] = extOut
	}
	prune(out)
	if h.kind == kindGroup {
		if err := h.svc.normalizeMembers(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// wrapMultiValued wraps a single object given for a multi-valued attribute.
func wrapMultiValued(doc map[string]any, attrs schema.Attributes) {
	for k, v := range doc {
		attr, ok := attrs.ContainsAttribute(k)
		if !ok || !attr.MultiValued() {
			continue
		}
		if m, isMap := v.(map[string]any); isMap {
			doc[k] = []any{m}
		}
	}
}

// prune removes nil values and empty objects/arrays, recursively.
func prune(m map[string]any) {
	for k, v := range m {
		switch vv := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			prune(vv)
			if len(vv) == 0 {
				delete(m, k)
			}
		case []any:
			out := vv[:0]
			for _, e := range vv {
				if em, ok := e.(map[string]any); ok {
					prune(em)
					if len(em) == 0 {
						continue
					}
				}
				if e != nil {
					out = append(out, e)
				}
			}
			if len(out) == 0 {
				delete(m, k)
			} else {
				m[k] = out
			}
		}
	}
}

// normalizeMembers checks that every member references an existing user or
// group, sets its type, drops client-supplied $ref (computed on output) and
// removes duplicates (first occurrence wins).
func (s *service) normalizeMembers(attrs map[string]any) error {
	members, _ := attrs["members"].([]any)
	if len(members) == 0 {
		return nil
	}
	seen := map[string]bool{}
	out := make([]any, 0, len(members))
	for _, m := range members {
		mm, _ := m.(map[string]any)
		id, _ := mm["value"].(string)
		if id == "" {
			return badValue("members: every member needs a \"value\" (resource id)")
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		typ := ""
		switch {
		case s.users[id] != nil:
			typ = "User"
		case s.groups[id] != nil:
			typ = "Group"
		default:
			return badValue(fmt.Sprintf("members: no User or Group with id %q", id))
		}
		if t, ok := mm["type"].(string); ok && !strings.EqualFold(t, typ) {
			return badValue(fmt.Sprintf("members: %q is a %s, not a %s", id, typ, t))
		}
		nm := map[string]any{"value": id, "type": typ}
		if d, ok := mm["display"].(string); ok && d != "" {
			nm["display"] = d
		}
		out = append(out, nm)
	}
	attrs["members"] = out
	return nil
}

// checkConstraints enforces server uniqueness (case-insensitive) of
// userName / group displayName and forbids a group being its own member.
func (h *resourceHandler) checkConstraints(selfID string, attrs map[string]any) error {
	key := "userName"
	if h.kind == kindGroup {
		key = "displayName"
	}
	v, _ := attrs[key].(string)
	if strings.TrimSpace(v) == "" {
		return badValue(key + " must not be empty")
	}
	for id, rec := range h.table() {
		if id == selfID {
			continue
		}
		if other, _ := rec.attrs[key].(string); strings.EqualFold(other, v) {
			return conflict(fmt.Sprintf("%s %q is already in use", key, v))
		}
	}
	if h.kind == kindGroup && selfID != "" {
		members, _ := attrs["members"].([]any)
		for _, m := range members {
			if mm, _ := m.(map[string]any); mm["value"] == selfID {
				return badValue("members: a group cannot be a member of itself")
			}
		}
	}
	return nil
}

// resource renders rec as elimity expects it. Attributes is a fresh map
// (elimity adds id/schemas/meta to it).
func (h *resourceHandler) resource(r *http.Request, rec *record) scim.Resource {
	base := h.svc.baseURL(r)
	attrs := deepCopyMap(rec.attrs)
	delete(attrs, "password") // writeOnly, returned "never"
	attrs["id"] = rec.id
	if h.kind == kindUser {
		h.svc.decorateUser(base, rec.id, attrs)
	} else {
		h.svc.decorateGroup(base, attrs)
	}
	created, modified := rec.created, rec.modified // copies: elimity reads them after the lock is released
	res := scim.Resource{
		ID:         rec.id,
		Attributes: attrs,
		Meta: scim.Meta{
			Created:      &created,
			LastModified: &modified,
			Version:      fmt.Sprintf(`W/"%d"`, rec.version),
		},
	}
	if ext, ok := attrs["externalId"].(string); ok {
		res.ExternalID = optional.NewString(ext)
	}
	return res
}

// decorateUser adds the computed "groups" attribute and manager details.
func (s *service) decorateUser(base, id string, attrs map[string]any) {
	gs := make([]*record, 0)
	for _, g := range s.groups {
		members, _ := g.attrs["members"].([]any)
		for _, m := range members {
			if mm, _ := m.(map[string]any); mm["value"] == id {
				gs = append(gs, g)
				break
			}
		}
	}
	if len(gs) > 0 {
		slices.SortFunc(gs, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
		groups := make([]any, 0, len(gs))
		for _, g := range gs {
			groups = append(groups, map[string]any{
				"value":   g.id,
				"display": g.attrs["displayName"],
				"$ref":    base + "/Groups/" + url.PathEscape(g.id),
				"type":    "direct",
			})
		}
		attrs["groups"] = groups
	}
	if ext, ok := attrs[EnterpriseUserURN].(map[string]any); ok {
		if mgr, ok := ext["manager"].(map[string]any); ok {
			if mid, _ := mgr["value"].(string); mid != "" {
				if u := s.users[mid]; u != nil {
					mgr["$ref"] = base + "/Users/" + url.PathEscape(mid)
					mgr["displayName"] = userDisplay(u)
				}
			}
		}
	}
}

// decorateGroup fills members' $ref and (when not supplied) display.
func (s *service) decorateGroup(base string, attrs map[string]any) {
	members, _ := attrs["members"].([]any)
	for _, m := range members {
		mm, _ := m.(map[string]any)
		id, _ := mm["value"].(string)
		if u := s.users[id]; u != nil {
			mm["$ref"] = base + "/Users/" + url.PathEscape(id)
			if _, ok := mm["display"]; !ok {
				mm["display"] = userDisplay(u)
			}
		} else if g := s.groups[id]; g != nil {
			mm["$ref"] = base + "/Groups/" + url.PathEscape(id)
			if _, ok := mm["display"]; !ok {
				mm["display"] = g.attrs["displayName"]
			}
		}
	}
}

func userDisplay(u *record) any {
	if d, ok := u.attrs["displayName"].(string); ok && d != "" {
		return d
	}
	return u.attrs["userName"]
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch vv := v.(type) {
	case map[string]any:
		return deepCopyMap(vv)
	case []any:
		out := make([]any, len(vv))
		for i, e := range vv {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}
