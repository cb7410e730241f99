package pgxadapter

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/nettest"
	"github.com/flapguard/flapguard/internal/pooltest"
)

// Rows named "real/..." are errors returned by pgx talking to the machine's
// PostgreSQL (127.0.0.1:5432, trust auth, db test), directly or through the
// cutting proxy below; "constructed/..." rows are built by hand.

const pgAddr = "127.0.0.1:5432"

func pgDSN(addr string) string {
	// simple protocol: one Query message per statement, so "cut after the
	// next request" cuts while the statement runs, not between Parse and
	// Execute.
	return "postgres://postgres@" + addr + "/test?sslmode=disable&default_query_exec_mode=simple_protocol"
}

func classify(err error) detect.Verdict { return detect.Classify(err, classifier) }

func expect(t *testing.T, err error, want detect.Verdict) {
	t.Helper()
	if got := classify(err); got != want {
		t.Fatalf("classify(%T %v) = %v, want %v", err, err, got, want)
	}
}

func TestClassifierConstructed(t *testing.T) {
	pg := func(code, sev string) error {
		return &pgconn.PgError{Code: code, Severity: sev, SeverityUnlocalized: sev}
	}
	tests := []struct {
		name string
		err  error
		want detect.Verdict
	}{
		{"constructed/23505 unique violation", pg("23505", "ERROR"), detect.Alive},
		{"constructed/42P01 undefined table", pg("42P01", "ERROR"), detect.Alive},
		{"constructed/40001 serialization failure", pg("40001", "ERROR"), detect.Alive},
		{"constructed/40P01 deadlock", pg("40P01", "ERROR"), detect.Alive},
		{"constructed/57014 query canceled", pg("57014", "ERROR"), detect.Alive},
		{"constructed/57P01 admin shutdown", pg("57P01", "FATAL"), detect.Lost},
		{"constructed/57P02 crash shutdown", pg("57P02", "FATAL"), detect.Lost},
		{"constructed/57P03 cannot connect now", pg("57P03", "FATAL"), detect.LostUnsent},
		{"constructed/57P05 idle session timeout", pg("57P05", "FATAL"), detect.Lost},
		{"constructed/25P03 idle in tx timeout", pg("25P03", "FATAL"), detect.Lost},
		{"constructed/08006 connection failure", pg("08006", "FATAL"), detect.Lost},
		{"constructed/08P01 protocol violation", pg("08P01", "FATAL"), detect.Lost},
		{"constructed/08001 unable to connect", pg("08001", "FATAL"), detect.LostUnsent},
		{"constructed/08004 rejected", pg("08004", "FATAL"), detect.LostUnsent},
		{"constructed/28P01 bad password (FATAL)", pg("28P01", "FATAL"), detect.Alive},
		{"constructed/3D000 no database (FATAL)", pg("3D000", "FATAL"), detect.Alive},
		{"constructed/53300 too many connections (FATAL)", pg("53300", "FATAL"), detect.Alive},
		{"constructed/XX000 FATAL", pg("XX000", "FATAL"), detect.Lost},
		{"constructed/XX000 PANIC, localized severity only", &pgconn.PgError{Code: "XX000", Severity: "PANIC"}, detect.Lost},
		{"constructed/nil *PgError", (*pgconn.PgError)(nil), detect.Alive},
		{"constructed/wrapped 40P01", fmt.Errorf("tx: %w", pg("40P01", "ERROR")), detect.Alive},
		{"constructed/join 23505 + EOF", errors.Join(pg("23505", "ERROR"), io.ErrUnexpectedEOF), detect.Lost},
		{"constructed/ErrConnClosed", pgconn.ErrConnClosed, detect.Lost},
		{"constructed/bare ErrBadConn (stdlib)", driver.ErrBadConn, detect.LostUnsent},
		{"constructed/plain", errors.New("x"), detect.Alive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, tt.err, tt.want) })
	}
	if v := classifier.Classify(errors.New("unknown")); v != detect.Continue {
		t.Fatalf("unrecognised error: %v, want continue", v)
	}
}

func openPG(t *testing.T, addr string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", pgDSN(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Skipf("PostgreSQL not reachable at %s: %v", addr, err)
	}
	return db
}

