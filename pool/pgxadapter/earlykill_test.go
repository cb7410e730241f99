package pgxadapter_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// A session the server ends just after its first use (a failover, a pooler
// restart, pg_terminate_backend), and a request 100ms later: plain pgx
// recovers because it pings a conn at its first reuse
// (stdlib/sql.go:577-580); through the pool, which vouches for a conn used
// that recently and so saves that ping, the borrow's free look at the
// socket (borrowcheck.go) must find the server's FIN and hand database/sql
// driver.ErrBadConn, so it retries on a new conn. Neither may see an
// error, and through the pool the write must land exactly once.
func TestEarlyKillRecoversLikePlain(t *testing.T) {
	requirePostgres(t)
	const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS flapguard_earlykill (who text, n int)"); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, who string, db *sql.DB, afterKill func()) {
		t.Helper()
		if _, err := admin.ExecContext(ctx, "DELETE FROM flapguard_earlykill WHERE who = $1", who); err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if err := admin.QueryRowContext(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
		}
		time.Sleep(100 * time.Millisecond)
		afterKill()
		if _, err := db.ExecContext(ctx, "INSERT INTO flapguard_earlykill VALUES ($1, 1)", who); err != nil {
			t.Fatalf("%s: the request after the server ended the session failed: %v", who, err)
		}
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM flapguard_earlykill WHERE who = $1", who).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%s: %d rows written (err %v); want exactly 1", who, n, err)
		}
	}
	t.Run("plain", func(t *testing.T) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		run(t, "plain", db, func() {})
	})
	t.Run("flapguard", func(t *testing.T) {
		p, err := pool.Open("pgx", dsn, pool.Config{ProbeInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		run(t, "flapguard", p.DB(), func() {
			// Stats adds up before anyone borrows: database/sql holds one
			// conn, and the pool knows its session is gone.
			if st := p.Stats(); st.OpenConnections != 1 || st.Gone != 1 || st.OwnSessions != 0 {
				t.Errorf("before the borrow: open=%d gone=%d own=%d; want 1, 1, 0", st.OpenConnections, st.Gone, st.OwnSessions)
			}
		})
		st := p.Stats()
		if st.GoneAtBorrow != 1 || st.ConnsLost != 0 {
			t.Fatalf("GoneAtBorrow=%d ConnsLost=%d; want the borrow to have found the closed session (1) and no lost statement (0)", st.GoneAtBorrow, st.ConnsLost)
		}
		if st.OpenConnections != 1 || st.Gone != 0 {
			t.Fatalf("open=%d gone=%d after the retry; want 1 live conn, none gone", st.OpenConnections, st.Gone)
		}
	})
}
