package tdsserver

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	waitfortest "github.com/flapguard/flapguard/internal/waitfor"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes; it waits for an
// asynchronous effect, it does not decide an outcome by sleeping.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waitfortest.True(t, what, d, cond)
}

func conn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func spidOf(t *testing.T, c *sql.Conn) int {
	t.Helper()
	var spid int
	if err := c.QueryRowContext(testCtx(t, 5*time.Second), "SELECT @@SPID").Scan(&spid); err != nil {
		t.Fatal(err)
	}
	return spid
}

func TestLoginPingSelect1(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	ctx := testCtx(t, 5*time.Second)
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	for _, q := range []string{"select 1", "SELECT 1;", "  Select\n1 ; "} {
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%q: n=%d err=%v", q, n, err)
		}
	}
	infos := srv.Sessions()
	if len(infos) != 1 || infos[0].User != "sa" || infos[0].Database != "test" || infos[0].SPID < 51 {
		t.Fatalf("sessions: %+v", infos)
	}
}

func TestSPIDPerConnectionAndDisappearsOnClose(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	a, b := conn(t, db), conn(t, db)
	sa, sb := spidOf(t, a), spidOf(t, b)
	if sa < 51 || sb < 51 || sa == sb {
		t.Fatalf("SPIDs %d and %d: want distinct and >= 51", sa, sb)
	}
	got := map[int]bool{}
	for _, in := range srv.Sessions() {
		got[in.SPID] = true
	}
	if len(got) != 2 || !got[sa] || !got[sb] {
		t.Fatalf("Sessions() = %+v, want SPIDs %d and %d", srv.Sessions(), sa, sb)
	}
	_ = a.Close()
	_ = b.Close()
	_ = db.Close()
	waitFor(t, "sessions to disappear", 5*time.Second, func() bool { return srv.SessionCount() == 0 })
	if len(srv.Sessions()) != 0 {
		t.Fatalf("Sessions() after close: %+v", srv.Sessions())
	}
}

func TestParametrisedInsertCountDelete(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	ctx := testCtx(t, 5*time.Second)
	exec := func(q string, want int64, args ...any) {
		t.Helper()
		res, err := db.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != want {
			t.Fatalf("%s: RowsAffected = %d, %v; want %d", q, n, err, want)
		}
	}
	count := func(q string, want int, args ...any) {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil || n != want {
			t.Fatalf("%s: count = %d, %v; want %d", q, n, err, want)
		}
	}
	count("SELECT COUNT(*) FROM orders", 0)
	exec("INSERT INTO orders (id) VALUES (@p1)", 1, 5)            // RPC sp_executesql
	exec("insert into dbo.[Orders] values (7), (8), (@p1)", 3, 5) // mixed literals and a parameter
	exec("INSERT INTO orders (id) VALUES (@id)", 1, sql.Named("id", int64(9)))
	count("SELECT COUNT(*) FROM orders", 5)
	count("SELECT COUNT(*) FROM orders WHERE id = @p1", 2, 5)
	count("select count(*) from ORDERS where id = 7", 1)
	if got := srv.TableIDs("orders"); len(got) != 5 || got[0] != 5 || got[4] != 9 {
		t.Fatalf("TableIDs = %v", got)
	}
	exec("DELETE FROM orders WHERE id = @p1", 2, 5)
	exec("DELETE FROM orders", 3)
	count("SELECT COUNT(*) FROM orders", 0)

	// A string where an id is expected is a SQL error, not a dead session.
	_, err := db.ExecContext(ctx, "INSERT INTO orders (id) VALUES (@p1)", "x")
	var me mssql.Error
	if !errors.As(err, &me) || me.Number != 245 {
		t.Fatalf("string id: err = %v, want mssql.Error 245", err)
	}
}

func TestUnknownStatementKeepsSession(t *testing.T) {
	srv := startServer(t, Config{})
	c := conn(t, openDB(t, srv, ""))
	ctx := testCtx(t, 5*time.Second)
	before := spidOf(t, c)
	for _, q := range []string{"SELECT name FROM sys.tables", "update t set x = 1"} {
		_, err := c.ExecContext(ctx, q)
		var me mssql.Error
		if !errors.As(err, &me) || me.Number != 102 || me.Class != 15 {
			t.Fatalf("%q: err = %#v, want mssql.Error 102 class 15", q, err)
		}
	}
	_, err := c.ExecContext(ctx, "sp_who") // one word: go-mssqldb sends an RPC by name
	var me mssql.Error
	if !errors.As(err, &me) || me.Number != 2812 {
		t.Fatalf("sp_who: err = %v, want 2812", err)
	}
	if after := spidOf(t, c); after != before {
		t.Fatalf("session changed from %d to %d after SQL errors", before, after)
	}
}

