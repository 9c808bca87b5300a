package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Dialect normalisation: what Entra ID (and others) send that strict backends refuse,
// turned into plain RFC 7644 before the mapping rules run. Each switch is opt-in per
// connection; every change is reported as an info finding with Code CodeNormalized and
// the switch's name in Kind.

// CodeNormalized is the finding code of a dialect normalisation (severity info).
const CodeNormalized = "normalized"

// Normalisation kinds: the names of the switches, and the Kind of their findings.
const (
	KindOpCase        = "op_case"        // "Replace" → "replace"
	KindBooleans      = "booleans"       // "False" → false where the schema says boolean
	KindMemberRemoval = "member_removal" // remove members + value array → one filtered remove per member
	KindManager       = "manager"        // enterprise manager "id" → {"value":"id"}
	KindDottedKeys    = "dotted_keys"    // {"name.givenName":…} → {"name":{"givenName":…}} in path-less values
)

// Normalization holds the dialect normalisations of one connection.
type Normalization struct {
	OpCase        bool
	Booleans      bool
	MemberRemoval bool
	Manager       bool
	DottedKeys    bool
}

// NormalizationKinds are the switch names ParseNormalization accepts, besides "all".
var NormalizationKinds = []string{KindOpCase, KindBooleans, KindMemberRemoval, KindManager, KindDottedKeys}

// ParseNormalization reads switch names (any of NormalizationKinds, or "all").
func ParseNormalization(names []string) (Normalization, error) {
	var n Normalization
	for _, name := range names {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "all":
			n = Normalization{true, true, true, true, true}
		case KindOpCase:
			n.OpCase = true
		case KindBooleans:
			n.Booleans = true
		case KindMemberRemoval:
			n.MemberRemoval = true
		case KindManager:
			n.Manager = true
		case KindDottedKeys:
			n.DottedKeys = true
		default:
			return n, fmt.Errorf("rules: unknown normalization %q (want one of %s, all)", name, strings.Join(NormalizationKinds, ", "))
		}
	}
	return n, nil
}

// Any reports whether any normalisation is on.
func (n Normalization) Any() bool {
	return n.OpCase || n.Booleans || n.MemberRemoval || n.Manager || n.DottedKeys
}

// AttrTypes maps lower-case attribute paths to their RFC 7643 type ("boolean", "string",
// "complex", …): core attributes by name ("active", "emails.primary"), extension
// attributes by URN and name ("urn:…:enterprise:2.0:user:manager").
type AttrTypes map[string]string

// EnterpriseURN is the enterprise user extension's schema URN (RFC 7643 §4.3).
const EnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

var managerPath = strings.ToLower(EnterpriseURN) + ":manager"

// CoreAttrTypes are the boolean and complex attributes of the RFC 7643 core and enterprise
// schemas: what normalisation uses when the backend publishes no /Schemas.
var CoreAttrTypes = AttrTypes{
	"active": "boolean", "emails.primary": "boolean", "phonenumbers.primary": "boolean",
	"ims.primary": "boolean", "photos.primary": "boolean", "addresses.primary": "boolean",
	"entitlements.primary": "boolean", "roles.primary": "boolean", "x509certificates.primary": "boolean",
	"groups.primary": "boolean", "name": "complex", "emails": "complex", "members": "complex",
	managerPath: "complex", managerPath + ".value": "string",
}

// maxNormalizeDepth bounds how deep values are walked (SCIM values nest three levels at most).
const maxNormalizeDepth = 6

// normalizer carries one call's switches, types and findings.
type normalizer struct {
	n        Normalization
	types    AttrTypes
	findings []Finding
}

func (nz *normalizer) note(kind, path, msg string) {
	nz.findings = append(nz.findings, Finding{Severity: SeverityInfo, Code: CodeNormalized, Kind: kind, Path: path, Message: msg})
}

