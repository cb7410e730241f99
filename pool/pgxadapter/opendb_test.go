package pgxadapter_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/pool"
)

// OpenDB with pgx's own connector (what a program that used stdlib.OpenDB
// swaps in) gets the adapter's rules: a statement on a session the server
// ended is a lost connection (pool.ErrConnLost, counted in Stats), read by
// pgx's classifier; with the generic rules alone (main) the server's FATAL
// looked like an ordinary server error.
func TestOpenDBWithPgxConnectorUsesTheAdapter(t *testing.T) {
	requirePostgres(t)
	cfg, err := pgx.ParseConfig("postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	p := pool.OpenDB(stdlib.GetConnector(*cfg), pool.Config{ProbeInterval: -1})
	defer p.Close()
	ctx := context.Background()
	c, err := p.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var pid int
	if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err = c.ExecContext(ctx, "SELECT 1")
	if !errors.Is(err, pool.ErrConnLost) || p.Stats().ConnsLost != 1 {
		t.Fatalf("got %v (ConnsLost %d); want a lost connection, as pgx's classifier reads it", err, p.Stats().ConnsLost)
	}
}
