package mysqladapter_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// On a healthy path, a write whose caller's deadline passes while the
// server still runs it is left to the server, as plain database/sql leaves
// it: MariaDB finishes the INSERT … SELECT SLEEP(2) and the row is written.
// The pool must not reap (KILL) that session: orphan reaping is for
// sessions a dead path left behind.
func TestTimedOutWriteOnHealthyPathIsKept(t *testing.T) {
	const addr = "127.0.0.1:3306"
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		if os.Getenv("FLAPGUARD_LAB") == "require" || os.Getenv("CI") != "" {
			t.Fatalf("MariaDB on %s not reachable: %v", addr, err)
		}
		t.Skipf("MariaDB on %s not reachable: %v", addr, err)
	} else {
		c.Close()
	}
	dsn := "root@tcp(" + addr + ")/test"
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	table := fmt.Sprintf("fg_timeout_%d", rand.Uint32())
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (side VARCHAR(16) PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	defer admin.ExecContext(ctx, "DROP TABLE "+table)

	p, err := pool.Open("mysql", dsn, pool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	plain, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	write := func(db *sql.DB, side string) error {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := db.ExecContext(cctx, "INSERT INTO "+table+" SELECT ? FROM (SELECT SLEEP(2)) s", side)
		return err
	}
	for side, db := range map[string]*sql.DB{"plain": plain, "flapguard": p.DB()} {
		if err := write(db, side); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: err = %v; want the caller's deadline", side, err)
		}
	}
	// Keep the flapguard pool busy meanwhile, so its supervisor runs (and
	// would reap, if it thought the session an orphan).
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.DB().PingContext(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows := map[string]bool{}
	rs, err := admin.QueryContext(ctx, "SELECT side FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var s string
		rs.Scan(&s)
		rows[s] = true
	}
	rs.Close()
	t.Logf("rows written by the server after the callers gave up: %v; pool reaped %d sessions", rows, p.Stats().OrphansReaped)
	if !rows["plain"] {
		t.Fatal("plain database/sql's write was not finished by the server: the test does not show what it should")
	}
	if !rows["flapguard"] || p.Stats().OrphansReaped != 0 {
		t.Fatalf("flapguard's timed-out write on a healthy path: written %v, sessions reaped %d; want it kept as plain does", rows["flapguard"], p.Stats().OrphansReaped)
	}
}
