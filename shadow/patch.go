package shadow

// RFC 7644 write semantics — PATCH (§3.5.2), PUT (§3.5.1) and POST (§3.3) — applied to a
// resource as the backend returned it, so that preview mode can predict exactly what a
// recorded write would change.
//
// Where RFC 7644 leaves a choice, the engine does what the example backend
// (examples/backend, built on github.com/elimity-com/scim) does, step by step:
//
//  1. the backend's request normalisation (an extension URN as a PATCH path, or an extension
//     object inside a path-less value, is flattened to URN-qualified attribute paths);
//  2. elimity's validation of every operation before any is applied (op names lower-cased;
//     "id" dropped from object values; the path parsed with filter-parser and checked against
//     the schemas; the value type-checked and sanitised — unknown sub-attributes and
//     read-only sub-attributes dropped, a single value for a multi-valued attribute wrapped
//     in an array). A malformed operation or path is invalidPath, any other failure —
//     including "remove" without a path, an unknown op, "False" for a boolean, a bare
//     string for the complex manager — is invalidValue, as elimity maps them;
//  3. the backend's application (patch.go there): a multi-valued add is a union (members
//     matched by value), remove with a value array removes only the listed values,
//     replace of a complex attribute merges sub-attributes, replace on a filtered path
//     without a match is noTarget while add creates the value from the filter's "eq"
//     terms, at most one primary value is kept, read-only paths are mutability, and
//     read-only keys of a path-less value are ignored;
//  4. the backend's canonical form: the result re-validated against the schemas (a
//     required attribute removed is invalidValue), empty values pruned, group members
//     de-duplicated and reduced to value/type/display, userName / displayName non-empty,
//     a group not a member of itself.
//
// The engine knows the RFC 7643 schemas (User, EnterpriseUser, Group) the example backend
// serves. It does not know a backend's own custom attributes (the example backend has
// favoriteColor): an attribute that is in none of the known schemas is accepted and shaped
// by the data instead of being refused, because predicting an error for every custom
// attribute would be wrong far more often than right. Exceptions, refused like the example
// backend refuses them: an enterprise attribute given without its URN ("department"),
// "schemas" and "meta", and unknown attributes of a known schema URN.
//
// The JSON is handled as encoding/json trees (map[string]any with json.Number), not with
// gjson/sjson paths: PATCH application matches filters against array elements, merges
// objects, de-duplicates and re-validates whole resources, which is what the backend itself
// does on decoded trees; path-based byte edits cannot express that without re-parsing at
// every step. json.Number keeps numbers exactly as sent.

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	filter "github.com/scim2/filter-parser/v2"
)

// SCIM scimType values (RFC 7644 §3.12) of a refused write.
const (
	scimTypeInvalidSyntax = "invalidSyntax"
	scimTypeInvalidPath   = "invalidPath"
	scimTypeNoTarget      = "noTarget"
	scimTypeInvalidValue  = "invalidValue"
	scimTypeMutability    = "mutability"
)

