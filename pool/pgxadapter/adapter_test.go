package pgxadapter_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/internal/faultproxy"
	"github.com/flapguard/flapguard/internal/pooltest"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/pgxadapter"
)

// Against the machine's PostgreSQL on 127.0.0.1:5432 (trust auth, db test).
func TestRealPostgres(t *testing.T) {
	pooltest.Run(t, pooltest.Target{
		Driver:           "pgx",
		Addr:             "127.0.0.1:5432",
		DSN:              func(addr string) string { return "postgres://postgres@" + addr + "/test?sslmode=disable" },
		SleepSQL:         "SELECT pg_sleep(30)",
		SessionIDSQL:     "SELECT pg_backend_pid()",
		SessionExistsSQL: "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
		AdminDriver:      "pgx",
	})
}

// TestSafeToRetryAfterSend shows, side by side on the same server and
// fault, that plain database/sql + pgx stdlib runs a statement twice when
// the connection is reset while it runs (pgx reports the loss as safe to
// retry), and that flapguard reports the outcome as unknown and runs it
// once. The sequence is not transactional, so it counts executions even
// when the connection dies.
func TestSafeToRetryAfterSend(t *testing.T) {
	const addr = "127.0.0.1:5432"
	admin, err := sql.Open("pgx", "postgres://postgres@"+addr+"/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Ping(); err != nil {
		t.Skipf("PostgreSQL not reachable at %s: %v", addr, err)
	}
	ctx := context.Background()
	run := func(t *testing.T, name string, open func(dsn string) (*sql.DB, func())) (executions int64, err error) {
		seq := "fg_retry_" + name
		if _, err := admin.Exec("DROP SEQUENCE IF EXISTS " + seq + "; CREATE SEQUENCE " + seq); err != nil {
			t.Fatal(err)
		}
		px, perr := faultproxy.New(addr)
		if perr != nil {
			t.Fatal(perr)
		}
		defer px.Close()
		db, closeFn := open("postgres://postgres@" + px.Addr() + "/test?sslmode=disable")
		defer closeFn()
		time.AfterFunc(300*time.Millisecond, func() { px.ResetAll() })
		_, err = db.ExecContext(ctx, "SELECT nextval('"+seq+"'), pg_sleep(1)")
		time.Sleep(1200 * time.Millisecond) // let a duplicate finish
		if qerr := admin.QueryRow("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " + seq).Scan(&executions); qerr != nil {
			t.Fatal(qerr)
		}
		return executions, err
	}
	plainN, plainErr := run(t, "plain", func(dsn string) (*sql.DB, func()) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db, func() { db.Close() }
	})
	fgN, fgErr := run(t, "flapguard", func(dsn string) (*sql.DB, func()) {
		p, err := pool.Open("pgx", dsn, pool.Config{ProbeInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return p.DB(), func() { p.Close() }
	})
	t.Logf("RST mid-statement: plain database/sql ran it %d time(s), err=%v", plainN, plainErr)
	t.Logf("RST mid-statement: flapguard       ran it %d time(s), err=%v", fgN, fgErr)
	if fgN != 1 || !errors.Is(fgErr, pool.ErrOutcomeUnknown) {
		t.Fatalf("flapguard: %d executions, err %v; want 1 and ErrOutcomeUnknown", fgN, fgErr)
	}
	if plainN < 2 {
		t.Logf("note: plain database/sql did not duplicate this time (pgx behaviour changed?)")
	}
}
