package shadow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
	"github.com/tidwall/gjson"
)

// DefaultPredictTimeout bounds the live-state reads of one preview prediction.
const DefaultPredictTimeout = 10 * time.Second

// Finding codes of predicted errors (severity "error") and of prediction trouble.
const (
	CodeNotFound           = "not_found"           // a write to an id the backend does not have
	CodeConflict           = "conflict"            // a create whose key exists
	CodeUnknownMember      = "unknown_member"      // a member id the backend does not have
	CodeInvalidPatch       = "invalid_patch"       // bad op, path or value shape
	CodeInvalidValue       = "invalid_value"       // a value of the wrong type for the backend's schema
	CodeInvalidJSON        = "invalid_json"        // a body that is not JSON
	CodeBackendUnavailable = "backend_unavailable" // live state could not be read (warning)
)

// prediction is what a preview write would do in the backend.
type prediction struct {
	live, projected []byte
	changes         []Change
	findings        []rules.Finding
	subjects        []Subject
	deprovision     bool
}

// predictor reads live state for one request through next.
type predictor struct {
	e    *Engine
	r    *http.Request
	next http.Handler
	ctx  context.Context
	d    *Decision
}

// get reads a backend path through next and accounts the time to the decision.
func (p *predictor) get(path, rawQuery string) (int, []byte, error) {
	began := time.Now()
	status, body, err := fetch(p.ctx, p.r, p.next, path, rawQuery)
	p.d.LiveStateDuration += time.Since(began)
	return status, body, err
}

// predict computes the live state, projected state, diff and predicted errors of a
// preview write. It never fails: what it cannot know it reports as a finding.
func (e *Engine) predict(ctx context.Context, r *http.Request, next http.Handler, d *Decision, effective []byte, key string) prediction {
	t := d.Target
	var pr prediction
	if t.Op == OpBulk || t.ResourceType == "" {
		return pr
	}
	if len(effective) > 0 && !gjson.ValidBytes(effective) {
		pr.findings = append(pr.findings, errorFinding(CodeInvalidJSON, "", "the body is not valid JSON: the backend would answer 400"))
		return pr
	}
	p := &predictor{e: e, r: r, next: next, ctx: ctx, d: d}
	kind := subjectKind(t.ResourceType)
	target := Subject{Kind: kind, ID: t.ID, Key: key}

	// The live state: the previous pending record's projection, else the backend's.
	var live []byte
	haveLive := false
	if t.Op != OpCreate {
		if prev, err := e.Store.PendingProjection(ctx, d.Connection, t.ResourceType, t.ID); err == nil && prev != nil {
			live, haveLive = prev, true
		} else {
			status, body, err := p.get(r.URL.Path, "")
			switch {
			case err == nil && status == http.StatusOK:
				live, haveLive = body, true
			case err == nil && status == http.StatusNotFound:
				pr.findings = append(pr.findings, errorFinding(CodeNotFound, "", fmt.Sprintf("the backend has no %s with id %q: it would answer 404", t.ResourceType, t.ID)))
				if t.Op == OpDelete {
					pr.deprovision = kind == "user"
				}
				pr.subjects = []Subject{target}
				return pr
			default:
				pr.findings = append(pr.findings, unavailable(status, err))
			}
		}
		if haveLive && target.Key == "" {
			target.Key = liveKey(t.ResourceType, live)
		}
	}
	pr.live = live

	var projected []byte
	var tree map[string]any // the projection as the tree it was encoded from: no decode for the diff
	var err error
	switch t.Op {
	case OpCreate:
		pr.findings = append(pr.findings, p.conflict(t, key)...)
		projected, tree, err = applyCreateTree(effective)
	case OpReplace:
		if haveLive {
			projected, tree, err = applyReplaceTree(live, effective)
		}
	case OpPatch:
		if haveLive {
			projected, tree, err = applyPatchTree(live, effective)
		}
	case OpDelete:
		pr.deprovision = kind == "user" || kind == "group"
		if haveLive {
			pr.changes = Diff(live, nil)
		}
		pr.subjects = []Subject{target}
		return pr
	}
	if err != nil {
		pr.findings = append(pr.findings, patchFinding(err))
		pr.subjects = []Subject{target}
		return pr
	}
	if projected == nil {
		pr.subjects = []Subject{target}
		return pr
	}
	pr.projected = projected
	pr.changes = diffTrees(decodeObjectLoose(live), tree) // live nil (a create): empty
	pr.findings = append(pr.findings, e.checkTypes(p, d.Connection, t, projected)...)
	pr.subjects = append(pr.subjects, target)
	for i := range pr.changes {
		c := &pr.changes[i]
		switch {
		case strings.EqualFold(c.Path, "active") && string(c.New) == "false":
			pr.deprovision = true
		case strings.EqualFold(c.Path, "members"):
			p.member(c, &pr)
		}
	}
	return pr
}

