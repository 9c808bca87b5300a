package shadow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// TokenPrefix starts every connection token, so a leaked one is easy to recognise.
const TokenPrefix = "scims_"

// NewToken returns a new connection token (TokenPrefix and 32 random bytes, base64url)
// and its hash, the only form a Store keeps.
func NewToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generating a token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, TokenHash(token), nil
}

// TokenHash is the hex SHA-256 of a token.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ErrBadToken is returned by Credentials.Authenticate for a missing or unknown token.
var ErrBadToken = errors.New("missing or invalid bearer token")

// credentialTTL is how long a verified token is trusted without asking the store again:
// a rotated or deleted token stops working on other instances within it (at once on the
// instance that rotated it).
const credentialTTL = 30 * time.Second

// Credentials authenticates IdPs by their connection's bearer token. The store keeps
// only SHA-256 hashes; the digest of a presented token is compared with the stored one in
// constant time. Positive answers are cached for credentialTTL.
type Credentials struct {
	Store Store

	cache sync.Map // hash → credentialEntry
}

type credentialEntry struct {
	connection string
	hash       string
	at         time.Time
}

// Authenticate returns the connection of the bearer token of r, ErrBadToken, or a store
// error.
func (c *Credentials) Authenticate(ctx context.Context, r *http.Request) (string, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(strings.TrimSpace(token), TokenPrefix) {
		return "", ErrBadToken
	}
	hash := TokenHash(strings.TrimSpace(token))
	if v, ok := c.cache.Load(hash); ok {
		e := v.(credentialEntry)
		if time.Since(e.at) < credentialTTL && subtle.ConstantTimeCompare([]byte(e.hash), []byte(hash)) == 1 {
			return e.connection, nil
		}
		c.cache.Delete(hash)
	}
	conn, err := c.Store.CredentialConnection(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return "", ErrBadToken
	}
	if err != nil {
		return "", err
	}
	c.cache.Store(hash, credentialEntry{connection: conn, hash: hash, at: time.Now()})
	return conn, nil
}

// Forget drops the cached tokens of a connection (after a rotation or deletion).
func (c *Credentials) Forget(connection string) {
	c.cache.Range(func(k, v any) bool {
		if v.(credentialEntry).connection == connection {
			c.cache.Delete(k)
		}
		return true
	})
}

// Issue creates (or rotates) the token of a connection and returns it: the only time it
// is shown.
func (c *Credentials) Issue(ctx context.Context, connection string) (string, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	if err := c.Store.SetCredential(ctx, connection, hash, time.Now()); err != nil {
		return "", err
	}
	c.Forget(connection)
	return token, nil
}
