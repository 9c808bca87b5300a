package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgSchema is a fresh PostgreSQL schema for one run; DSN has it as search_path.
type pgSchema struct {
	Name string
	DSN  string
	base string
}

var pgSchemaSeq atomic.Int64

// newPGSchema creates a schema named scimbench_<pid>_<time>_<n> in the database of dsn
// (a postgres:// URL).
func newPGSchema(ctx context.Context, dsn string) (*pgSchema, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres DSN: %w", err)
	}
	name := fmt.Sprintf("scimbench_%d_%d_%d", os.Getpid(), time.Now().Unix()%100000, pgSchemaSeq.Add(1))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return nil, fmt.Errorf("postgres: creating schema %s: %w", name, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return &pgSchema{Name: name, DSN: u.String(), base: dsn}, nil
}

// Size is the total size of the schema's tables with their indexes and TOAST.
func (s *pgSchema) Size() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return 0, fmt.Errorf("postgres: connecting: %w", err)
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = $1 AND c.relkind = 'r'`, s.Name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: schema size: %w", err)
	}
	return n, nil
}

// Drop drops the schema and everything in it.
func (s *pgSchema) Drop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgres: dropping schema %s: %v\n", s.Name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+s.Name+" CASCADE"); err != nil {
		fmt.Fprintf(os.Stderr, "postgres: dropping schema %s: %v\n", s.Name, err)
	}
}

// PingPostgres checks that dsn accepts connections.
func PingPostgres(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return conn.Close(ctx)
}