// MayNormalizeResource is NormalizeResource's quick look: false when it would return body
// unchanged without findings (or with an error, for a body that is not a JSON object),
// without parsing it.
func MayNormalizeResource(n Normalization, body []byte) bool {
	return (n.Booleans || n.Manager) && mayNeed(n, body)
}

// NormalizeResource normalises a POST or PUT body: string booleans and a bare-string
// manager (the other switches concern PATCH). types nil or empty means CoreAttrTypes. A
// body that is not a JSON object comes back unchanged with an error; a body nothing
// changed in comes back as the same slice.
func NormalizeResource(n Normalization, types AttrTypes, body []byte) ([]byte, []Finding, error) {
	if !n.Booleans && !n.Manager {
		return body, nil, nil
	}
	v, err := parseObject(body)
	if err != nil {
		return body, nil, fmt.Errorf("rules: normalizing resource: %w", err)
	}
	if !mayNeed(n, body) {
		return body, nil, nil
	}
	nz := &normalizer{n: n, types: orCore(types)}
	out, changed := nz.value("", v, 0)
	if !changed {
		return body, nil, nil
	}
	return []byte(out), nz.findings, nil
}

// NormalizePatch normalises a PatchOp message: op names, string booleans, value-array
// member removals, bare-string managers and dotted keys of path-less values, as switched
// on. types nil or empty means CoreAttrTypes. A body that is not a PatchOp message comes
// back unchanged with an error; a body nothing changed in comes back as the same slice.
func NormalizePatch(n Normalization, types AttrTypes, body []byte) ([]byte, []Finding, error) {
	if !n.Any() {
		return body, nil, nil
	}
	root, err := parseObject(body)
	if err != nil {
		return body, nil, fmt.Errorf("rules: normalizing PATCH: %w", err)
	}
	var opsKey string
	var ops gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		if foldEq(k.Str, "Operations") {
			opsKey, ops = k.Str, v
			return false
		}
		return true
	})
	if !ops.IsArray() {
		return body, nil, fmt.Errorf("rules: normalizing PATCH: %w", errors.New("no Operations array"))
	}
	nz := &normalizer{n: n, types: orCore(types)}
	// The new Operations array is built from the first changed operation on (the ones
	// before it are written then): a PATCH nothing changes in allocates no copy.
	changed := false
	var b strings.Builder
	j, count := 0, 0
	emit := func(s string) {
		if count > 0 {
			b.WriteByte(',')
		}
		count++
		b.WriteString(s)
	}
	ops.ForEach(func(_, op gjson.Result) bool {
		out, ch := nz.operation(j, op)
		if ch && !changed {
			changed = true
			b.Grow(len(ops.Raw) + 64)
			b.WriteByte('[')
			i := 0
			ops.ForEach(func(_, prev gjson.Result) bool {
				if i == j {
					return false
				}
				emit(prev.Raw)
				i++
				return true
			})
		}
		j++
		switch {
		case ch:
			for _, o := range out {
				emit(o)
			}
		case changed:
			emit(op.Raw)
		}
		return true
	})
	if !changed {
		return body, nil, nil
	}
	b.WriteByte(']')
	return []byte(rebuild(root, map[string]string{opsKey: b.String()})), nz.findings, nil
}

// b2i is 1 for true.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func orCore(t AttrTypes) AttrTypes {
	if len(t) == 0 {
		return CoreAttrTypes
	}
	return t
}

// parseObject checks that body is a JSON object of bounded depth.
func parseObject(body []byte) (gjson.Result, error) {
	if !gjson.ValidBytes(body) {
		return gjson.Result{}, errors.New("not valid JSON")
	}
	if !depthOK(body) {
		return gjson.Result{}, errors.New("nested too deeply")
	}
	v := gjson.ParseBytes(body)
	if !v.IsObject() {
		return gjson.Result{}, errors.New("not a JSON object")
	}
	return v, nil
}

