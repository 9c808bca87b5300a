package backend

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// normalizeRequest adapts two RFC-valid or IdP-common request forms that
// elimity cannot parse, before elimity sees the request:
//
//   - GET filter `attr[F].sub op v` (sent by Entra) → `attr[F and sub op v]`.
//   - PATCH operations whose path is an extension URN, or whose path-less
//     value contains an extension URN key holding an object, are flattened to
//     URN-qualified attribute paths ("urn:…:User:department").
func (s *service) normalizeRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, exts, ok := s.schemasForPath(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet {
			q := r.URL.Query()
			if f := q.Get("filter"); f != "" {
				if nf := rewriteSubAttrValuePaths(f); nf != f {
					q.Set("filter", nf)
					r2 := new(http.Request)
					*r2 = *r
					u := *r.URL
					u.RawQuery = q.Encode()
					r2.URL = &u
					r = r2
				}
			}
		}
		if r.Method == http.MethodPatch && len(exts) > 0 {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				writeError(w, scimErrBody(err))
				return
			}
			if nb, changed := flattenExtensionPatch(body, exts); changed {
				body = nb
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		next.ServeHTTP(w, r)
	})
}

func flattenExtensionPatch(body []byte, exts []schema.Schema) ([]byte, bool) {
	var req map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&req) != nil {
		return body, false
	}
	var opsKey string
	for k := range req {
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
		for k := range om {
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
			if path != "" && strings.EqualFold(strings.TrimSpace(path), ext.ID) {
				flat := map[string]any{}
				for k, v := range value {
					flat[ext.ID+":"+k] = v
				}
				delete(om, pathKey)
				om[valueKey] = flat
				changed = true
				continue
			}
			if path == "" {
				for k, v := range value {
					if vm, ok := v.(map[string]any); ok && strings.EqualFold(k, ext.ID) {
						delete(value, k)
						for sk, sv := range vm {
							value[ext.ID+":"+sk] = sv
						}
						changed = true
					}
				}
			}
		}
	}
	if !changed {
		return body, false
	}
	nb, err := json.Marshal(req)
	if err != nil {
		return body, false
	}
	return nb, true
}

func scimErrBody(err error) scimerrors.ScimError {
	if _, ok := err.(*http.MaxBytesError); ok {
		return scimerrors.ScimError{Status: http.StatusRequestEntityTooLarge, Detail: "request body too large"}
	}
	return scimerrors.ScimError{Status: http.StatusBadRequest, Detail: "cannot read request body"}
}

// capture buffers a response so that it can be rewritten.
type capture struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.buf.Write(b)
}

// postProcess completes elimity's responses: meta.location becomes an
// absolute URL, 201 responses get a Location header, list responses report
// the real itemsPerPage and an empty Resources array instead of null,
// extension URNs without data are dropped from "schemas", and
// attributes/excludedAttributes are applied to User/Group resources.
func (s *service) postProcess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &capture{header: w.Header()}
		next.ServeHTTP(c, r)
		if c.status == 0 {
			c.status = http.StatusOK
		}
		body := c.buf.Bytes()
		core, exts, isResource := s.schemasForPath(r.URL.Path)
		if isResource && c.status < 300 && len(body) > 0 {
			if nb, loc, ok := s.rewriteBody(r, body, core, exts); ok {
				body = nb
				if c.status == http.StatusCreated && loc != "" {
					w.Header().Set("Location", loc)
				}
			}
		}
		if c.status >= 400 {
			var e struct{ ScimType, Detail string }
			_ = json.Unmarshal(body, &e)
			s.log.Info("scim error response", "method", r.Method, "path", r.URL.Path,
				"status", c.status, "scimType", e.ScimType, "detail", e.Detail)
		}
		if len(body) > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(c.status)
		_, _ = w.Write(body)
	})
}

func (s *service) rewriteBody(r *http.Request, body []byte, core schema.Schema, exts []schema.Schema) ([]byte, string, bool) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&m) != nil {
		return nil, "", false
	}
	base := s.baseURL(r)
	q := r.URL.Query()
	proj := newProjection(q.Get("attributes"), q.Get("excludedAttributes"), core, exts)
	loc := ""
	if isList(m) {
		res, _ := m["Resources"].([]any)
		if res == nil {
			res = []any{}
		}
		for i, e := range res {
			if em, ok := e.(map[string]any); ok {
				fixResource(em, base, exts)
				res[i] = proj.apply(em)
			}
		}
		m["Resources"] = res
		m["itemsPerPage"] = len(res)
	} else if _, ok := m["meta"]; ok {
		loc = fixResource(m, base, exts)
		m = proj.apply(m)
	} else {
		return nil, "", false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(m) != nil {
		return nil, "", false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), loc, true
}

func isList(m map[string]any) bool {
	ss, _ := m["schemas"].([]any)
	for _, s := range ss {
		if s == listResponseURN {
			return true
		}
	}
	return false
}

