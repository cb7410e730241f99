package mysqladapter

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

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/nettest"
	"github.com/flapguard/flapguard/internal/pooltest"
)

// Rows named "real/..." are errors returned by go-sql-driver/mysql talking
// to the machine's MariaDB (127.0.0.1:3306, root without password, db test),
// directly or through the cutting proxy below; "constructed/..." rows are
// built by hand.

const myAddr = "127.0.0.1:3306"

func myDSN(addr string) string { return "root@tcp(" + addr + ")/test?timeout=5s" }

func classify(err error) detect.Verdict { return detect.Classify(err, classifier) }

func expect(t *testing.T, err error, want detect.Verdict) {
	t.Helper()
	if got := classify(err); got != want {
		t.Fatalf("classify(%T %v) = %v, want %v", err, err, got, want)
	}
}

func init() { mysql.SetLogger(&mysql.NopLogger{}) }

func TestClassifierConstructed(t *testing.T) {
	my := func(n uint16) error { return &mysql.MySQLError{Number: n} }
	tests := []struct {
		name string
		err  error
		want detect.Verdict
	}{
		{"constructed/ErrInvalidConn", mysql.ErrInvalidConn, detect.Lost},
		{"constructed/ErrPktSync", mysql.ErrPktSync, detect.Lost},
		{"constructed/ErrMalformPkt", mysql.ErrMalformPkt, detect.Lost},
		{"constructed/io.ErrShortWrite", io.ErrShortWrite, detect.Lost},
		{"constructed/errBadConnNoWrite look-alike", errors.New("bad connection"), detect.Lost},
		{"constructed/wrapped \"bad connection\" text is not the sentinel", fmt.Errorf("x: %w", errors.New("y bad connection")), detect.Alive},
		{"constructed/ErrBadConn", driver.ErrBadConn, detect.LostUnsent},
		{"constructed/1053 server shutdown", my(1053), detect.Lost},
		{"constructed/2006 gone away", my(2006), detect.Lost},
		{"constructed/2013 lost during query", my(2013), detect.Lost},
		{"constructed/1927 connection killed", my(1927), detect.Lost},
		{"constructed/3169 session was killed", my(3169), detect.Lost},
		{"constructed/4031 interaction timeout", my(4031), detect.Lost},
		{"constructed/1317 query interrupted", my(1317), detect.Alive},
		{"constructed/1969 statement timeout", my(1969), detect.Alive},
		{"constructed/1062 duplicate", my(1062), detect.Alive},
		{"constructed/1213 deadlock", my(1213), detect.Alive},
		{"constructed/1205 lock wait timeout", my(1205), detect.Alive},
		{"constructed/1045 access denied", my(1045), detect.Alive},
		{"constructed/nil *MySQLError", (*mysql.MySQLError)(nil), detect.Alive},
		{"constructed/join 1062 + ErrInvalidConn", errors.Join(my(1062), mysql.ErrInvalidConn), detect.Lost},
		{"constructed/wrapped 1213", fmt.Errorf("tx: %w", my(1213)), detect.Alive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, tt.err, tt.want) })
	}
	if v := classifier.Classify(errors.New("unknown")); v != detect.Continue {
		t.Fatalf("unrecognised error: %v, want continue", v)
	}
	dup := my(1062)
	if n := testing.AllocsPerRun(100, func() { classifier.Classify(dup) }); n != 0 {
		t.Fatalf("%v allocations per Classify, want 0", n)
	}
}

func openMy(t *testing.T, addr string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", myDSN(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Skipf("MariaDB not reachable at %s: %v", addr, err)
	}
	return db
}

func pinnedConn(t *testing.T, db *sql.DB) (*sql.Conn, int64) {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var id int64
	if err := c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return c, id
}

// waitRunning polls the process list until connection id runs a statement
// containing marker: a condition, not a timed guess.
func waitRunning(t *testing.T, admin *sql.DB, id int64, marker string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE ?", id, "%"+marker+"%").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("connection %d never ran %q", id, marker)
}

// waitGone polls until connection id has left the process list.
func waitGone(t *testing.T, admin *sql.DB, id int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("connection %d still present", id)
}