// member resolves the display name of a member change, checks that an added member exists,
// and adds the member as a subject.
func (p *predictor) member(c *Change, pr *prediction) {
	raw := c.New
	change := "added"
	if c.Op == "remove" {
		raw, change = c.Old, "removed"
		pr.deprovision = true
	}
	id := gjson.GetBytes(raw, "value").String()
	if id == "" {
		return
	}
	typ := strings.ToLower(gjson.GetBytes(raw, "type").String())
	kind, endpoint := "user", "Users"
	if typ == "group" {
		kind, endpoint = "group", "Groups"
	}
	display := gjson.GetBytes(raw, "display").String()
	if display == "" || change == "added" {
		name, found, known := p.e.memberName(p, endpoint, id)
		if known && !found && change == "added" {
			pr.findings = append(pr.findings, errorFinding(CodeUnknownMember, `members[value eq "`+id+`"]`,
				fmt.Sprintf("the backend has no %s with id %q: adding it as a member would fail", strings.TrimSuffix(endpoint, "s"), id)))
		}
		if display == "" {
			display = name
		}
	}
	c.Display = display
	pr.subjects = append(pr.subjects, Subject{Kind: kind, ID: id, Key: display, Change: change})
}

// memberName looks up a member's userName (or displayName) through next, cached briefly.
// found reports whether the backend has it; known whether the backend answered at all.
func (e *Engine) memberName(p *predictor, endpoint, id string) (name string, found, known bool) {
	cacheKey := p.d.Connection + "\x00" + endpoint + "\x00" + id
	if v, ok := e.names.Load(cacheKey); ok {
		n := v.(nameEntry)
		if time.Since(n.at) < time.Minute {
			return n.name, n.found, true
		}
	}
	status, body, err := p.get(p.d.Target.Base+"/"+endpoint+"/"+url.PathEscape(id), "")
	if err != nil || (status != http.StatusOK && status != http.StatusNotFound) {
		return "", false, false
	}
	n := nameEntry{at: time.Now(), found: status == http.StatusOK}
	if n.found {
		n.name = gjson.GetBytes(body, "userName").String()
		if n.name == "" {
			n.name = gjson.GetBytes(body, "displayName").String()
		}
	}
	e.names.Store(cacheKey, n)
	return n.name, n.found, true
}

type nameEntry struct {
	at    time.Time
	name  string
	found bool
}

// filterStringEscaper escapes a value for a quoted string of a SCIM filter (built once:
// a Replacer's tables cost ~3 KB each time).
var filterStringEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// conflict looks the key of a create up in the backend: an existing resource means 409.
func (p *predictor) conflict(t Target, key string) []rules.Finding {
	if key == "" {
		return nil
	}
	attr := "userName"
	if t.ResourceType != "User" {
		attr = "displayName"
	}
	filter := attr + ` eq "` + filterStringEscaper.Replace(key) + `"`
	status, body, err := p.get(p.r.URL.Path, "filter="+url.QueryEscape(filter)+"&count=1")
	if err != nil || status != http.StatusOK {
		return []rules.Finding{unavailable(status, err)}
	}
	if gjson.GetBytes(body, "totalResults").Int() > 0 {
		return []rules.Finding{errorFinding(CodeConflict, attr,
			fmt.Sprintf("the backend already has a %s with %s %q: it would answer 409", t.ResourceType, attr, key))}
	}
	return nil
}

// patchFinding turns an Apply error into a finding.
func patchFinding(err error) rules.Finding {
	var pe *PatchError
	if errors.As(err, &pe) {
		code := CodeInvalidPatch
		if pe.ScimType == "invalidValue" {
			code = CodeInvalidValue
		}
		return errorFinding(code, pe.Path, "the backend would answer 400 ("+pe.ScimType+"): "+pe.Message)
	}
	return errorFinding(CodeInvalidPatch, "", "the backend would refuse the request: "+err.Error())
}

func unavailable(status int, err error) rules.Finding {
	msg := "live state could not be read"
	if err != nil {
		msg += ": " + err.Error()
	} else {
		msg += fmt.Sprintf(": the backend answered %d", status)
	}
	return rules.Finding{Severity: rules.SeverityWarning, Code: CodeBackendUnavailable, Message: msg + "; the prediction is incomplete"}
}

func errorFinding(code, path, msg string) rules.Finding {
	return rules.Finding{Severity: rules.SeverityError, Code: code, Path: path, Message: msg}
}