// operation normalises PATCH operation j; it may become several operations. An
// operation it leaves as it is gives nil, false.
func (nz *normalizer) operation(j int, op gjson.Result) ([]string, bool) {
	if !op.IsObject() {
		return nil, false
	}
	var opv, pathv, valv gjson.Result
	op.ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == "op":
			opv = v
		case k.Str == "path":
			pathv = v
		case k.Str == "value":
			valv = v
		}
		return true
	})
	changed := false
	opRaw := opv.Raw
	if nz.n.OpCase && opv.Type == gjson.String && opv.Str != strings.ToLower(opv.Str) {
		opRaw = quote(strings.ToLower(opv.Str))
		changed = true
		nz.note(KindOpCase, pathv.Str, opWhere(j)+": op "+strconv.Quote(opv.Str)+" → "+opRaw)
	}
	path := ""
	if pathv.Type == gjson.String {
		path = strings.TrimSpace(pathv.Str)
	}
	// Entra's member removal by value array: one filtered remove per member.
	if nz.n.MemberRemoval && opv.Type == gjson.String && foldEq(opv.Str, "remove") && foldEq(path, "members") {
		if ids, ok := memberIDs(valv); ok {
			out := make([]string, 0, len(ids))
			for _, id := range ids {
				p := "members[value eq " + quote(id) + "]"
				out = append(out, `{"op":`+opRaw+`,"path":`+quote(p)+`}`)
			}
			nz.note(KindMemberRemoval, "members", fmt.Sprintf("%s: removal of %d member(s) by value array → one members[value eq …] removal each", opWhere(j), len(ids)))
			return out, true
		}
	}
	valRaw := valv.Raw
	if valv.Exists() {
		v := valv
		if path == "" && v.IsObject() && nz.n.DottedKeys {
			if nested, ok := nz.nestDotted(j, v); ok {
				v, changed = gjson.Parse(nested), true
				valRaw = nested
			}
		}
		prefix := ""
		if path != "" {
			prefix = nz.schemaPath(path)
		}
		if out, ch := nz.value(prefix, v, 0); ch {
			valRaw, changed = out, true
		}
	}
	if !changed {
		return nil, false
	}
	return []string{rebuild(op, map[string]string{"op": opRaw, "value": valRaw})}, true
}

// opWhere names PATCH operation j in finding messages (built only for a finding).
func opWhere(j int) string { return "operation " + strconv.Itoa(j) }

// memberIDs returns the ids of a members value array whose every element is an object
// with a string value; ok false otherwise (nothing to rewrite safely).
func memberIDs(v gjson.Result) ([]string, bool) {
	if !v.IsArray() {
		return nil, false
	}
	var ids []string
	ok := true
	v.ForEach(func(_, el gjson.Result) bool {
		id := el.Get("value")
		if !el.IsObject() || id.Type != gjson.String || id.Str == "" {
			ok = false
			return false
		}
		ids = append(ids, id.Str)
		return true
	})
	return ids, ok && len(ids) > 0
}

// rebuild re-emits object o with the raw values of the given (exact) keys replaced.
func rebuild(o gjson.Result, repl map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	o.ForEach(func(k, v gjson.Result) bool {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(k.Raw)
		b.WriteByte(':')
		if r, ok := repl[k.Str]; ok && r != "" {
			b.WriteString(r)
		} else {
			b.WriteString(v.Raw)
		}
		return true
	})
	b.WriteByte('}')
	return b.String()
}

// schemaPath is the AttrTypes key of an attribute path: value filters removed, lower
// case, core URN dropped, extension attributes as "urn:…:attr".
func (nz *normalizer) schemaPath(p string) string {
	var b strings.Builder
	depth := 0
	inStr := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"' && depth > 0:
			inStr = true
		case c == '[':
			depth++
		case c == ']':
			if depth > 0 {
				depth--
			}
		case depth == 0:
			b.WriteByte(c)
		}
	}
	s := strings.ToLower(strings.TrimSpace(b.String()))
	if !strings.HasPrefix(s, "urn:") {
		return s
	}
	if nz.isSchemaURN(s) {
		return s + ":"
	}
	c := strings.LastIndexByte(s, ':')
	uri, rest := s[:c], s[c+1:]
	if strings.HasPrefix(uri, "urn:ietf:params:scim:schemas:core:") {
		return rest
	}
	return uri + ":" + rest
}

