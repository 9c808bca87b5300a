// Package backend is an in-memory SCIM 2.0 service provider (RFC 7643/7644)
// used as the upstream of caddy-scim-shadow in integration tests and demos.
//
// It is built on github.com/elimity-com/scim: elimity routes the requests,
// validates request bodies and PATCH operations against the schemas, parses
// and validates filters, and serves /Schemas, /ResourceTypes and
// /ServiceProviderConfig. This package adds storage, uniqueness, filter
// evaluation, PATCH semantics, group membership, authentication and the
// response details elimity leaves out (absolute meta.location, Location
// header, attributes/excludedAttributes, itemsPerPage).
package backend

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Options configures the backend.
type Options struct {
	// Token is the expected bearer token. Empty disables authentication.
	Token string
	// BasePath is the URL path prefix of the SCIM endpoints; default "/scim/v2".
	BasePath string
	// Logger receives internal errors (optional).
	Logger *slog.Logger
}

// DefaultBasePath is used when Options.BasePath is empty.
const DefaultBasePath = "/scim/v2"

// maxResults is the largest page size served (and the default "count").
const maxResults = 1000

// maxBodyBytes limits request bodies.
const maxBodyBytes = 1 << 20

// New returns an http.Handler serving an in-memory SCIM 2.0 service provider.
func New(opts Options) (http.Handler, error) {
	base := "/" + strings.Trim(opts.BasePath, "/")
	if opts.BasePath == "" {
		base = DefaultBasePath
	}
	if base == "/" {
		base = ""
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	svc := &service{
		basePath: base,
		log:      logger,
		user:     userSchema(),
		ent:      enterpriseUserSchema(),
		group:    groupSchema(),
		users:    map[string]*record{},
		groups:   map[string]*record{},
	}

	var authSchemes []scim.AuthenticationScheme
	if opts.Token != "" {
		authSchemes = append(authSchemes, scim.AuthenticationScheme{
			Type:        scim.AuthenticationTypeOauthBearerToken,
			Name:        "OAuth Bearer Token",
			Description: "Authentication scheme using the OAuth Bearer Token Standard",
			SpecURI:     optional.NewString("https://www.rfc-editor.org/info/rfc6750"),
			Primary:     true,
		})
	}

	server, err := scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{
			DocumentationURI:      optional.NewString("https://github.com/scim-shadow/caddy-scim-shadow"),
			AuthenticationSchemes: authSchemes,
			MaxResults:            maxResults,
			SupportFiltering:      true,
			SupportPatch:          true,
		},
		ResourceTypes: []scim.ResourceType{
			{
				ID:          optional.NewString("User"),
				Name:        "User",
				Endpoint:    "/Users",
				Description: optional.NewString("User Account"),
				Schema:      svc.user,
				SchemaExtensions: []scim.SchemaExtension{
					{Schema: svc.ent},
				},
				Handler: &resourceHandler{svc: svc, kind: kindUser},
			},
			{
				ID:          optional.NewString("Group"),
				Name:        "Group",
				Endpoint:    "/Groups",
				Description: optional.NewString("Group"),
				Schema:      svc.group,
				Handler:     &resourceHandler{svc: svc, kind: kindGroup},
			},
		},
	}, scim.WithLogger(slogAdapter{logger}))
	if err != nil {
		return nil, fmt.Errorf("scim server: %w", err)
	}

	var h http.Handler = server
	h = svc.postProcess(h)
	h = svc.normalizeRequest(h)
	h = svc.stripBase(h)
	h = authenticate(opts.Token, h)
	return h, nil
}

// slogAdapter adapts *slog.Logger to elimity's Logger interface, which is
// called with a message followed by key/value pairs.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Error(args ...interface{}) {
	if len(args) == 0 {
		return
	}
	msg, ok := args[0].(string)
	if !ok {
		a.l.Error(fmt.Sprint(args...))
		return
	}
	a.l.Error("scim: "+msg, args[1:]...)
}

// writeError writes a SCIM error response.
func writeError(w http.ResponseWriter, e scimerrors.ScimError) {
	raw, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(raw)
}

// authenticate enforces "Authorization: Bearer <token>" when token != "".
func authenticate(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, got, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") ||
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
			detail := "Authorization failure: missing bearer token."
			if h != "" {
				detail = "Authorization failure: invalid bearer token."
			}
			writeError(w, scimerrors.ScimError{Status: http.StatusUnauthorized, Detail: detail})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// stripBase removes the base path; anything outside it is a SCIM 404.
func (s *service) stripBase(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		rest, ok := strings.CutPrefix(p, s.basePath)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			writeError(w, scimerrors.ScimError{Status: http.StatusNotFound, Detail: "Specified endpoint does not exist."})
			return
		}
		if rest == "" {
			rest = "/"
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = rest
		u.RawPath = ""
		r2.URL = &u
		r2.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r2)
	})
}

// baseURL returns the absolute URL of the SCIM base path as seen by the
// client: X-Forwarded-Proto/X-Forwarded-Host are honoured, else r.TLS/r.Host.
func (s *service) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstHeaderValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
		scheme = p
	}
	host := r.Host
	if h := firstHeaderValue(r.Header.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	return scheme + "://" + host + s.basePath
}

func firstHeaderValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// schemaFor returns the core schema and extensions for an endpoint path.
func (s *service) schemasForPath(p string) (schema.Schema, []schema.Schema, bool) {
	switch {
	case p == "/Users" || strings.HasPrefix(p, "/Users/"):
		return s.user, []schema.Schema{s.ent}, true
	case p == "/Groups" || strings.HasPrefix(p, "/Groups/"):
		return s.group, nil, true
	}
	return schema.Schema{}, nil, false
}