// fixResource makes meta.location absolute and trims "schemas".
func fixResource(m map[string]any, base string, exts []schema.Schema) string {
	loc := ""
	if meta, ok := m["meta"].(map[string]any); ok {
		if l, ok := meta["location"].(string); ok && !strings.Contains(l, "://") {
			loc = base + "/" + strings.TrimPrefix(l, "/")
			meta["location"] = loc
		}
	}
	if ss, ok := m["schemas"].([]any); ok {
		out := ss[:0]
		for _, s := range ss {
			keep := true
			for _, ext := range exts {
				if s == ext.ID {
					_, keep = m[ext.ID]
				}
			}
			if keep {
				out = append(out, s)
			}
		}
		m["schemas"] = out
	}
	return loc
}

// attrRef is a resolved attribute name from attributes/excludedAttributes.
type attrRef struct {
	ext  string // extension URN or ""
	attr string // canonical attribute name; "" = the whole extension
	sub  string // canonical sub-attribute name or ""
}

type projection struct {
	include, exclude []attrRef
	includeSet       bool
}

func newProjection(attributes, excluded string, core schema.Schema, exts []schema.Schema) projection {
	var p projection
	p.include = parseAttrList(attributes, core, exts)
	p.includeSet = strings.TrimSpace(attributes) != ""
	p.exclude = parseAttrList(excluded, core, exts)
	return p
}

func parseAttrList(list string, core schema.Schema, exts []schema.Schema) []attrRef {
	var out []attrRef
	for _, tok := range strings.Split(list, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		whole := false
		for _, ext := range exts {
			if strings.EqualFold(tok, ext.ID) {
				out = append(out, attrRef{ext: ext.ID})
				whole = true
			}
		}
		if whole {
			continue
		}
		ap, err := filter.ParseAttrPath([]byte(tok))
		if err != nil {
			continue
		}
		ref := attrRef{}
		attrs := core.Attributes
		if uri := ap.URI(); uri != "" && !strings.EqualFold(uri, core.ID) {
			found := false
			for _, ext := range exts {
				if strings.EqualFold(uri, ext.ID) {
					attrs, ref.ext, found = ext.Attributes, ext.ID, true
				}
			}
			if !found {
				continue
			}
		}
		a, ok := attrs.ContainsAttribute(ap.AttributeName)
		if !ok {
			// "meta" is not part of the schemas but may be asked for.
			if ref.ext == "" && strings.EqualFold(ap.AttributeName, "meta") {
				out = append(out, attrRef{attr: "meta"})
			}
			continue
		}
		ref.attr = a.Name()
		if sn := ap.SubAttributeName(); sn != "" {
			sa, ok := a.SubAttributes().ContainsAttribute(sn)
			if !ok {
				continue
			}
			ref.sub = sa.Name()
		}
		out = append(out, ref)
	}
	return out
}

// apply returns m restricted by attributes / without excludedAttributes.
// "id" and "schemas" are always returned.
func (p projection) apply(m map[string]any) map[string]any {
	if p.includeSet {
		out := map[string]any{"id": m["id"], "schemas": m["schemas"]}
		for _, ref := range p.include {
			copyRef(out, m, ref)
		}
		m = out
	}
	for _, ref := range p.exclude {
		if ref.ext == "" && ref.attr == "id" {
			continue
		}
		container := m
		if ref.ext != "" {
			if ref.attr == "" {
				delete(m, ref.ext)
				continue
			}
			container, _ = m[ref.ext].(map[string]any)
		}
		if container == nil {
			continue
		}
		if ref.sub == "" {
			delete(container, ref.attr)
			continue
		}
		switch v := container[ref.attr].(type) {
		case map[string]any:
			delete(v, ref.sub)
		case []any:
			for _, el := range v {
				if em, ok := el.(map[string]any); ok {
					delete(em, ref.sub)
				}
			}
		}
	}
	return m
}

func copyRef(out, m map[string]any, ref attrRef) {
	src, dst := m, out
	if ref.ext != "" {
		if ref.attr == "" {
			if v, ok := m[ref.ext]; ok {
				out[ref.ext] = v
			}
			return
		}
		src, _ = m[ref.ext].(map[string]any)
		if _, ok := src[ref.attr]; !ok {
			return
		}
		d, _ := out[ref.ext].(map[string]any)
		if d == nil {
			d = map[string]any{}
			out[ref.ext] = d
		}
		dst = d
	}
	v, ok := src[ref.attr]
	if !ok {
		return
	}
	if ref.sub == "" {
		dst[ref.attr] = v
		return
	}
	switch vv := v.(type) {
	case map[string]any:
		if sv, ok := vv[ref.sub]; ok {
			d, _ := dst[ref.attr].(map[string]any)
			if d == nil {
				d = map[string]any{}
				dst[ref.attr] = d
			}
			d[ref.sub] = sv
		}
	case []any:
		// one projected element per source element, merged with any
		// sub-attributes already projected
		prev, _ := dst[ref.attr].([]any)
		res := make([]any, len(vv))
		for i, el := range vv {
			var d map[string]any
			if i < len(prev) {
				d, _ = prev[i].(map[string]any)
			}
			if d == nil {
				d = map[string]any{}
			}
			if em, ok := el.(map[string]any); ok {
				if sv, ok := em[ref.sub]; ok {
					d[ref.sub] = sv
				}
			}
			res[i] = d
		}
		dst[ref.attr] = res
	}
}