// isSchemaURN reports whether a lower-case URN names a whole schema (an extension object).
func (nz *normalizer) isSchemaURN(s string) bool {
	if s == strings.ToLower(EnterpriseURN) || strings.HasPrefix(s, "urn:ietf:params:scim:schemas:core:") && strings.Count(s, ":") == 6 {
		return true
	}
	for k := range nz.types {
		if len(k) > len(s) && k[len(s)] == ':' && strings.HasPrefix(k, s) {
			return true
		}
	}
	return false
}

// child is the schema path of key below prefix.
func (nz *normalizer) child(prefix, key string) string {
	lk := strings.ToLower(key)
	switch {
	case strings.HasPrefix(lk, "urn:"):
		return nz.schemaPath(key)
	case prefix == "":
		return lk
	case strings.HasSuffix(prefix, ":"):
		return prefix + lk
	default:
		return prefix + "." + lk
	}
}

// value normalises the value v found at schema path prefix, returning its new text.
func (nz *normalizer) value(prefix string, v gjson.Result, depth int) (string, bool) {
	switch {
	case v.Type == gjson.String:
		if nz.n.Booleans && nz.types[prefix] == "boolean" && (foldEq(v.Str, "true") || foldEq(v.Str, "false")) {
			out := strings.ToLower(v.Str)
			nz.note(KindBooleans, prefix, prefix+": string "+v.Raw+" → boolean "+out)
			return out, true
		}
		if nz.n.Manager && prefix == managerPath && v.Str != "" {
			out := `{"value":` + v.Raw + `}`
			nz.note(KindManager, EnterpriseURN+":manager", "manager: bare string "+v.Raw+" → "+out)
			return out, true
		}
	case depth >= maxNormalizeDepth:
	case v.IsObject() || v.IsArray():
		// Objects and arrays alike: members (elements) are normalised at their own schema
		// path (an element at its array's). Nothing is built until a member changes; the
		// container is then rebuilt from the raw texts before it and the outputs after it.
		obj := v.IsObject()
		var outs []string // outputs from the first changed member on
		from, i := -1, 0
		v.ForEach(func(k, el gjson.Result) bool {
			out, ch := el.Raw, false
			if !obj {
				out, ch = nz.value(prefix, el, depth+1)
			} else if el.Type == gjson.JSON || el.Type == gjson.String && nz.mayChange(k.Str, el.Str) {
				out, ch = nz.value(nz.child(prefix, k.Str), el, depth+1)
			}
			if ch && outs == nil {
				from = i
				outs = make([]string, 0, 4)
			}
			if outs != nil {
				outs = append(outs, out)
			}
			i++
			return true
		})
		if outs == nil {
			break
		}
		var b strings.Builder
		b.Grow(len(v.Raw) + 16)
		b.WriteByte("[{"[b2i(obj)])
		i = 0
		v.ForEach(func(k, el gjson.Result) bool {
			if i > 0 {
				b.WriteByte(',')
			}
			if obj {
				b.WriteString(k.Raw)
				b.WriteByte(':')
			}
			if i < from {
				b.WriteString(el.Raw)
			} else {
				b.WriteString(outs[i-from])
			}
			i++
			return true
		})
		b.WriteByte("]}"[b2i(obj)])
		return b.String(), true
	}
	return v.Raw, false
}

// mayNeed is a quick look for anything NormalizeResource could change: a quoted true or
// false (any case) for Booleans, a "manager" key for Manager.
func mayNeed(n Normalization, body []byte) bool {
	return n.Booleans && (MayContainFold(body, `"true"`) || MayContainFold(body, `"false"`)) ||
		n.Manager && MayContainFold(body, `"manager"`)
}

