//go:build linux

package lab

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func TestPostgresInDB(t *testing.T) {
	l := New(t)
	pg := l.StartPostgres(t)
	if !strings.Contains(pg.DSN(), l.DBAddr().String()+":5432") {
		t.Fatalf("DSN %q does not point at the db address", pg.DSN())
	}
	cfg, err := pgx.ParseConfig(pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = l.DialApp
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The server sees the app address: the query went app -> vpn -> db.
	var client string
	if err := db.QueryRowContext(ctx, `SELECT host(inet_client_addr())`).Scan(&client); err != nil {
		t.Fatal(err)
	}
	if client != l.AppAddr().String() {
		t.Fatalf("server saw client %s, want %s", client, l.AppAddr())
	}
	if n, err := pg.SessionsFrom(ctx, l.AppAddr()); err != nil || n != 1 {
		t.Fatalf("SessionsFrom(app) = %d, %v, want 1", n, err)
	}

	// The admin path bypasses faults.
	if err := l.Blackhole(); err != nil {
		t.Fatal(err)
	}
	if n, err := pg.SessionsFrom(ctx, l.AppAddr()); err != nil || n != 1 {
		t.Fatalf("SessionsFrom under blackhole = %d, %v, want 1", n, err)
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}

	oldPID := pg.PID()
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	if pg.PID() == oldPID || !pidGone(oldPID) {
		t.Fatalf("Restart kept pid %d (now %d)", oldPID, pg.PID())
	}
	if n, err := pg.SessionsFrom(ctx, l.AppAddr()); err != nil || n != 0 {
		t.Fatalf("SessionsFrom after restart = %d, %v, want 0", n, err)
	}
	var one int
	// database/sql retries a conn the driver reports bad; pgx reports the
	// conn the restart closed as such, so this lands on a fresh one.
	if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("query after restart = %d, %v", one, err)
	}
}

func TestMariaDBInDB(t *testing.T) {
	l := New(t)
	my := l.StartMariaDB(t)
	dsnCfg, err := mysql.ParseDSN(my.DSN())
	if err != nil {
		t.Fatal(err)
	}
	dsnCfg.DialFunc = l.DialApp
	conn, err := mysql.NewConnector(dsnCfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var user string
	var id int64
	if err := c.QueryRowContext(ctx, `SELECT USER(), CONNECTION_ID()`).Scan(&user, &id); err != nil {
		t.Fatal(err)
	}
	if want := "root@" + l.AppAddr().String(); user != want {
		t.Fatalf("USER() = %q, want %q", user, want)
	}
	if n, err := my.SessionsFrom(ctx, l.AppAddr()); err != nil || n != 1 {
		t.Fatalf("SessionsFrom(app) = %d, %v, want 1", n, err)
	}
	// Real grants: KILL works on the app's session (as the pool's sever
	// tests will need), unlike under --skip-grant-tables.
	if _, err := my.Admin().ExecContext(ctx, "KILL "+strconv.FormatInt(id, 10)); err != nil {
		t.Fatalf("KILL: %v", err)
	}
	if err := c.PingContext(ctx); err == nil {
		t.Fatal("killed session still answers")
	}
	// The killed thread leaves PROCESSLIST asynchronously: wait, bounded.
	waitSessions(t, func() (int, error) { return my.SessionsFrom(ctx, l.AppAddr()) }, 0)

	if err := my.Restart(); err != nil {
		t.Fatal(err)
	}
	var one int
	if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("query after restart = %d, %v", one, err)
	}
}

// TestNothingSurvivesCleanup runs a lab with both servers in a subtest, then
// checks with the recorded pids that every server process is gone, and that
// the namespaces and work directory are too.
func TestNothingSurvivesCleanup(t *testing.T) {
	Require(t)
	var pids []int
	var names []string
	var workDir string
	t.Run("lab", func(t *testing.T) {
		start := time.Now()
		l := New(t)
		pg := l.StartPostgres(t)
		my := l.StartMariaDB(t)
		t.Logf("lab + postgres + mariadb ready in %v", time.Since(start).Round(time.Millisecond))
		if err := pg.Restart(); err != nil { // two postmaster pids to check
			t.Fatal(err)
		}
		pids = append(append(pids, pg.PIDs()...), my.PIDs()...)
		app, vpn, db := l.Namespaces()
		names = []string{app, vpn, db}
		workDir = l.workDir
		for _, p := range []int{pg.PID(), my.PID()} {
			if pidGone(p) {
				t.Fatalf("server pid %d not running", p)
			}
		}
	})
	if len(pids) != 3 {
		t.Fatalf("recorded pids %v, want 3", pids)
	}
	for _, p := range pids {
		if !pidGone(p) {
			t.Errorf("server pid %d survived cleanup", p)
		}
	}
	for _, ns := range names {
		if _, err := os.Stat(netnsDir + "/" + ns); err == nil {
			t.Errorf("namespace %s survived cleanup", ns)
		}
	}
	if _, err := os.Stat(workDir); err == nil {
		t.Errorf("work dir %s survived cleanup", workDir)
	}
}

// waitSessions polls count until it returns want, for at most 10 s.
func waitSessions(t *testing.T, count func() (int, error), want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := count()
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions = %d, %v; want %d", n, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSecondServerOfAKindIsRefused(t *testing.T) {
	l := New(t)
	l.StartPostgres(t)
	if _, err := l.startPostgres(t, PostgresPort); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second StartPostgres = %v, want a clear refusal", err)
	}
}

// TestCloseAppConnsUnblocksHungQuery is the seed failure in miniature with
// plain database/sql: after a rekey the pooled conn is dead, a query on it
// hangs with no deadline, and only CloseAppConns gets the goroutine back.
func TestCloseAppConnsUnblocksHungQuery(t *testing.T) {
	l := New(t)
	pg := l.StartPostgres(t)
	cfg, err := pgx.ParseConfig(pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = l.DialApp
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := l.RekeyBlackhole(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var one int
		done <- db.QueryRow(`SELECT 1`).Scan(&one) // no context: hangs like production code
	}()
	select {
	case err := <-done:
		t.Fatalf("query on a rekey-killed conn returned %v; it should hang", err)
	case <-time.After(2 * time.Second):
	}
	if n := l.CloseAppConns(); n != 1 {
		t.Errorf("CloseAppConns closed %d conns, want 1", n)
	}
	select {
	case err := <-done:
		// What hangs is pgx's borrow-time liveness Ping (conn idle > 1 s,
		// pgx stdlib/sql.go:580-591). Once its socket is closed the Ping
		// fails, ResetSession returns driver.ErrBadConn and database/sql
		// retries on a fresh conn, which crosses the healed tunnel: so the
		// query may well succeed, but only on a new flow. (pgconn may also
		// dial one for a CancelRequest, hence "at least".)
		if err == nil && l.AppConns() < 1 {
			t.Fatalf("query succeeded without a fresh conn (%d dialled since close)", l.AppConns())
		}
		t.Logf("unblocked query returned %v with %d fresh conns", err, l.AppConns())
	case <-time.After(5 * time.Second):
		t.Fatal("CloseAppConns did not unblock the hung query")
	}
}