func TestClassifierRealMariaDB(t *testing.T) {
	admin := openMy(t, myAddr)
	ctx := context.Background()

	t.Run("real/1062 duplicate key", func(t *testing.T) {
		c, _ := pinnedConn(t, admin)
		if _, err := c.ExecContext(ctx, "CREATE TEMPORARY TABLE fg_cls_u (id INT PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		c.ExecContext(ctx, "INSERT INTO fg_cls_u VALUES (1)")
		_, err := c.ExecContext(ctx, "INSERT INTO fg_cls_u VALUES (1)")
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1062 {
			t.Fatalf("want 1062, got %v", err)
		}
		expect(t, err, detect.Alive)
	})
	t.Run("real/KILL QUERY during a statement", func(t *testing.T) {
		c, id := pinnedConn(t, admin)
		done := make(chan error, 1)
		go func() {
			_, err := c.ExecContext(ctx, "SELECT SUM(seq % 7), 'fg_kill_query' FROM seq_1_to_1000000000000")
			done <- err
		}()
		waitRunning(t, admin, id, "fg_kill_query")
		if _, err := admin.Exec(fmt.Sprintf("KILL QUERY %d", id)); err != nil {
			t.Fatal(err)
		}
		err := <-done
		t.Logf("%T: %v", err, err)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1317 {
			t.Fatalf("want 1317, got %T %v", err, err)
		}
		expect(t, err, detect.Alive)
		if _, err := c.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatalf("session did not survive KILL QUERY: %v", err)
		}
	})
	t.Run("real/KILL CONNECTION while idle, then query", func(t *testing.T) {
		c, id := pinnedConn(t, admin)
		if _, err := admin.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		waitGone(t, admin, id)
		_, err := c.ExecContext(ctx, "SELECT 1")
		t.Logf("%T: %v", err, err)
		if err == nil {
			t.Fatal("query on a killed connection succeeded")
		}
		if v := classify(err); !v.IsLost() {
			t.Fatalf("classify(%T %v) = %v, want lost", err, err, v)
		}
	})
	t.Run("real/KILL CONNECTION during a statement", func(t *testing.T) {
		c, id := pinnedConn(t, admin)
		done := make(chan error, 1)
		go func() {
			_, err := c.ExecContext(ctx, "SELECT BENCHMARK(100000000000, MD5('fg_kill_conn'))")
			done <- err
		}()
		waitRunning(t, admin, id, "fg_kill_conn")
		if _, err := admin.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		err := <-done
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Lost)
	})
	t.Run("real/caller deadline during SLEEP", func(t *testing.T) {
		c, _ := pinnedConn(t, admin)
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.ExecContext(cctx, "SELECT SLEEP(5)")
		t.Logf("%T: %v", err, err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded, got %T %v", err, err)
		}
		expect(t, err, detect.Alive)
	})
	t.Run("real/connect refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		err = connectErr(t, addr, "test")
		expect(t, err, detect.LostUnsent)
	})
	t.Run("real/connect: unknown database 1049", func(t *testing.T) {
		err := connectErr(t, myAddr, "fg_no_such_db")
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1049 {
			t.Fatalf("want 1049, got %T %v", err, err)
		}
		expect(t, err, detect.Alive)
	})
	t.Run("real/connect: server RSTs during handshake", func(t *testing.T) {
		// MySQL's server speaks first, so the fake resets at once; the RST
		// can beat the client's connect completion (then the dial itself
		// fails with ECONNRESET). Both outcomes are real and judged.
		err := connectErr(t, nettest.ServeOnce(t, nettest.RST), "test")
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			expect(t, err, detect.LostUnsent)
		} else {
			expect(t, err, detect.Lost) // a raw read error; see detect.ConnectError
		}
		expect(t, &detect.ConnectError{Err: err}, detect.LostUnsent)
	})
}

func connectErr(t *testing.T, addr, db string) error {
	t.Helper()
	cfg, err := mysql.ParseDSN("root@tcp(" + addr + ")/" + db + "?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.Connect(context.Background())
	if err == nil {
		c.Close()
		t.Fatal("connect succeeded")
	}
	t.Logf("%T: %v", err, err)
	return err
}

func TestClassifierRealCuts(t *testing.T) {
	openMy(t, myAddr)
	ctx := context.Background()
	for _, mode := range []string{"rst", "fin"} {
		t.Run("real/"+mode+" while the statement runs", func(t *testing.T) {
			px := pooltest.NewCutProxy(t, myAddr)
			db := openMy(t, px.Addr)
			c, _ := pinnedConn(t, db)
			px.CutAfterNextRequest(mode == "rst")
			_, err := c.ExecContext(ctx, "SELECT SLEEP(2)")
			t.Logf("%T: %v", err, err)
			if !px.CutDone() {
				t.Fatal("the proxy did not forward the statement before the cut")
			}
			if !errors.Is(err, mysql.ErrInvalidConn) {
				t.Fatalf("want ErrInvalidConn, got %T %v", err, err)
			}
			expect(t, err, detect.Lost)
		})
	}
	t.Run("real/socket closed by us while idle (Sever), then query", func(t *testing.T) {
		var mu sync.Mutex
		var socks []net.Conn
		cfg, err := mysql.ParseDSN(myDSN(myAddr))
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
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		c, _ := pinnedConn(t, db)
		mu.Lock()
		for _, s := range socks {
			s.Close()
		}
		mu.Unlock()
		_, err = c.ExecContext(ctx, "SELECT 1")
		t.Logf("%T: %v", err, err)
		// The first packet wrote 0 bytes: errBadConnNoWrite -> ErrBadConn
		// (packets.go:147-157, connection.go:129-136).
		if !errors.Is(err, driver.ErrBadConn) {
			t.Fatalf("want driver.ErrBadConn, got %T %v", err, err)
		}
		expect(t, err, detect.LostUnsent)
	})
}