// mayChange reports whether a string member could be normalised, before its schema path
// is worked out: a true or false for Booleans, a manager key for Manager.
func (nz *normalizer) mayChange(key, val string) bool {
	if nz.n.Booleans && (foldEq(val, "true") || foldEq(val, "false")) {
		return true
	}
	return nz.n.Manager && len(key) >= 7 && foldEq(key[len(key)-7:], "manager")
}

// dotSplit splits a dotted key into its attribute and sub-attribute parts; ok is false
// for keys without a dot in their attribute part ("urn:…:2.0:User:department" has none).
func dotSplit(key string) (parent, sub string, ok bool) {
	start := 0
	if hasPrefixFold(key, "urn:") {
		start = strings.LastIndexByte(key, ':') + 1
	}
	d := strings.IndexByte(key[start:], '.')
	if d <= 0 || start+d == len(key)-1 {
		return "", "", false
	}
	// Attribute names start with a letter (RFC 7643 ATTRNAME): "urn:…:ext:1.0" is a
	// schema URN with a version, not an attribute with a sub-attribute.
	if !isAlpha(key[start]) || !isAlpha(key[start+d+1]) {
		return "", "", false
	}
	return key[:start+d], key[start+d+1:], true
}

// nestDotted turns the dotted keys of a path-less value into nested objects, merging
// with an object of the same attribute; a key whose parent holds something else is left.
func (nz *normalizer) nestDotted(j int, v gjson.Result) (string, bool) {
	dotted := false
	v.ForEach(func(k, _ gjson.Result) bool {
		_, _, dotted = dotSplit(k.Str)
		return !dotted
	})
	if !dotted {
		return "", false // the usual value: nothing to nest, nothing to build
	}
	type entry struct {
		keyRaw, valRaw string
		key            string
		kids           []string // `"sub":value` members when the entry is a nested object being built
		nested         bool
	}
	var entries []*entry
	find := func(name string) *entry {
		for _, e := range entries {
			if foldEq(e.key, name) {
				return e
			}
		}
		return nil
	}
	changed := false
	v.ForEach(func(k, el gjson.Result) bool {
		parent, sub, ok := dotSplit(k.Str)
		if !ok {
			if e := find(k.Str); e != nil && e.nested && el.IsObject() {
				// The plain object comes after dotted keys of the same attribute: merge.
				el.ForEach(func(sk, sv gjson.Result) bool {
					e.kids = append(e.kids, sk.Raw+":"+sv.Raw)
					return true
				})
				return true
			}
			entries = append(entries, &entry{keyRaw: k.Raw, valRaw: el.Raw, key: k.Str})
			return true
		}
		e := find(parent)
		switch {
		case e == nil:
			e = &entry{keyRaw: quote(parent), key: parent, nested: true}
			entries = append(entries, e)
		case !e.nested:
			pv := gjson.Parse(e.valRaw)
			if !pv.IsObject() {
				entries = append(entries, &entry{keyRaw: k.Raw, valRaw: el.Raw, key: k.Str})
				return true
			}
			e.nested = true
			pv.ForEach(func(sk, sv gjson.Result) bool {
				e.kids = append(e.kids, sk.Raw+":"+sv.Raw)
				return true
			})
		}
		e.kids = append(e.kids, quote(sub)+":"+el.Raw)
		changed = true
		nz.note(KindDottedKeys, k.Str, opWhere(j)+": key "+strconv.Quote(k.Str)+" → nested "+strconv.Quote(parent)+"."+strconv.Quote(sub))
		return true
	})
	if !changed {
		return "", false
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.keyRaw)
		b.WriteByte(':')
		if e.nested {
			b.WriteByte('{')
			b.WriteString(strings.Join(e.kids, ","))
			b.WriteByte('}')
		} else {
			b.WriteString(e.valRaw)
		}
	}
	b.WriteByte('}')
	return b.String(), true
}