// Schema URNs the engine knows.
const (
	scimUserURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimGroupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	scimEnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	scimPatchOpURN    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// PatchError is a PATCH the backend would refuse (RFC 7644 §3.12 scimType). ApplyReplace and
// ApplyCreate use it too, with Index -1, for a PUT or POST body the backend would refuse.
type PatchError struct {
	Index    int    // operation index, -1 for the message as a whole
	ScimType string // invalidSyntax, invalidPath, noTarget, invalidValue, mutability
	Path     string // the operation's path or the attribute concerned, if any
	Message  string // what is wrong, for people
}

// Error describes the refusal.
func (e *PatchError) Error() string {
	var b strings.Builder
	b.WriteString("scim: ")
	if e.Index >= 0 {
		fmt.Fprintf(&b, "operation %d: ", e.Index)
	}
	b.WriteString(e.ScimType)
	if e.Path != "" {
		fmt.Fprintf(&b, " (path %q)", e.Path)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// refusal is a *PatchError for the message as a whole (Index -1 until the caller sets it).
func refusal(scimType, path, format string, args ...any) *PatchError {
	return &PatchError{Index: -1, ScimType: scimType, Path: path, Message: fmt.Sprintf(format, args...)}
}

// ApplyPatch applies a PatchOp message (RFC 7644 §3.5.2) to a resource (JSON object) and
// returns the new resource. The error is a *PatchError for a message the backend would
// refuse; any other error means resource is not a JSON object. The result has the shape the
// backend returns on GET: id, meta and a user's groups are kept from resource, schemas lists
// the schemas in use, and no password attribute (at any depth) is included.
func ApplyPatch(resource, patchOp []byte) ([]byte, error) {
	projected, _, err := applyPatchTree(resource, patchOp)
	return projected, err
}

// applyPatchTree is ApplyPatch also returning the projection as the tree it encoded.
func applyPatchTree(resource, patchOp []byte) ([]byte, map[string]any, error) {
	live, err := decodeResource(resource)
	if err != nil {
		return nil, nil, fmt.Errorf("apply patch: live resource: %w", err)
	}
	m := modelOf(live, nil)
	body := patchOp
	if !m.group {
		body = flattenExtensionPatch(body, m.exts)
	}
	ops, perr := m.parsePatch(body)
	if perr != nil {
		return nil, nil, perr
	}
	doc := storedResourceForm(live, m)
	before := cloneJSON(doc).(map[string]any)
	for i, op := range ops {
		if perr := m.applyOperation(doc, op); perr != nil {
			perr.Index = i
			if perr.Path == "" {
				perr.Path = op.rawPath
			}
			return nil, nil, perr
		}
	}
	out, perr := m.canonical(doc, before, live)
	if perr != nil {
		return nil, nil, perr
	}
	projected, err := m.render(out, live, nil)
	return projected, out, err
}

// ApplyReplace is a PUT (RFC 7644 §3.5.1): body replaces the resource. As the example backend
// does: id and meta are kept from current, schemas is computed from the attributes present
// (the core schema plus each extension with data), read-only attributes in body (id, User
// "groups") are ignored and the current groups kept, and a password in body is stored but
// never returned — while a password current carries is kept when body has none.
func ApplyReplace(current, body []byte) ([]byte, error) {
	projected, _, err := applyReplaceTree(current, body)
	return projected, err
}

// applyReplaceTree is ApplyReplace also returning the projection as the tree it encoded.
func applyReplaceTree(current, body []byte) ([]byte, map[string]any, error) {
	cur, err := decodeResource(current)
	if err != nil {
		return nil, nil, fmt.Errorf("apply replace: current resource: %w", err)
	}
	b, perr := decodeBody(body)
	if perr != nil {
		return nil, nil, perr
	}
	m := modelOf(cur, b)
	out, perr := m.canonical(b, nil, cur)
	if perr != nil {
		return nil, nil, perr
	}
	var keep map[string]any
	if k, pw := findKeyFold(cur, "password"); k != "" {
		if bk, _ := findKeyFold(b, "password"); bk == "" {
			keep = map[string]any{"password": pw}
		}
	}
	projected, err := m.render(out, cur, keep)
	return projected, out, err
}

// ApplyCreate is the resource a POST (RFC 7644 §3.3) would create: the body validated and
// canonicalised as the example backend does, without the read-only attributes id, meta and
// groups (the backend assigns them) and without password (never returned).
func ApplyCreate(body []byte) ([]byte, error) {
	projected, _, err := applyCreateTree(body)
	return projected, err
}

// applyCreateTree is ApplyCreate also returning the projection as the tree it encoded, so
// that the prediction's diff need not decode it again (render leaves the tree as encoded).
func applyCreateTree(body []byte) ([]byte, map[string]any, error) {
	b, perr := decodeBody(body)
	if perr != nil {
		return nil, nil, perr
	}
	m := modelOf(nil, b)
	out, perr := m.canonical(b, nil, nil)
	if perr != nil {
		return nil, nil, perr
	}
	projected, err := m.render(out, nil, nil)
	return projected, out, err
}

// ---------------------------------------------------------------------------------------
// Schemas

// attrDef is one attribute (or sub-attribute) definition.
type attrDef struct {
	name      string // canonical name
	typ       string // string, boolean, complex, reference, binary
	multi     bool
	readOnly  bool
	required  bool
	caseExact bool
	subs      []*attrDef
	unknown   bool // in no known schema: accepted as the data shapes it
}

func (a *attrDef) complex() bool { return a.typ == "complex" && len(a.subs) > 0 }

// sub finds a known sub-attribute by case-insensitive name.
func (a *attrDef) sub(name string) *attrDef {
	if a.typ != "complex" {
		return nil
	}
	for _, s := range a.subs {
		if strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

// subFor is the sub-attribute definition to match name against obj: a known one, or for an
// attribute outside the schemas one named like obj's key (or name itself).
func (a *attrDef) subFor(name string, obj map[string]any) *attrDef {
	if !a.unknown {
		return a.sub(name)
	}
	if k, _ := findKeyFold(obj, name); k != "" {
		name = k
	}
	return &attrDef{name: name, unknown: true}
}

// schemaDef is a schema: its id and attributes.
type schemaDef struct {
	id    string
	attrs []*attrDef
}

func (s *schemaDef) lookup(name string) *attrDef {
	for _, a := range s.attrs {
		if strings.EqualFold(a.name, name) {
			return a
		}
	}
	return nil
}

func simpleAttr(name, typ string) *attrDef { return &attrDef{name: name, typ: typ} }

func complexAttr(name string, multi bool, subs ...*attrDef) *attrDef {
	return &attrDef{name: name, typ: "complex", multi: multi, subs: subs}
}

func (a *attrDef) ro() *attrDef    { a.readOnly = true; return a }
func (a *attrDef) req() *attrDef   { a.required = true; return a }
func (a *attrDef) exact() *attrDef { a.caseExact = true; return a }

// valueSubs are the sub-attributes of the RFC 7643 multi-valued attributes (emails, …).
func valueSubs(valueType string) []*attrDef {
	return []*attrDef{
		simpleAttr("value", valueType), simpleAttr("display", "string"),
		simpleAttr("type", "string"), simpleAttr("primary", "boolean"),
	}
}

// The schemas of the example backend: RFC 7643 §4.1 User with the common attributes id and
// externalId, §4.3 EnterpriseUser, §4.2 Group.
var (
	scimUserSchema = &schemaDef{id: scimUserURN, attrs: []*attrDef{
		simpleAttr("id", "string").ro().exact(),
		simpleAttr("externalId", "string").exact(),
		simpleAttr("userName", "string").req(),
		complexAttr("name", false,
			simpleAttr("formatted", "string"), simpleAttr("familyName", "string"),
			simpleAttr("givenName", "string"), simpleAttr("middleName", "string"),
			simpleAttr("honorificPrefix", "string"), simpleAttr("honorificSuffix", "string")),
		simpleAttr("displayName", "string"),
		simpleAttr("nickName", "string"),
		simpleAttr("profileUrl", "reference"),
		simpleAttr("title", "string"),
		simpleAttr("userType", "string"),
		simpleAttr("preferredLanguage", "string"),
		simpleAttr("locale", "string"),
		simpleAttr("timezone", "string"),
		simpleAttr("active", "boolean"),
		simpleAttr("password", "string"),
		complexAttr("emails", true, valueSubs("string")...),
		complexAttr("phoneNumbers", true, valueSubs("string")...),
		complexAttr("ims", true, valueSubs("string")...),
		complexAttr("photos", true, valueSubs("reference")...),
		complexAttr("addresses", true,
			simpleAttr("formatted", "string"), simpleAttr("streetAddress", "string"),
			simpleAttr("locality", "string"), simpleAttr("region", "string"),
			simpleAttr("postalCode", "string"), simpleAttr("country", "string"),
			simpleAttr("type", "string"), simpleAttr("primary", "boolean")),
		complexAttr("groups", true,
			simpleAttr("value", "string").ro(), simpleAttr("$ref", "reference").ro(),
			simpleAttr("display", "string").ro(), simpleAttr("type", "string").ro()).ro(),
		complexAttr("entitlements", true, valueSubs("string")...),
		complexAttr("roles", true, valueSubs("string")...),
		complexAttr("x509Certificates", true, valueSubs("binary")...),
	}}
	scimEnterpriseSchema = &schemaDef{id: scimEnterpriseURN, attrs: []*attrDef{
		simpleAttr("employeeNumber", "string"),
		simpleAttr("costCenter", "string"),
		simpleAttr("organization", "string"),
		simpleAttr("division", "string"),
		simpleAttr("department", "string"),
		complexAttr("manager", false,
			simpleAttr("value", "string"), simpleAttr("$ref", "reference"),
			simpleAttr("displayName", "string").ro()),
	}}
	scimGroupSchema = &schemaDef{id: scimGroupURN, attrs: []*attrDef{
		simpleAttr("id", "string").ro().exact(),
		simpleAttr("externalId", "string").exact(),
		simpleAttr("displayName", "string").req(),
		complexAttr("members", true,
			simpleAttr("value", "string").exact(), simpleAttr("display", "string"),
			simpleAttr("$ref", "reference"), simpleAttr("type", "string")),
	}}
	scimKnownURNs = []string{scimUserURN, scimGroupURN, scimEnterpriseURN}
	// scimKnownURNsLower is scimKnownURNs in lower case.
	scimKnownURNsLower = func() []string {
		out := make([]string, len(scimKnownURNs))
		for i, u := range scimKnownURNs {
			out[i] = strings.ToLower(u)
		}
		return out
	}()
)

// resourceModel is the schema set of one resource type.
type resourceModel struct {
	core  *schemaDef
	exts  []*schemaDef
	group bool
}

var (
	userModel  = &resourceModel{core: scimUserSchema, exts: []*schemaDef{scimEnterpriseSchema}}
	groupModel = &resourceModel{core: scimGroupSchema, group: true}
)

// modelOf tells a Group from a User by meta.resourceType, then schemas, then the attributes
// present, looking at primary first and at secondary when primary says nothing.
func modelOf(primary, secondary map[string]any) *resourceModel {
	for _, doc := range []map[string]any{primary, secondary} {
		if doc == nil {
			continue
		}
		_, meta := findKeyFold(doc, "meta")
		if mm, ok := meta.(map[string]any); ok {
			_, rt := findKeyFold(mm, "resourceType")
			if s, ok := rt.(string); ok {
				switch {
				case strings.EqualFold(s, "Group"):
					return groupModel
				case strings.EqualFold(s, "User"):
					return userModel
				}
			}
		}
		_, schemas := findKeyFold(doc, "schemas")
		if list, ok := schemas.([]any); ok {
			for _, s := range list {
				if str, ok := s.(string); ok {
					switch {
					case strings.EqualFold(str, scimGroupURN):
						return groupModel
					case strings.EqualFold(str, scimUserURN):
						return userModel
					}
				}
			}
		}
	}
	for _, doc := range []map[string]any{primary, secondary} {
		if doc == nil {
			continue
		}
		if k, _ := findKeyFold(doc, "userName"); k != "" {
			return userModel
		}
		if k, _ := findKeyFold(doc, "members"); k != "" {
			return groupModel
		}
		if k, _ := findKeyFold(doc, "displayName"); k != "" {
			return groupModel
		}
	}
	return userModel
}

// namespace resolves the URI of an attribute path as elimity does (exact match). custom
// reports a URI that belongs to no known schema: a backend's own extension, accepted as is.
// A known URN in another case, or a path that is itself (a prefix of) a known URN, such as
// "urn:…:enterprise:2.0:User" parsed as URI "urn:…:enterprise:2.0" and attribute "User",
// is neither.
func (m *resourceModel) namespace(ap filter.AttributePath) (s *schemaDef, custom, ok bool) {
	uri := ap.URI()
	if uri == "" || uri == m.core.id {
		return m.core, false, true
	}
	for _, e := range m.exts {
		if uri == e.id {
			return e, false, true
		}
	}
	if knownPrefixed(uri) || knownPrefixed(uri+":"+ap.AttributeName) {
		return nil, false, false
	}
	for _, k := range scimKnownURNs {
		if strings.HasPrefix(strings.ToLower(k), strings.ToLower(uri+":"+ap.AttributeName)) {
			return nil, false, false
		}
	}
	return nil, true, true
}

// tolerated reports whether a core attribute name that is in no schema of the resource is
// accepted as a backend's custom attribute: not "schemas" or "meta" (no attributes), not an
// extension attribute given without its URN, and not an attribute of the other resource type
// (members on a User, userName on a Group) — all of which the backend refuses.
func (m *resourceModel) tolerated(name string) bool {
	if strings.EqualFold(name, "schemas") || strings.EqualFold(name, "meta") {
		return false
	}
	other := userModel
	if m == userModel {
		other = groupModel
	}
	if m.core.lookup(name) != nil {
		return true
	}
	if other.core.lookup(name) != nil {
		return false
	}
	for _, exts := range [2][]*schemaDef{m.exts, other.exts} {
		for _, s := range exts {
			if s.lookup(name) != nil {
				return false
			}
		}
	}
	return true
}

// knownPrefixed reports whether a top-level key is a known schema URN in another case, or an
// attribute path qualified by a known schema URN ("urn:…:User:department"): not attributes
// of a stored resource, so the backend drops them from a PUT or POST body.
func knownPrefixed(key string) bool {
	lk := strings.ToLower(key)
	for _, lu := range scimKnownURNsLower {
		if lk == lu || (strings.HasPrefix(lk, lu) && len(lk) > len(lu) && lk[len(lu)] == ':') {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------
// Parsing and validating the PatchOp message (elimity's validatePatch)

// patchOperation is one validated operation.
type patchOperation struct {
	op       string       // add, remove, replace
	rawPath  string       // as sent
	path     *filter.Path // nil for a path-less operation
	value    any          // the sanitised value (nil: none)
	pathless []pathlessEntry
}

// pathlessEntry is one key of a path-less value object, in the backend's order (sorted).
type pathlessEntry struct {
	key   string
	path  filter.Path
	value any
}

// maxPathLen bounds the attribute paths (and path-less keys) handed to filter-parser, whose
// time grows with the square of the input (a 100 kB path takes about a second). Real paths
// are far shorter; a longer one is refused like one that does not parse.
const maxPathLen = 4096

// parseSCIMPathUncached parses a SCIM attribute path with filter-parser; a panic in the parser on
// hostile input is turned into an error.
func parseSCIMPathUncached(s string) (p filter.Path, err error) {
	if len(s) > maxPathLen {
		return p, fmt.Errorf("path of %d bytes is longer than %d", len(s), maxPathLen)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("path %q: parser failure: %v", s, r)
		}
	}()
	return filter.ParsePath([]byte(s))
}

func (m *resourceModel) parsePatch(body []byte) ([]patchOperation, *PatchError) {
	var req struct {
		Schemas    []string
		Operations []json.RawMessage
	}
	if err := decodeJSONNumbers(body, &req); err != nil {
		return nil, refusal(scimTypeInvalidSyntax, "", "the body is not a PatchOp message: %v", err)
	}
	if len(req.Schemas) != 1 || req.Schemas[0] != scimPatchOpURN {
		return nil, refusal(scimTypeInvalidValue, "", "schemas must be exactly [%q]", scimPatchOpURN)
	}
	if len(req.Operations) < 1 {
		return nil, refusal(scimTypeInvalidValue, "", "Operations must hold at least one operation")
	}
	ops := make([]patchOperation, 0, len(req.Operations))
	for i, raw := range req.Operations {
		op, perr := m.parseOperation(raw)
		if perr != nil {
			perr.Index = i
			return nil, perr
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func (m *resourceModel) parseOperation(raw []byte) (patchOperation, *PatchError) {
	var o struct {
		Op    string
		Path  string
		Value any
	}
	if err := decodeJSONNumbers(raw, &o); err != nil {
		return patchOperation{}, refusal(scimTypeInvalidPath, "", "the operation is not an object with a string op and path: %v", err)
	}
	op := patchOperation{op: strings.ToLower(o.Op), rawPath: o.Path}
	// elimity drops "id" from object values (Okta sends it in a path-less rename); with no
	// such key it deletes the key "" instead, which is reproduced here.
	if vm, ok := o.Value.(map[string]any); ok {
		key, found := "", false
		for k := range vm {
			if strings.ToLower(k) == "id" {
				if found {
					return op, refusal(scimTypeInvalidPath, o.Path, "the value holds %q twice", "id")
				}
				key, found = k, true
			}
		}
		delete(vm, key)
	}
	if o.Path != "" {
		p, err := parseSCIMPath(o.Path)
		if err != nil {
			return op, refusal(scimTypeInvalidPath, o.Path, "cannot parse the path: %v", err)
		}
		if !m.pathValid(p) {
			return op, refusal(scimTypeInvalidPath, o.Path, "the path names no attribute of the %s schema", m.core.id)
		}
		op.path = &p
	}
	var err error
	switch op.op {
	case "add", "replace":
		if o.Value == nil {
			err = errors.New("an " + op.op + " operation needs a value")
		} else if op.path == nil {
			op.pathless, err = m.validatePathless(o.Value)
		} else {
			op.value, err = m.validateTyped(*op.path, o.Value, false)
		}
	case "remove":
		switch {
		case op.path == nil:
			// RFC 7644 §3.5.2.2 says noTarget; the backend (elimity) answers invalidValue.
			err = errors.New("a remove operation needs a path")
		case o.Value != nil:
			op.value, err = m.validateTyped(*op.path, o.Value, true)
		default:
			_, err = m.validateTyped(*op.path, nil, true)
		}
	default:
		err = fmt.Errorf("unknown op %q (add, remove or replace)", o.Op)
	}
	if err != nil {
		return op, refusal(scimTypeInvalidValue, o.Path, "%v", err)
	}
	return op, nil
}

// pathValid is elimity's PathValidator: the path must name an attribute (and sub-attribute)
// of the core schema or of an extension, and its filter must name sub-attributes. A name in
// no schema passes when it is tolerated as a custom attribute.
func (m *resourceModel) pathValid(p filter.Path) bool {
	if pathValidIn(m.core, p) {
		return true
	}
	for _, e := range m.exts {
		if pathValidIn(e, p) {
			return true
		}
	}
	s, custom, ok := m.namespace(p.AttributePath)
	switch {
	case !ok:
		return false
	case custom:
		return true
	case s == m.core && s.lookup(p.AttributePath.AttributeName) == nil:
		return m.tolerated(p.AttributePath.AttributeName)
	}
	return false
}

func pathValidIn(s *schemaDef, p filter.Path) bool {
	a := attrPathIn(s, p.AttributePath)
	if a == nil {
		return false
	}
	if p.ValueExpression != nil && !filterValid(&schemaDef{id: s.id, attrs: filterAttrs(a)}, p.ValueExpression) {
		return false
	}
	if sub := p.SubAttributeName(); sub != "" && (!a.complex() || a.sub(sub) == nil) {
		return false
	}
	return true
}

// attrPathIn is elimity's validateAttributePath: the attribute of ap in s, or nil.
func attrPathIn(s *schemaDef, ap filter.AttributePath) *attrDef {
	if uri := ap.URI(); uri != "" && uri != s.id {
		return nil
	}
	a := s.lookup(ap.AttributeName)
	if a == nil {
		return nil
	}
	if sub := ap.SubAttributeName(); sub != "" && (!a.complex() || a.sub(sub) == nil) {
		return nil
	}
	return a
}

// filterAttrs are the attributes a value filter on a may name (elimity's
// MultiValuedFilterAttributes): the sub-attributes, or "value" for a simple attribute.
func filterAttrs(a *attrDef) []*attrDef {
	if a.typ == "complex" {
		return a.subs
	}
	return []*attrDef{simpleAttr("value", a.typ)}
}

// filterValid is elimity's validateExpression.
func filterValid(ref *schemaDef, e filter.Expression) bool {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		return attrPathIn(ref, e.AttributePath) != nil
	case *filter.LogicalExpression:
		return filterValid(ref, e.Left) && filterValid(ref, e.Right)
	case *filter.NotExpression:
		return filterValid(ref, e.Expression)
	case *filter.ValuePath:
		a := attrPathIn(ref, e.AttributePath)
		if a == nil {
			return true // elimity ignores an invalid nested value path
		}
		return filterValid(&schemaDef{id: ref.id, attrs: a.subs}, e.ValueFilter)
	}
	return false
}

// refAttr is elimity's getRefAttribute: the definition ap names, nil with ok for an
// attribute in no known schema (accepted as is).
func (m *resourceModel) refAttr(ap filter.AttributePath) (a *attrDef, err error) {
	s, custom, ok := m.namespace(ap)
	if !ok {
		return nil, fmt.Errorf("unknown schema %q", ap.URI())
	}
	if custom {
		return nil, nil
	}
	a = s.lookup(ap.AttributeName)
	if a == nil {
		if s == m.core && m.tolerated(ap.AttributeName) {
			return nil, nil
		}
		return nil, fmt.Errorf("%q is no attribute of %s", ap.AttributeName, s.id)
	}
	if sub := ap.SubAttributeName(); sub != "" {
		if !a.complex() || a.sub(sub) == nil {
			return nil, fmt.Errorf("%q is no sub-attribute of %q", sub, a.name)
		}
		a = a.sub(sub)
	}
	return a, nil
}

// validateTyped is elimity's validateUpdate / validateRemove for an operation with a path:
// the value type-checked and sanitised for the attribute the path ends in.
func (m *resourceModel) validateTyped(p filter.Path, value any, remove bool) (any, error) {
	a, err := m.refAttr(p.AttributePath)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return value, nil // custom attribute: taken as sent
	}
	if p.ValueExpression != nil {
		attrs := a.subs
		if remove {
			attrs = filterAttrs(a)
		}
		if !filterValid(&schemaDef{attrs: attrs}, p.ValueExpression) {
			return nil, fmt.Errorf("the filter names no sub-attribute of %q", a.name)
		}
	}
	if sub := p.SubAttributeName(); sub != "" {
		if !a.complex() || a.sub(sub) == nil {
			return nil, fmt.Errorf("%q is no sub-attribute of %q", sub, a.name)
		}
		a = a.sub(sub)
	}
	if value == nil {
		return nil, nil
	}
	if !a.multi {
		v, perr := validateSingular(a, value)
		if perr != nil {
			return nil, errors.New(perr.Message)
		}
		return v, nil
	}
	list, isList := value.([]any)
	if !isList {
		list = []any{value}
	}
	out := make([]any, 0, len(list))
	for _, el := range list {
		v, perr := validateSingular(a, el)
		if perr != nil {
			return nil, errors.New(perr.Message)
		}
		out = append(out, v)
	}
	return out, nil
}

// validatePathless is elimity's validateEmptyPath: every key of the value object is a path
// (dotted, URN-qualified, even filtered) validated with its own value.
func (m *resourceModel) validatePathless(value any) ([]pathlessEntry, error) {
	obj, ok := value.(map[string]any)
	if !ok {
		return nil, errors.New("a path-less operation needs an object value")
	}
	keys := sortedObjectKeys(obj)
	out := make([]pathlessEntry, 0, len(keys))
	for _, k := range keys {
		p, err := parseSCIMPath(k)
		if err != nil {
			return nil, fmt.Errorf("invalid attribute path %q in the value", k)
		}
		if obj[k] == nil {
			return nil, fmt.Errorf("%q: an add or replace needs a value", k)
		}
		v, err := m.validateTyped(p, obj[k], false)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out = append(out, pathlessEntry{key: k, path: p, value: v})
	}
	return out, nil
}

var base64Pattern = regexp.MustCompile(`^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)?$`)

// validateSingular is elimity's CoreAttribute.ValidateSingular: one value of a, sanitised.
func validateSingular(a *attrDef, v any) (any, *PatchError) {
	if a.unknown {
		return v, nil
	}
	bad := func() (any, *PatchError) {
		return nil, refusal(scimTypeInvalidValue, a.name, "%s: %s is not a valid %s", a.name, describeValue(v), a.typ)
	}
	switch a.typ {
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad()
		}
		return v, nil
	case "binary":
		s, ok := v.(string)
		if !ok || !base64Pattern.MatchString(s) {
			return bad()
		}
		return s, nil
	case "complex":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		out := make(map[string]any, len(a.subs))
		for _, sub := range a.subs {
			var hit any
			found := false
			for k, v := range obj { // the order does not matter: a second match is an error
				if strings.EqualFold(sub.name, k) {
					if found {
						return nil, refusal(scimTypeInvalidSyntax, a.name, "%s: %q given twice", a.name, sub.name)
					}
					found, hit = true, v
				}
			}
			r, perr := validateAttrValue(sub, hit)
			if perr != nil {
				return nil, perr
			}
			if r != nil {
				out[sub.name] = r
			}
		}
		return out, nil
	default: // string, reference
		if _, ok := v.(string); !ok {
			return bad()
		}
		return v, nil
	}
}

// validateAttrValue is elimity's CoreAttribute.validate: required, read-only (dropped),
// single or multiple values.
func validateAttrValue(a *attrDef, v any) (any, *PatchError) {
	if v == nil {
		if a.required {
			return nil, refusal(scimTypeInvalidValue, a.name, "%s is required", a.name)
		}
		return nil, nil
	}
	if a.readOnly {
		return nil, nil
	}
	if !a.multi {
		return validateSingular(a, v)
	}
	switch vv := v.(type) {
	case map[string]any:
		if a.required && len(vv) == 0 {
			return nil, refusal(scimTypeInvalidValue, a.name, "%s is required", a.name)
		}
		out := map[string]any{}
		for _, k := range sortedObjectKeys(vv) {
			for _, sub := range a.subs {
				if !strings.EqualFold(sub.name, k) {
					continue
				}
				if _, perr := validateAttrValue(sub, vv[k]); perr != nil {
					return nil, perr
				}
				out[sub.name] = vv[k]
			}
		}
		return out, nil
	case []any:
		if a.required && len(vv) == 0 {
			return nil, refusal(scimTypeInvalidValue, a.name, "%s is required", a.name)
		}
		out := make([]any, 0, len(vv))
		for _, el := range vv {
			r, perr := validateSingular(a, el)
			if perr != nil {
				return nil, perr
			}
			out = append(out, r)
		}
		return out, nil
	default:
		return nil, refusal(scimTypeInvalidSyntax, a.name, "%s is multi-valued: %s is not an array", a.name, describeValue(v))
	}
}

func describeValue(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%T", v)
	}
	if len(raw) > 60 {
		return string(raw[:57]) + "..."
	}
	return string(raw)
}

// flattenExtensionPatch is the example backend's request normalisation for User PATCHes:
// an operation whose path is an extension URN, or a path-less value holding an extension URN
// key with an object, gets URN-qualified attribute keys ("urn:…:User:department").
func flattenExtensionPatch(body []byte, exts []*schemaDef) []byte {
	var req map[string]any
	if decodeJSONNumbers(body, &req) != nil {
		return body
	}
	var opsKey string
	for _, k := range sortedObjectKeys(req) {
		if strings.EqualFold(k, "Operations") {
			opsKey = k
		}
	}
	ops, _ := req[opsKey].([]any)
	changed := false
	for _, o := range ops {
		om, _ := o.(map[string]any)
		if om == nil {
			continue
		}
		var pathKey, valueKey string
		for _, k := range sortedObjectKeys(om) {
			switch strings.ToLower(k) {
			case "path":
				pathKey = k
			case "value":
				valueKey = k
			}
		}
		path, _ := om[pathKey].(string)
		value, _ := om[valueKey].(map[string]any)
		if value == nil {
			continue
		}
		for _, ext := range exts {
			if path != "" && strings.EqualFold(strings.TrimSpace(path), ext.id) {
				flat := map[string]any{}
				for k, v := range value {
					flat[ext.id+":"+k] = v
				}
				delete(om, pathKey)
				om[valueKey] = flat
				changed = true
				continue
			}
			if path == "" {
				for _, k := range sortedObjectKeys(value) {
					if vm, ok := value[k].(map[string]any); ok && strings.EqualFold(k, ext.id) {
						delete(value, k)
						for sk, sv := range vm {
							value[ext.id+":"+sk] = sv
						}
						changed = true
					}
				}
			}
		}
	}
	if !changed {
		return body
	}
	nb, err := json.Marshal(req)
	if err != nil {
		return body
	}
	return nb
}

// ---------------------------------------------------------------------------------------
// Applying operations (the backend's applyOperation)

// patchTarget is a resolved PATCH path.
type patchTarget struct {
	ext    string            // "" for the core schema, else the extension's key in the resource
	attr   *attrDef          // the attribute
	sub    *attrDef          // a sub-attribute (name.givenName, emails[…].value), or nil
	filter filter.Expression // a value filter (emails[type eq "work"]), or nil
}

// resolve is the backend's resolve, with attributes outside the schemas accepted.
func (m *resourceModel) resolve(doc map[string]any, p filter.Path) (patchTarget, *PatchError) {
	var t patchTarget
	s := m.core
	uri := p.AttributePath.URI()
	if uri != "" && !strings.EqualFold(uri, m.core.id) {
		s = nil
		for _, e := range m.exts {
			if strings.EqualFold(uri, e.id) {
				s, t.ext = e, e.id
			}
		}
		if s == nil {
			if _, custom, _ := m.namespace(p.AttributePath); !custom {
				return t, refusal(scimTypeInvalidPath, "", "unknown schema %q", uri)
			}
			t.ext = uri
			if k, _ := findKeyFold(doc, uri); k != "" {
				t.ext = k
			}
		}
	}
	name := p.AttributePath.AttributeName
	if s != nil {
		t.attr = s.lookup(name)
	}
	if t.attr == nil {
		if s != nil && (s != m.core || !m.tolerated(name)) {
			return t, refusal(scimTypeInvalidPath, "", "%q is no attribute of %s", name, s.id)
		}
		container := doc
		if t.ext != "" {
			container, _ = doc[t.ext].(map[string]any)
		}
		if k, _ := findKeyFold(container, name); k != "" {
			name = k
		}
		t.attr = &attrDef{name: name, unknown: true}
	}
	subName := p.AttributePath.SubAttributeName()
	if p.ValueExpression != nil {
		if subName != "" || (!t.attr.unknown && (!t.attr.multi || !t.attr.complex())) {
			return t, refusal(scimTypeInvalidPath, "", "a value filter needs a multi-valued complex attribute")
		}
		t.filter = p.ValueExpression
		subName = p.SubAttributeName()
	}
	if subName != "" {
		if t.attr.unknown {
			t.sub = &attrDef{name: subName, unknown: true}
		} else if t.sub = t.attr.sub(subName); t.sub == nil {
			return t, refusal(scimTypeInvalidPath, "", "%q is no sub-attribute of %q", subName, t.attr.name)
		}
	}
	return t, nil
}

func (m *resourceModel) applyOperation(doc map[string]any, op patchOperation) *PatchError {
	if op.path != nil {
		t, perr := m.resolve(doc, *op.path)
		if perr != nil {
			return perr
		}
		if t.attr.readOnly || (t.sub != nil && t.sub.readOnly) {
			return refusal(scimTypeMutability, "", "%q is read-only", op.rawPath)
		}
		return applyTarget(doc, op.op, t, op.value)
	}
	// Path-less: the keys in sorted order; read-only ones ignored, as in a PUT.
	for _, e := range op.pathless {
		t, perr := m.resolve(doc, e.path)
		if perr != nil {
			perr.Path = e.key
			return perr
		}
		if t.attr.readOnly || (t.sub != nil && t.sub.readOnly) {
			continue
		}
		if perr := applyTarget(doc, op.op, t, e.value); perr != nil {
			perr.Path = e.key
			return perr
		}
	}
	return nil
}

func applyTarget(doc map[string]any, op string, t patchTarget, value any) *PatchError {
	container := doc
	if t.ext != "" {
		c, _ := doc[t.ext].(map[string]any)
		if c == nil {
			if op == "remove" {
				return nil
			}
			c = map[string]any{}
			doc[t.ext] = c
		}
		container = c
	}
	switch {
	case t.filter != nil:
		return applyFiltered(container, op, t, value)
	case t.sub != nil:
		applySub(container, op, t, value)
	default:
		applyWhole(container, op, t.attr, value)
	}
	return nil
}

// isMultiValued tells whether a is multi-valued; for a custom attribute, by its data.
func isMultiValued(a *attrDef, current, value any) bool {
	if !a.unknown {
		return a.multi
	}
	if _, ok := current.([]any); ok {
		return true
	}
	_, ok := value.([]any)
	return current == nil && ok
}

// applyWhole handles a path naming a whole attribute.
func applyWhole(c map[string]any, op string, a *attrDef, value any) {
	key := a.name
	multi := isMultiValued(a, c[key], value)
	switch op {
	case "remove":
		if value == nil || !multi {
			delete(c, key)
			return
		}
		// Remove only the listed values (Entra: members + value array).
		items := valuesOf(value)
		c[key] = slices.DeleteFunc(slices.Clone(valuesOf(c[key])), func(el any) bool {
			return slices.ContainsFunc(items, func(it any) bool { return partialMatch(el, it, a) })
		})
	case "add":
		switch {
		case multi:
			c[key] = unionValues(valuesOf(c[key]), valuesOf(value), a)
		case a.complex() || (a.unknown && isJSONObject(value)):
			mergeComplex(c, key, value, a)
		default:
			c[key] = value
		}
	case "replace":
		switch {
		case multi:
			items := slices.Clone(valuesOf(value))
			c[key] = items
			enforcePrimary(items, items)
		case a.complex() || (a.unknown && isJSONObject(value)):
			// RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged.
			mergeComplex(c, key, value, a)
		default:
			c[key] = value
		}
	}
}

// subAttrKey is the key of sub-attribute sub in obj: the known canonical name, or for a custom
// attribute the case obj already uses.
func subAttrKey(sub *attrDef, obj map[string]any) string {
	if sub.unknown {
		if k, _ := findKeyFold(obj, sub.name); k != "" {
			return k
		}
	}
	return sub.name
}

// applySub handles attr.sub without a value filter.
func applySub(c map[string]any, op string, t patchTarget, value any) {
	key := t.attr.name
	if !isMultiValued(t.attr, c[key], nil) {
		m, _ := c[key].(map[string]any)
		if op == "remove" {
			if m != nil {
				delete(m, subAttrKey(t.sub, m))
			}
			return
		}
		if m == nil {
			m = map[string]any{}
			c[key] = m
		}
		m[subAttrKey(t.sub, m)] = value
		return
	}
	// Multi-valued without a filter: applies to every value.
	list := valuesOf(c[key])
	if op != "remove" && len(list) == 0 {
		c[key] = []any{map[string]any{t.sub.name: value}}
		return
	}
	for _, el := range list {
		if m, ok := el.(map[string]any); ok {
			if op == "remove" {
				delete(m, subAttrKey(t.sub, m))
			} else {
				m[subAttrKey(t.sub, m)] = value
			}
		}
	}
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func applyFiltered(c map[string]any, op string, t patchTarget, value any) *PatchError {
	key := t.attr.name
	list := valuesOf(c[key])
	var matched []map[string]any
	isMatch := make([]bool, len(list))
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && matchValueFilter(t.filter, m, t.attr) {
			matched = append(matched, m)
			isMatch[i] = true
		}
	}

	if t.sub != nil {
		switch {
		case op == "remove":
			for _, m := range matched {
				delete(m, subAttrKey(t.sub, m))
			}
		case len(matched) > 0:
			for _, m := range matched {
				m[subAttrKey(t.sub, m)] = value
			}
			if strings.EqualFold(t.sub.name, "primary") && value == true {
				enforcePrimary(list, mapsAsAny(matched))
			}
		case op == "add":
			// Add to a value that does not exist yet: create it from the filter's equality
			// terms, e.g. {type: work, value: …} (the backend's choice; RFC 7644 is silent).
			el, ok := equalityObject(t.filter, t.attr)
			if !ok {
				return refusal(scimTypeNoTarget, "", "no value matches the filter, and it names no value to create")
			}
			el[t.sub.name] = value
			c[key] = append(list, el)
		default: // replace without a match: RFC 7644 §3.5.2.3
			return refusal(scimTypeNoTarget, "", "no value matches the filter")
		}
		return nil
	}

	items := valuesOf(value)
	switch op {
	case "remove":
		var kept []any
		for i, el := range list {
			if !isMatch[i] {
				kept = append(kept, el)
			}
		}
		c[key] = kept
	case "replace":
		if len(matched) == 0 {
			return refusal(scimTypeNoTarget, "", "no value matches the filter")
		}
		var out []any
		inserted := false
		for i, el := range list {
			if !isMatch[i] {
				out = append(out, el)
				continue
			}
			if !inserted {
				out = append(out, items...)
				inserted = true
			}
		}
		enforcePrimary(out, items)
		c[key] = out
	case "add":
		if len(matched) == 0 {
			c[key] = unionValues(list, items, t.attr)
			return nil
		}
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				for _, m := range matched {
					for _, k := range sortedObjectKeys(im) {
						m[k] = im[k]
					}
				}
			}
		}
	}
	return nil
}

func mapsAsAny(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// equalityObject builds {attr: value} from `a eq v [and b eq w]` filters.
func equalityObject(e filter.Expression, a *attrDef) (map[string]any, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ || e.AttributePath.SubAttribute != nil || e.CompareValue == nil {
			return nil, false
		}
		sa := a.subFor(e.AttributePath.AttributeName, nil)
		if sa == nil {
			return nil, false
		}
		return map[string]any{sa.name: e.CompareValue}, true
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return nil, false
		}
		l, ok1 := equalityObject(e.Left, a)
		r, ok2 := equalityObject(e.Right, a)
		if !ok1 || !ok2 {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// mergeComplex merges the sub-attributes of value into the complex attribute c[key].
func mergeComplex(c map[string]any, key string, value any, a *attrDef) {
	vm, ok := value.(map[string]any)
	if !ok {
		c[key] = value
		return
	}
	m, _ := c[key].(map[string]any)
	if m == nil {
		m = map[string]any{}
		c[key] = m
	}
	for _, k := range sortedObjectKeys(vm) {
		mk := k
		if a.unknown {
			if ek, _ := findKeyFold(m, k); ek != "" {
				mk = ek
			}
		}
		m[mk] = vm[k]
	}
}

// unionValues adds items to list unless already present. Group members are identified by
// "value" (a re-added member is merged, not duplicated); other multi-valued attributes by
// equality of all sub-attributes.
func unionValues(list, items []any, a *attrDef) []any {
	list = slices.Clone(list)
	var added []any
	for _, it := range items {
		idx := -1
		for i, el := range list {
			if sameValue(el, it, a) {
				idx = i
				break
			}
		}
		if idx < 0 {
			list = append(list, it)
			added = append(added, it)
			continue
		}
		if em, ok := list[idx].(map[string]any); ok {
			if im, ok := it.(map[string]any); ok {
				for _, k := range sortedObjectKeys(im) {
					em[k] = im[k]
				}
			}
		}
	}
	enforcePrimary(list, added)
	return list
}

func sameValue(el, it any, a *attrDef) bool {
	if a.name == "members" {
		em, _ := el.(map[string]any)
		im, _ := it.(map[string]any)
		return em != nil && im != nil && em["value"] != nil && looseEqual(em["value"], im["value"])
	}
	return partialMatch(el, it, a) && partialMatch(it, el, a)
}

// partialMatch reports whether every sub-attribute given in it equals the corresponding
// sub-attribute of el (case per the attribute's caseExact).
func partialMatch(el, it any, a *attrDef) bool {
	im, ok1 := it.(map[string]any)
	em, ok2 := el.(map[string]any)
	if !ok1 || !ok2 {
		return scalarEqual(el, it, a)
	}
	if len(im) == 0 {
		return false
	}
	for k, v := range im {
		sa := a.subFor(k, em)
		if sa == nil {
			return false
		}
		if !scalarEqual(em[sa.name], v, sa) {
			return false
		}
	}
	return true
}

func scalarEqual(x, y any, a *attrDef) bool {
	xs, ok1 := x.(string)
	ys, ok2 := y.(string)
	if ok1 && ok2 {
		if a.caseExact {
			return xs == ys
		}
		return strings.EqualFold(xs, ys)
	}
	return looseEqual(x, y)
}

// looseEqual is Go's == on decoded JSON scalars; objects and arrays (which the backend would
// compare with ==, and fail on) are compared deeply instead of panicking.
func looseEqual(x, y any) bool {
	switch x.(type) {
	case map[string]any, []any:
		return reflect.DeepEqual(x, y)
	}
	switch y.(type) {
	case map[string]any, []any:
		return false
	}
	return x == y
}

// enforcePrimary keeps at most one "primary": true, preferring the values in preferred (the
// ones just written).
func enforcePrimary(list, preferred []any) {
	isPrimary := func(v any) bool {
		m, _ := v.(map[string]any)
		return m != nil && m["primary"] == true
	}
	var winner any
	for _, p := range preferred {
		if isPrimary(p) {
			winner = p
		}
	}
	if winner == nil {
		return
	}
	for _, el := range list {
		if m, ok := el.(map[string]any); ok && isPrimary(el) && !sameMapInstance(m, winner) {
			m["primary"] = false
		}
	}
}

func sameMapInstance(m map[string]any, v any) bool {
	o, ok := v.(map[string]any)
	return ok && reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(o).UnsafePointer()
}

// matchValueFilter evaluates a value filter against one value of attribute a (the backend's
// evalExpr with the sub-attributes as schema).
func matchValueFilter(e filter.Expression, el map[string]any, a *attrDef) bool {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		l := matchValueFilter(e.Left, el, a)
		if e.Operator == filter.AND {
			return l && matchValueFilter(e.Right, el, a)
		}
		return l || matchValueFilter(e.Right, el, a)
	case *filter.NotExpression:
		return !matchValueFilter(e.Expression, el, a)
	case *filter.AttributeExpression:
		if e.AttributePath.URI() != "" || e.AttributePath.SubAttribute != nil {
			return false
		}
		sa := a.subFor(e.AttributePath.AttributeName, el)
		if sa == nil {
			return false
		}
		var values []any
		if v := el[sa.name]; v != nil {
			values = append(values, v)
		}
		switch e.Operator {
		case filter.PR:
			for _, v := range values {
				if !isEmptyFilterValue(v) {
					return true
				}
			}
			return false
		case filter.NE:
			if e.CompareValue == nil {
				return len(values) > 0
			}
			for _, v := range values {
				if compareFilterValue(v, filter.EQ, e.CompareValue, sa) {
					return false
				}
			}
			return true
		default:
			if e.CompareValue == nil && e.Operator == filter.EQ {
				return len(values) == 0
			}
			for _, v := range values {
				if compareFilterValue(v, e.Operator, e.CompareValue, sa) {
					return true
				}
			}
			return false
		}
	}
	return false // value filters hold no nested value paths
}

func isEmptyFilterValue(v any) bool {
	switch vv := v.(type) {
	case nil:
		return true
	case string:
		return vv == ""
	case []any:
		return len(vv) == 0
	case map[string]any:
		return len(vv) == 0
	}
	return false
}

// compareFilterValue applies a SCIM comparison operator to a stored value (the backend's compare;
// the schemas here have no dateTime sub-attributes).
func compareFilterValue(v any, op filter.CompareOperator, ref any, a *attrDef) bool {
	switch vv := v.(type) {
	case string:
		rs, ok := ref.(string)
		if !ok {
			return false
		}
		if !a.caseExact {
			vv, rs = strings.ToLower(vv), strings.ToLower(rs)
		}
		switch op {
		case filter.CO:
			return strings.Contains(vv, rs)
		case filter.SW:
			return strings.HasPrefix(vv, rs)
		case filter.EW:
			return strings.HasSuffix(vv, rs)
		}
		return rules.OrderedMatch(strings.Compare(vv, rs), op)
	case bool:
		rb, ok := ref.(bool)
		if !ok {
			return false
		}
		switch op {
		case filter.EQ:
			return vv == rb
		case filter.NE:
			return vv != rb
		}
		return false
	default:
		x, ok1 := numberOf(v)
		y, ok2 := numberOf(ref)
		if !ok1 || !ok2 {
			return false
		}
		switch {
		case x < y:
			return rules.OrderedMatch(-1, op)
		case x > y:
			return rules.OrderedMatch(1, op)
		}
		return rules.OrderedMatch(0, op)
	}
}

func numberOf(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// ---------------------------------------------------------------------------------------
// The canonical (stored) form and the rendered resource

// storedResourceForm is the resource as the backend stores it: without id, meta, schemas, and what
// the backend computes on output — a User's groups, the members' $ref, the manager's $ref and
// displayName. render puts them back.
func storedResourceForm(live map[string]any, m *resourceModel) map[string]any {
	doc := cloneJSON(live).(map[string]any)
	for _, k := range sortedObjectKeys(doc) {
		switch strings.ToLower(k) {
		case "id", "meta", "schemas":
			delete(doc, k)
		case "groups":
			if !m.group {
				delete(doc, k)
			}
		case "members":
			if m.group {
				for _, el := range valuesOf(doc[k]) {
					if mm, ok := el.(map[string]any); ok {
						delete(mm, "$ref")
					}
				}
			}
		}
	}
	if ext, ok := doc[scimEnterpriseURN].(map[string]any); ok && !m.group {
		if mgr, ok := ext["manager"].(map[string]any); ok {
			delete(mgr, "$ref")
			delete(mgr, "displayName")
		}
	}
	return doc
}

// canonical is the backend's canonical form of doc (elimity's schema validation, pruning,
// member normalisation) plus its constraints. With before (a PATCH), attributes equal to
// their value in before are kept as the backend returned them; without (a PUT or POST body),
// everything is validated, and extensions are taken only under their exact URN as elimity
// does. current is the live resource (for the group's own id and its members' details).
func (m *resourceModel) canonical(doc, before, current map[string]any) (map[string]any, *PatchError) {
	out := map[string]any{}
	handled := map[string]bool{}
	if perr := validateSchemaObject(m.core, doc, before, out, handled); perr != nil {
		return nil, perr
	}
	// With before (a PATCH), the last of several keys that fold to an extension's id in
	// sorted order is taken; otherwise only the exact id is, and the order does not matter.
	keys := objectKeys(doc)
	if before != nil {
		sort.Strings(keys)
	}
	for _, ext := range m.exts {
		var extKey string
		for _, k := range keys {
			if strings.EqualFold(k, ext.id) {
				handled[k] = true
				if before != nil || k == ext.id {
					extKey = k
				}
			}
		}
		if extKey == "" {
			continue
		}
		extDoc, isObj := doc[extKey].(map[string]any)
		if before != nil && unchangedAttr(doc, before, extKey) {
			if isObj {
				out[ext.id] = doc[extKey]
			}
			continue
		}
		if !isObj {
			if before == nil && doc[extKey] != nil {
				return nil, refusal(scimTypeInvalidSyntax, ext.id, "the extension %s must be an object", ext.id)
			}
			continue
		}
		extOut := map[string]any{}
		if perr := validateSchemaObject(ext, extDoc, nil, extOut, map[string]bool{}); perr != nil {
			return nil, perr
		}
		out[ext.id] = extOut
	}
	// What is in no known schema: a backend's custom attributes and extensions are kept;
	// what the backend is known to drop is dropped.
	for _, k := range keys {
		switch {
		case handled[k]:
		case before != nil && unchangedAttr(doc, before, k):
			out[k] = doc[k] // as the backend returned it
		case !m.tolerated(k) || knownPrefixed(k) || strings.EqualFold(k, "password"):
		default:
			out[k] = doc[k]
		}
	}
	pruneEmptyValues(out)
	if m.group && (before == nil || !unchangedAttr(doc, before, "members")) {
		if perr := normalizeGroupMembers(out, current); perr != nil {
			return nil, perr
		}
	}
	return out, checkResourceConstraints(m, out, current)
}

// unchangedAttr reports whether doc[key] equals before[key] (both present).
func unchangedAttr(doc, before map[string]any, key string) bool {
	b, ok := before[key]
	if !ok {
		return false
	}
	d, ok := doc[key]
	return ok && reflect.DeepEqual(d, b)
}

// validateSchemaObject is elimity's Schema.validate into out: every attribute of s found in obj
// case-insensitively (twice is invalidSyntax), checked, sanitised and stored under its
// canonical name; read-only ones dropped. Attributes unchanged from before are kept as is.
func validateSchemaObject(s *schemaDef, obj, before, out map[string]any, handled map[string]bool) *PatchError {
	keys := schemaKeysOf(obj) // in map order: a name given twice is reported in sorted order
	for _, a := range s.attrs {
		var key string
		nameASCII := isASCII(a.name)
		for _, k := range keys {
			if k.matches(a.name, nameASCII) {
				if key != "" {
					return givenTwice(a.name, obj)
				}
				key = k.key
			}
		}
		if key != "" {
			handled[key] = true
		}
		if key != "" && before != nil && unchangedAttr(obj, before, key) {
			if !a.readOnly {
				out[key] = obj[key]
			}
			continue
		}
		v := obj[key]
		if vm, ok := v.(map[string]any); ok && a.multi {
			v = []any{vm} // a single value for a multi-valued attribute
		}
		r, perr := validateAttrValue(a, v)
		if perr != nil {
			return perr
		}
		if r != nil {
			out[a.name] = r
		}
	}
	return nil
}

// schemaKey is an object key and whether it is ASCII, for case-insensitive lookups by name.
type schemaKey struct {
	key   string
	ascii bool
}

// schemaKeysOf lists the keys of obj, in map order.
func schemaKeysOf(obj map[string]any) []schemaKey {
	keys := make([]schemaKey, 0, len(obj))
	for k := range obj {
		keys = append(keys, schemaKey{k, isASCII(k)})
	}
	return keys
}

// matches is strings.EqualFold(name, k.key), without the call where both are ASCII and of
// different lengths (ASCII case folding keeps the length; a non-ASCII key such as the Kelvin
// sign may fold to a shorter ASCII name). A schema object is looked up once per attribute of
// its schema, tens of names against tens of keys.
func (k schemaKey) matches(name string, nameASCII bool) bool {
	if nameASCII && k.ascii && len(name) != len(k.key) {
		return false
	}
	return strings.EqualFold(name, k.key)
}

// isASCII reports whether s is ASCII only.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// givenTwice is the refusal of an attribute name that several keys of obj match
// case-insensitively, naming the first two in sorted order (the message does not depend on
// map order).
func givenTwice(name string, obj map[string]any) *PatchError {
	var hits []string
	for _, k := range sortedObjectKeys(obj) {
		if strings.EqualFold(name, k) {
			hits = append(hits, k)
		}
	}
	return refusal(scimTypeInvalidSyntax, name, "%q given twice (%q and %q)", name, hits[0], hits[1])
}

// pruneEmptyValues removes nil values and empty objects and arrays, recursively (the backend's prune).
func pruneEmptyValues(m map[string]any) {
	for k, v := range m { // deleting or replacing the current key is safe in a range
		switch vv := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneEmptyValues(vv)
			if len(vv) == 0 {
				delete(m, k)
			}
		case []any:
			out := make([]any, 0, len(vv))
			for _, e := range vv {
				if em, ok := e.(map[string]any); ok {
					pruneEmptyValues(em)
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

// normalizeGroupMembers is the backend's member normalisation: every member needs a value,
// duplicates go (first wins), and a member is {value, type, display?}. The backend checks
// that the id exists and takes the type from it; the engine cannot, so the type is the one
// given, else the one the member had, else "User" — and a given type that is neither User
// nor Group is refused, as the backend refuses a type that does not match.
func normalizeGroupMembers(out, current map[string]any) *PatchError {
	members, _ := out["members"].([]any)
	if len(members) == 0 {
		return nil
	}
	known := liveMembersByValue(current)
	seen := map[string]bool{}
	res := make([]any, 0, len(members))
	for _, mv := range members {
		mm, _ := mv.(map[string]any)
		id, _ := mm["value"].(string)
		if id == "" {
			return refusal(scimTypeInvalidValue, "members", "members: every member needs a \"value\" (resource id)")
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		typ := "User"
		if lm := known[id]; lm != nil {
			if t, ok := lm["type"].(string); ok && (t == "User" || t == "Group") {
				typ = t
			}
		}
		if t, ok := mm["type"].(string); ok {
			switch {
			case strings.EqualFold(t, "User"):
				typ = "User"
			case strings.EqualFold(t, "Group"):
				typ = "Group"
			default:
				return refusal(scimTypeInvalidValue, "members", "members: %q is a %q, not a User or Group", id, t)
			}
		}
		nm := map[string]any{"value": id, "type": typ}
		if d, ok := mm["display"].(string); ok && d != "" {
			nm["display"] = d
		}
		res = append(res, nm)
	}
	out["members"] = res
	return nil
}

// liveMembersByValue indexes the members of a live group by value.
func liveMembersByValue(current map[string]any) map[string]map[string]any {
	idx := map[string]map[string]any{}
	_, mv := findKeyFold(current, "members")
	for _, el := range valuesOf(mv) {
		if mm, ok := el.(map[string]any); ok {
			if id, ok := mm["value"].(string); ok {
				if _, dup := idx[id]; !dup {
					idx[id] = mm
				}
			}
		}
	}
	return idx
}

// checkResourceConstraints: userName (displayName of a group) must not be empty, and a group cannot
// be its own member. Uniqueness against other resources is the caller's to check.
func checkResourceConstraints(m *resourceModel, out, current map[string]any) *PatchError {
	key := "userName"
	if m.group {
		key = "displayName"
	}
	v, _ := out[key].(string)
	if strings.TrimSpace(v) == "" {
		return refusal(scimTypeInvalidValue, key, "%s must not be empty", key)
	}
	if m.group {
		_, idv := findKeyFold(current, "id")
		self, _ := idv.(string)
		members, _ := out["members"].([]any)
		for _, mv := range members {
			if mm, _ := mv.(map[string]any); self != "" && mm["value"] == self {
				return refusal(scimTypeInvalidValue, "members", "members: a group cannot be a member of itself")
			}
		}
	}
	return nil
}

// projectionSize is the buffer render starts with: a provisioned user is ~1–3 KB, so a
// buffer grown from nothing was copied ~9 times on the way.
const projectionSize = 2048

// render turns the canonical attributes into the resource the backend would return: id,
// meta and a user's groups from current, schemas computed, member and manager references
// filled in where the backend computes them, and no password (extra is merged in last).
func (m *resourceModel) render(out, current, extra map[string]any) ([]byte, error) {
	res := out
	dropPasswords(res)
	for _, name := range []string{"id", "meta"} {
		if k, v := findKeyFold(current, name); k != "" {
			res[name] = v
		}
	}
	if !m.group {
		if k, v := findKeyFold(current, "groups"); k != "" && v != nil {
			res["groups"] = v
		}
	}
	schemas := []any{m.core.id}
	for _, ext := range m.exts {
		if _, ok := res[ext.id]; ok {
			schemas = append(schemas, ext.id)
		}
	}
	first := len(schemas)
	for k, v := range res {
		if _, isObj := v.(map[string]any); isObj && len(k) >= 4 && strings.EqualFold(k[:4], "urn:") && !knownPrefixed(k) {
			schemas = append(schemas, k)
		}
	}
	slices.SortFunc(schemas[first:], func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	res["schemas"] = schemas
	base := liveBaseURL(current, m)
	if m.group {
		decorateMembers(res, current, base)
	} else {
		decorateManager(res, current, base)
	}
	for k, v := range extra {
		res[k] = v
	}
	return encodeJSONCompact(res, projectionSize)
}

// dropPasswords removes every attribute named password (any case, at any depth: the core
// attribute, one in an extension, a custom sub-attribute): write-only, never returned, and a
// secret that must not reach a stored projection or diff.
func dropPasswords(v any) {
	switch vv := v.(type) {
	case map[string]any:
		for k, el := range vv { // deleting during range is allowed; the order does not matter
			if strings.EqualFold(k, "password") {
				delete(vv, k)
				continue
			}
			dropPasswords(el)
		}
	case []any:
		for _, el := range vv {
			dropPasswords(el)
		}
	}
}

// liveBaseURL is the SCIM base URL of the backend as the live resource shows it: its
// meta.location without "/Users/<id>" (or "/Groups/<id>"), else a member's or manager's $ref.
func liveBaseURL(current map[string]any, m *resourceModel) string {
	if current == nil {
		return ""
	}
	endpoint := "/Users/"
	if m.group {
		endpoint = "/Groups/"
	}
	_, idv := findKeyFold(current, "id")
	id, _ := idv.(string)
	_, meta := findKeyFold(current, "meta")
	if mm, ok := meta.(map[string]any); ok && id != "" {
		if loc, ok := mm["location"].(string); ok {
			if b, ok := strings.CutSuffix(loc, endpoint+url.PathEscape(id)); ok {
				return b
			}
		}
	}
	var refs []map[string]any
	_, mv := findKeyFold(current, "members")
	for _, el := range valuesOf(mv) {
		if mm, ok := el.(map[string]any); ok {
			refs = append(refs, mm)
		}
	}
	if ext, ok := current[scimEnterpriseURN].(map[string]any); ok {
		if mgr, ok := ext["manager"].(map[string]any); ok {
			refs = append(refs, mgr)
		}
	}
	for _, r := range refs {
		ref, _ := r["$ref"].(string)
		v, _ := r["value"].(string)
		for _, ep := range []string{"/Users/", "/Groups/"} {
			if b, ok := strings.CutSuffix(ref, ep+url.PathEscape(v)); ok && v != "" {
				return b
			}
		}
	}
	return ""
}

// decorateMembers fills in what the backend computes for members on output: $ref, and the
// type the live resource showed for a member it already had. A display the write did not
// give is left out: the backend computes it from the member's own resource (the live
// resource's display may have been one an IdP sent, which a replace discards).
func decorateMembers(res, current map[string]any, base string) {
	members, _ := res["members"].([]any)
	known := liveMembersByValue(current)
	for _, mv := range members {
		mm, ok := mv.(map[string]any)
		if !ok {
			continue
		}
		id, _ := mm["value"].(string)
		if lm := known[id]; lm != nil {
			for _, k := range []string{"$ref", "type"} {
				if _, has := mm[k]; !has && lm[k] != nil {
					mm[k] = lm[k]
				}
			}
		}
		if _, has := mm["$ref"]; !has && base != "" && id != "" {
			endpoint := "/Users/"
			if mm["type"] == "Group" {
				endpoint = "/Groups/"
			}
			mm["$ref"] = base + endpoint + url.PathEscape(id)
		}
	}
}

// decorateManager fills in the manager's $ref (computed by the backend from its value) and,
// for an unchanged manager, the displayName the live resource showed.
func decorateManager(res, current map[string]any, base string) {
	ext, _ := res[scimEnterpriseURN].(map[string]any)
	mgr, _ := ext["manager"].(map[string]any)
	id, _ := mgr["value"].(string)
	if id == "" {
		return
	}
	curExt, _ := current[scimEnterpriseURN].(map[string]any)
	curMgr, _ := curExt["manager"].(map[string]any)
	if cid, _ := curMgr["value"].(string); cid == id {
		for _, k := range []string{"$ref", "displayName"} {
			if _, has := mgr[k]; !has && curMgr[k] != nil {
				mgr[k] = curMgr[k]
			}
		}
		return
	}
	if base != "" {
		mgr["$ref"] = base + "/Users/" + url.PathEscape(id)
	}
}

// ---------------------------------------------------------------------------------------
// JSON helpers

// decodeResource decodes a resource that must be a JSON object.
func decodeResource(raw []byte) (map[string]any, error) {
	var v any
	if err := decodeJSONNumbers(raw, &v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a JSON object but %s", describeValue(v))
	}
	return m, nil
}

// decodeBody decodes a PUT or POST body as elimity does: not a JSON object is invalidSyntax,
// JSON null is an object without attributes.
func decodeBody(raw []byte) (map[string]any, *PatchError) {
	var v any
	if err := decodeJSONNumbers(raw, &v); err != nil {
		return nil, refusal(scimTypeInvalidSyntax, "", "the body is not JSON: %v", err)
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, refusal(scimTypeInvalidSyntax, "", "the body is not a JSON object")
	}
	return m, nil
}

// findKeyFold returns the key of obj matching name case-insensitively (the first in sorted
// order when several do) and its value.
func findKeyFold(obj map[string]any, name string) (string, any) {
	if v, ok := obj[name]; ok {
		return name, v
	}
	found := ""
	for k := range obj {
		if strings.EqualFold(k, name) && (found == "" || k < found) {
			found = k
		}
	}
	if found == "" {
		return "", nil
	}
	return found, obj[found]
}

func sortedObjectKeys(m map[string]any) []string {
	keys := objectKeys(m)
	sort.Strings(keys)
	return keys
}

// objectKeys lists the keys of m in map order.
func objectKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// valuesOf is a value as a list: an array itself, nothing for nil, else the one value.
func valuesOf(v any) []any {
	switch vv := v.(type) {
	case []any:
		return vv
	case nil:
		return nil
	default:
		return []any{vv}
	}
}

func isJSONObject(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

// cloneJSON deep-copies a decoded JSON value.
func cloneJSON(v any) any {
	switch vv := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(vv))
		for k, e := range vv {
			out[k] = cloneJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(vv))
		for i, e := range vv {
			out[i] = cloneJSON(e)
		}
		return out
	default:
		return v
	}
}
