package pgxadapter_test

import (
	"context"
	"database/sql"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/pool"
)

// A name from stdlib.RegisterConnConfig opens the registered config, with
// its own DialFunc and settings, as plain sql.Open("pgx", name) does (on
// main: "bad DSN: cannot parse `registeredConnConfig0`"). The pool takes
// the socket pgx dialed (Driver.SocketOf), so the free check at borrow
// still sees a session the server ended.
func TestRegisteredConnConfig(t *testing.T) {
	requirePostgres(t)
	cfg, err := pgx.ParseConfig("postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int64
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	cfg.RuntimeParams["application_name"] = "flapguard_registered"
	name := stdlib.RegisterConnConfig(cfg)
	defer stdlib.UnregisterConnConfig(name)

	p, err := pool.Open("pgx", name, pool.Config{ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	var app string
	var pid int
	if err := p.DB().QueryRowContext(ctx, "SELECT current_setting('application_name'), pg_backend_pid()").Scan(&app, &pid); err != nil {
		t.Fatal(err)
	}
	if app != "flapguard_registered" || dials.Load() != 1 {
		t.Fatalf("application_name=%q dials=%d; want the registered config's (flapguard_registered, 1)", app, dials.Load())
	}
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := p.DB().QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatalf("after the server ended the session: %v", err)
	}
	if st := p.Stats(); st.GoneAtBorrow != 1 || dials.Load() != 2 {
		t.Fatalf("GoneAtBorrow=%d dials=%d; want the borrow to have seen the closed session on pgx's own socket (1) and a new dial (2)", st.GoneAtBorrow, dials.Load())
	}
}