func pinnedConn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClassifierRealPostgres(t *testing.T) {
	admin := openPG(t, pgAddr)
	ctx := context.Background()

	t.Run("real/23505 unique violation", func(t *testing.T) {
		c := pinnedConn(t, admin)
		_, err := c.ExecContext(ctx, "CREATE TEMP TABLE fg_cls_u (id int PRIMARY KEY); INSERT INTO fg_cls_u VALUES (1); INSERT INTO fg_cls_u VALUES (1)")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" {
			t.Fatalf("want 23505, got %v", err)
		}
		expect(t, err, detect.Alive)
	})
	t.Run("real/42P01 undefined table", func(t *testing.T) {
		_, err := admin.ExecContext(ctx, "SELECT * FROM fg_no_such_table")
		expect(t, err, detect.Alive)
	})
	t.Run("real/57014 statement_timeout", func(t *testing.T) {
		c := pinnedConn(t, admin)
		_, err := c.ExecContext(ctx, "SET statement_timeout = 50; SELECT pg_sleep(5)")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("want 57014, got %v", err)
		}
		expect(t, err, detect.Alive)
		if _, err := c.ExecContext(ctx, "SELECT 1"); err != nil { // the session survived
			t.Fatalf("session did not survive 57014: %v", err)
		}
	})
	t.Run("real/caller deadline during pg_sleep", func(t *testing.T) {
		c := pinnedConn(t, admin)
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.ExecContext(cctx, "SELECT pg_sleep(5)")
		t.Logf("%T: %v (pgconn.Timeout=%v)", err, err, pgconn.Timeout(err))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded in chain, got %v", err)
		}
		expect(t, err, detect.Alive)
	})
	t.Run("real/caller cancel during pg_sleep", func(t *testing.T) {
		c := pinnedConn(t, admin)
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := c.ExecContext(cctx, "SELECT pg_sleep(5)")
		t.Logf("%T: %v", err, err)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want Canceled in chain, got %v", err)
		}
		expect(t, err, detect.Alive)
	})
	t.Run("real/57P01 pg_terminate_backend then query", func(t *testing.T) {
		for _, native := range []bool{false, true} {
			var pid int
			var run func() error
			if native {
				conn, err := pgx.Connect(ctx, pgDSN(pgAddr))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				pid = int(conn.PgConn().PID())
				run = func() error { _, err := conn.Exec(ctx, "SELECT 1"); return err }
			} else {
				c := pinnedConn(t, admin)
				if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
					t.Fatal(err)
				}
				run = func() error { _, err := c.ExecContext(ctx, "SELECT 1"); return err }
			}
			var ok bool // PostgreSQL 14+: wait up to 5 s for the backend to exit
			if err := admin.QueryRowContext(ctx, "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&ok); err != nil || !ok {
				t.Fatalf("terminate: %v %v", ok, err)
			}
			err := run()
			t.Logf("native=%v: %T: %v", native, err, err)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "57P01" {
				t.Fatalf("want 57P01, got %T %v", err, err)
			}
			expect(t, err, detect.Lost)
		}
	})
	t.Run("real/connect refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = pgx.Connect(ctx, pgDSN(addr))
		var ce *pgconn.ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("want *pgconn.ConnectError, got %T %v", err, err)
		}
		expect(t, err, detect.LostUnsent)
	})
	t.Run("real/connect: unknown database 3D000", func(t *testing.T) {
		_, err := pgx.Connect(ctx, "postgres://postgres@"+pgAddr+"/fg_no_such_db?sslmode=disable")
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Alive)
	})
	t.Run("real/connect: unknown role 28000", func(t *testing.T) {
		_, err := pgx.Connect(ctx, "postgres://fg_no_such_role@"+pgAddr+"/test?sslmode=disable")
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Alive)
	})
	t.Run("real/connect: server RSTs during startup", func(t *testing.T) {
		_, err := pgx.Connect(ctx, pgDSN(nettest.ServeOnce(t, nettest.RSTAfterByte)))
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.LostUnsent)
	})
}

func TestClassifierRealCuts(t *testing.T) {
	openPG(t, pgAddr)
	ctx := context.Background()
	for _, mode := range []string{"rst", "fin"} {
		t.Run("real/"+mode+" while the statement runs (database/sql): ErrBadConn although sent", func(t *testing.T) {
			// pgx v5.12.0 stdlib answers driver.ErrBadConn although the
			// proxy had forwarded the whole statement before the cut: the
			// bare sentinel is all a classifier sees, so it says
			// LostUnsent like for any ErrBadConn. This row pins the reason
			// the pool must gate pgx's unsent claims with
			// pool.Driver.ClosedAtStart (pool/conn.go observeOp).
			px := pooltest.NewCutProxy(t, pgAddr)
			db := openPG(t, px.Addr)
			c := pinnedConn(t, db)
			px.CutAfterNextRequest(mode == "rst")
			_, err := c.ExecContext(ctx, "SELECT pg_sleep(2)")
			t.Logf("%T: %v", err, err)
			if !px.CutDone() {
				t.Fatal("the proxy did not forward the statement before the cut")
			}
			if err != driver.ErrBadConn {
				t.Fatalf("pgx stdlib changed: got %T %v, want the bare driver.ErrBadConn; revisit the classifier doc", err, err)
			}
			expect(t, err, detect.LostUnsent)
		})
		t.Run("real/"+mode+" while the statement runs (native pgx)", func(t *testing.T) {
			px := pooltest.NewCutProxy(t, pgAddr)
			conn, err := pgx.Connect(ctx, pgDSN(px.Addr))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			px.CutAfterNextRequest(mode == "rst")
			_, err = conn.Exec(ctx, "SELECT pg_sleep(2)")
			t.Logf("%T: %v (SafeToRetry=%v)", err, err, pgconn.SafeToRetry(err))
			if !px.CutDone() {
				t.Fatal("the proxy did not forward the statement before the cut")
			}
			// Measured: connLockError "conn closed", SafeToRetry() == true,
			// although the statement was sent. Not believed: Lost.
			expect(t, err, detect.Lost)
		})
	}
	t.Run("real/socket closed by us while idle (Sever), then query", func(t *testing.T) {
		var mu sync.Mutex
		var socks []net.Conn
		cfg, err := pgx.ParseConfig(pgDSN(pgAddr))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				socks = append(socks, c)
				mu.Unlock()
			}
			return c, err
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		c := pinnedConn(t, db)
		if _, err := c.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for _, s := range socks {
			s.Close()
		}
		mu.Unlock()
		_, err = c.ExecContext(ctx, "SELECT 1")
		t.Logf("%T: %v", err, err)
		// pgx's write fails with n == 0, SafeToRetry, and stdlib answers
		// driver.ErrBadConn (stdlib/sql.go:510-514): truly unsent here.
		if !errors.Is(err, driver.ErrBadConn) {
			t.Fatalf("want driver.ErrBadConn, got %T %v", err, err)
		}
		expect(t, err, detect.LostUnsent)
	})
}
