package shadow

import (
	"context"
	"fmt"
	"time"
)

// CredentialStore keeps per-connection credentials: the SHA-256 (hex) of each
// connection's bearer token, never the token. One token per connection; setting a new
// one replaces the old (rotation).
type CredentialStore interface {
	// SetCredential stores tokenHash as the credential of connection, replacing any.
	SetCredential(ctx context.Context, connection, tokenHash string, at time.Time) error
	// CredentialConnection returns the connection whose credential is tokenHash, or
	// ErrNotFound.
	CredentialConnection(ctx context.Context, tokenHash string) (string, error)
	// DeleteCredential removes the credential of connection; ErrNotFound when it has none.
	DeleteCredential(ctx context.Context, connection string) error
}

// SetCredential implements CredentialStore.
func (c *sqlCore) SetCredential(ctx context.Context, connection, tokenHash string, at time.Time) error {
	if connection == "" || len(tokenHash) != 64 {
		return fmt.Errorf("%s: set credential: need a connection name and a hex SHA-256", c.name)
	}
	_, err := c.db.exec(ctx, `INSERT INTO credentials (connection, token_hash, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (connection) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at`,
		sqlText(connection), tokenHash, c.db.timeArg(at))
	if err != nil {
		return fmt.Errorf("%s: set credential of %q: %w", c.name, connection, err)
	}
	return nil
}

// CredentialConnection implements CredentialStore.
func (c *sqlCore) CredentialConnection(ctx context.Context, tokenHash string) (string, error) {
	var conn string
	if err := c.db.queryRow(ctx, `SELECT connection FROM credentials WHERE token_hash = $1`, tokenHash).Scan(&conn); err != nil {
		return "", fmt.Errorf("%s: look up credential: %w", c.name, err)
	}
	return conn, nil
}

// DeleteCredential implements CredentialStore.
func (c *sqlCore) DeleteCredential(ctx context.Context, connection string) error {
	n, err := c.db.exec(ctx, `DELETE FROM credentials WHERE connection = $1`, connection)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%s: delete credential of %q: %w", c.name, connection, err)
	}
	return nil
}