func subjectKind(resourceType string) string {
	if strings.EqualFold(resourceType, "Group") {
		return "group"
	}
	return "user"
}

// liveKey is the key of a resource as the backend has it.
func liveKey(resourceType string, live []byte) string {
	if strings.EqualFold(resourceType, "User") {
		return gjson.GetBytes(live, "userName").String()
	}
	return gjson.GetBytes(live, "displayName").String()
}

// schemaTypes caches, per connection, the attribute types the backend's /Schemas declares.
type schemaTypes struct {
	at    time.Time
	types map[string]string // lower-case path ("active", "emails.primary", "urn:…:user:manager") → type
}

// checkTypes compares the projected resource's values with the types the backend's /Schemas
// declares, read once per connection (every 10 minutes at most), and reports mismatches the
// backend would refuse — such as Entra's "False" for a boolean.
func (e *Engine) checkTypes(p *predictor, connection string, t Target, projected []byte) []rules.Finding {
	types := e.schemaFor(p, connection, t)
	if len(types) == 0 {
		return nil
	}
	var out []rules.Finding
	var walk func(prefix string, v gjson.Result)
	walk = func(prefix string, v gjson.Result) {
		v.ForEach(func(k, val gjson.Result) bool {
			name := strings.ToLower(k.String())
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			if strings.HasPrefix(name, "urn:") && val.IsObject() {
				walk(name+":", val) // extension attributes are keyed "urn:…:user:attr"
				return true
			}
			if strings.HasSuffix(prefix, ":") {
				path = prefix + name
			}
			typ := types[path]
			elems := []gjson.Result{val}
			if val.IsArray() {
				elems = val.Array()
			}
			for _, el := range elems {
				if msg := typeMismatch(typ, el); msg != "" {
					out = append(out, errorFinding(CodeInvalidValue, k.String(), fmt.Sprintf("%s: %s; the backend would answer 400", k.String(), msg)))
				}
				if el.IsObject() && typ == "complex" && !strings.Contains(prefix, ".") {
					walk(path, el)
				}
			}
			return true
		})
	}
	walk("", gjson.ParseBytes(projected))
	return out
}

func typeMismatch(typ string, v gjson.Result) string {
	switch typ {
	case "boolean":
		if v.Type != gjson.True && v.Type != gjson.False && v.Type != gjson.Null {
			return "the schema says boolean, the value is " + v.Raw
		}
	case "integer", "decimal":
		if v.Type != gjson.Number && v.Type != gjson.Null {
			return "the schema says " + typ + ", the value is " + v.Raw
		}
	case "string", "reference", "datetime", "binary":
		if v.Type != gjson.String && v.Type != gjson.Null {
			return "the schema says " + typ + ", the value is " + v.Raw
		}
	}
	return ""
}

// schemaFor returns the cached attribute types of a connection's backend.
func (e *Engine) schemaFor(p *predictor, connection string, t Target) map[string]string {
	if v, ok := e.schemas.Load(connection); ok {
		st := v.(schemaTypes)
		if time.Since(st.at) < 10*time.Minute {
			return st.types
		}
	}
	st := schemaTypes{at: time.Now(), types: map[string]string{}}
	status, body, err := p.get(t.Base+"/Schemas", "")
	if err == nil && status == http.StatusOK {
		parseSchemas(body, st.types)
	}
	e.schemas.Store(connection, st)
	return st.types
}

// parseSchemas reads a /Schemas ListResponse (or a bare array) into path → type.
func parseSchemas(body []byte, types map[string]string) {
	list := gjson.GetBytes(body, "Resources")
	if !list.Exists() {
		list = gjson.ParseBytes(body)
	}
	list.ForEach(func(_, schema gjson.Result) bool {
		id := strings.ToLower(schema.Get("id").String())
		core := strings.HasPrefix(id, "urn:ietf:params:scim:schemas:core:")
		schema.Get("attributes").ForEach(func(_, a gjson.Result) bool {
			name := strings.ToLower(a.Get("name").String())
			path := name
			if !core {
				path = id + ":" + name
			}
			types[path] = strings.ToLower(a.Get("type").String())
			a.Get("subAttributes").ForEach(func(_, s gjson.Result) bool {
				types[path+"."+strings.ToLower(s.Get("name").String())] = strings.ToLower(s.Get("type").String())
				return true
			})
			return true
		})
		return true
	})
}

// predictionCaches are the engine's per-connection caches.
type predictionCaches struct {
	names   sync.Map // connection, endpoint, id → nameEntry
	schemas sync.Map // connection → schemaTypes
}