func TestHandler(t *testing.T) {
	srv := startServer(t, Config{Handler: func(ctx context.Context, s *Session, q string, args []any) (bool, *Result, error) {
		switch {
		case q == "select whoami":
			return true, &Result{Columns: []string{"spid", "user", "db", "ok", "f", "b", "nothing"},
				Rows: [][]any{{s.SPID(), s.User(), s.Database(), true, 1.5, []byte{1, 2}, nil}}}, nil
		case q == "echo @p1, @p2":
			return true, &Result{Columns: []string{"a", "b"}, Rows: [][]any{args}}, nil
		case q == "raise":
			return true, nil, &SQLError{Number: 50001, State: 1, Class: 16, Message: "raised"}
		case q == "fatal":
			return true, nil, &SQLError{Number: 50002, State: 1, Class: 20, Message: "fatal"}
		case q == "bad result":
			return true, &Result{Columns: []string{"x"}, Rows: [][]any{{struct{}{}}}}, nil
		}
		return false, nil, nil
	}})
	c := conn(t, openDB(t, srv, ""))
	ctx := testCtx(t, 5*time.Second)

	var (
		spid       int
		user, db   string
		ok         bool
		f          float64
		b          []byte
		nothing    sql.NullInt64
		a1         int64
		a2         string
		me         mssql.Error
		serverFail mssql.ServerError
	)
	if err := c.QueryRowContext(ctx, "select whoami").Scan(&spid, &user, &db, &ok, &f, &b, &nothing); err != nil {
		t.Fatal(err)
	}
	if spid != spidOf(t, c) || user != "sa" || db != "test" || !ok || f != 1.5 || len(b) != 2 || nothing.Valid {
		t.Fatalf("whoami: %d %q %q %v %v %v %v", spid, user, db, ok, f, b, nothing)
	}
	if err := c.QueryRowContext(ctx, "echo @p1, @p2", 42, "zß€").Scan(&a1, &a2); err != nil || a1 != 42 || a2 != "zß€" {
		t.Fatalf("echo: %d %q %v", a1, a2, err)
	}
	if _, err := c.ExecContext(ctx, "raise"); !errors.As(err, &me) || me.Number != 50001 || me.Message != "raised" {
		t.Fatalf("raise: %v", err)
	}
	if _, err := c.ExecContext(ctx, "bad result"); !errors.As(err, &me) || me.Number != 50000 {
		t.Fatalf("bad result: %v", err)
	}
	if _, err := c.ExecContext(ctx, "select 1"); err != nil { // built-ins still answer
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "fatal"); !errors.As(err, &serverFail) || !errors.As(err, &me) || me.Class != 20 {
		t.Fatalf("fatal: %v, want ServerError wrapping class 20", err)
	}
	waitFor(t, "the fatal error to end the session", 5*time.Second, func() bool { return srv.SessionCount() == 0 })
}

// TestPacketSizeNegotiation makes requests and replies span many 512-byte
// packets, the smallest size go-mssqldb negotiates.
func TestPacketSizeNegotiation(t *testing.T) {
	long := strings.Repeat("é", 3000)
	srv := startServer(t, Config{Handler: func(ctx context.Context, s *Session, q string, args []any) (bool, *Result, error) {
		if strings.HasPrefix(q, "long") {
			return true, &Result{Columns: []string{"s", "n"}, Rows: [][]any{{long, int64(len(q))}, {long, nil}}}, nil
		}
		return false, nil, nil
	}})
	db := openDB(t, srv, "&packet+size=512")
	ctx := testCtx(t, 5*time.Second)
	q := "long" + strings.Repeat(" ", 2000)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var s string
		var l sql.NullInt64
		if err := rows.Scan(&s, &l); err != nil {
			t.Fatal(err)
		}
		if s != long {
			t.Fatalf("row %d: string of %d runes", n, len([]rune(s)))
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 2 {
		t.Fatalf("rows: n=%d err=%v", n, err)
	}

	// On the wire: every reply packet is at most the negotiated size and
	// carries the session's SPID, numbered from 1.
	rc := dialRaw(t, srv)
	rc.login(512)
	rc.send(packSQLBatch, 0, 512, batchPayload(q))
	payload, hdrs := rc.recv()
	if len(hdrs) < 10 {
		t.Fatalf("reply of %d bytes came in %d packets", len(payload), len(hdrs))
	}
	spid := hdrs[0].spid
	for i, h := range hdrs {
		if h.typ != packReply || h.size > 512 || h.spid != spid || h.id != byte(i+1) {
			t.Fatalf("packet %d: %+v", i, h)
		}
	}
	if spid < 51 {
		t.Fatalf("spid %d in packet header", spid)
	}
}

func TestTransactionsAndResetConnection(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	db.SetMaxOpenConns(1)
	ctx := testCtx(t, 5*time.Second)
	for _, commit := range []bool{true, false} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO t (id) VALUES (@p1)", 1); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatalf("commit=%v: %v", commit, err)
		}
	}
	// Every reuse of the pooled conn sets RESETCONNECTION (mssql_go110.go:19).
	for range 3 {
		if _, err := db.ExecContext(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	infos := srv.Sessions()
	if len(infos) != 1 || infos[0].Resets < 3 {
		t.Fatalf("sessions: %+v, want one with >= 3 resets", infos)
	}
}
