package pgxadapter_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/waitfor"
	"github.com/flapguard/flapguard/pool"
)

// useConns runs every statement on each of n conns held at once, so the
// pool learns them (pgx prepares each on each conn) and keeps n idle.
func useConns(t *testing.T, db *sql.DB, n int, stmts ...func(*sql.Conn) error) {
	t.Helper()
	ctx := context.Background()
	var cs []*sql.Conn
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		for _, f := range stmts {
			if err := f(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range cs {
		c.Close()
	}
}

// rebuildAfterFlap blackholes the path, reports the pool's tunnel down
// (its check finds the path dead), brings the path back and reports it
// up, and waits until the rebuild has readied n conns and the gate is open.
func rebuildAfterFlap(t *testing.T, p *pool.Pool, px *rtProxy, n int) {
	t.Helper()
	before := p.Stats().Rebuilt
	px.hole.Store(true)
	v, err := p.NotifyWait(context.Background(), detect.Event{Tunnel: "t", State: detect.Down, Source: "test"})
	if err != nil || !v.Checked || v.PathOK || !p.Stats().TunnelDown {
		t.Fatalf("DOWN into a blackhole: verdict %v, %v, gate shut %v; want the path checked down", v, err, p.Stats().TunnelDown)
	}
	px.hole.Store(false)
	p.Notify(detect.Event{Tunnel: "t", State: detect.Up, Source: "test"})
	waitfor.True(t, fmt.Sprintf("%d conns rebuilt and the gate open", n), 10*time.Second, func() bool {
		s := p.Stats()
		return s.Rebuilt >= before+uint64(n) && !s.TunnelDown
	})
}

// After the pool is rebuilt, a statement its conns ran before costs one
// round trip on the first use of a new conn (prepared by the warm-up); a
// statement never seen costs two (prepare, then run), which shows the
// count can tell them apart.
func TestWarmedStatementCostsOneRoundTrip(t *testing.T) {
	requirePostgres(t)
	px := newRTProxy(t, "127.0.0.1:5432")
	p, err := pool.Open("pgx", "postgres://postgres@"+px.ln.Addr().String()+"/test?sslmode=disable", pool.Config{Tunnels: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := p.DB()
	ctx := context.Background()
	var x int
	useConns(t, db, 2, func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT $1::int + 1", 1).Scan(&x)
	})
	rebuildAfterFlap(t, p, px, 2)
	// Counted on one held conn only: not what its borrow costs (a liveness
	// ping, if this machine is slow), nor the supervisor's probes of other
	// conns meanwhile.
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var addr string
	if err := c.Raw(func(dc any) error {
		addr = pool.DriverConn(dc).(*stdlib.Conn).Conn().PgConn().Conn().LocalAddr().String()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	trips := func(sql string) int64 {
		before := px.tripsOf(addr)
		if err := c.QueryRowContext(ctx, sql, 1).Scan(&x); err != nil {
			t.Fatal(err)
		}
		return px.tripsOf(addr) - before
	}
	seen, unseen := trips("SELECT $1::int + 1"), trips("SELECT $1::int + 2")
	t.Logf("first use on a rebuilt conn: a statement the pool ran before %d round trip(s), one it never ran %d", seen, unseen)
	if seen != 1 || unseen != 2 {
		t.Fatalf("round trips: seen statement %d (want 1: warmed), unseen %d (want 2: prepare + run)", seen, unseen)
	}
}

// The warm-up prepares and never runs: statements that write, with and
// without parameters, are prepared on every rebuilt conn (the server lists
// them) and the table is unchanged; afterwards pgx's own batch path works
// with a warmed statement (a second Parse under its name would fail).
func TestWarmRunsNothing(t *testing.T) {
	requirePostgres(t)
	const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	table := fmt.Sprintf("flapguard_warm_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (v int)"); err != nil {
		t.Fatal(err)
	}
	defer admin.ExecContext(ctx, "DROP TABLE "+table)
	count := func() int {
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	px := newRTProxy(t, "127.0.0.1:5432")
	p, err := pool.Open("pgx", "postgres://postgres@"+px.ln.Addr().String()+"/test?sslmode=disable", pool.Config{Tunnels: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := p.DB()
	withParam := "INSERT INTO " + table + " VALUES ($1)"
	noParam := "INSERT INTO " + table + " VALUES (1) RETURNING v" // a query without arguments still goes through the cache
	useConns(t, db, 2, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, withParam, 1)
		return err
	}, func(c *sql.Conn) error {
		var v int
		return c.QueryRowContext(ctx, noParam).Scan(&v)
	})
	rows := count()
	rebuildAfterFlap(t, p, px, 2)

	var prepared int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_prepared_statements WHERE statement IN ($1, $2)", withParam, noParam).Scan(&prepared); err != nil {
		t.Fatal(err)
	}
	if n := count(); prepared != 2 || n != rows {
		t.Fatalf("after the warm-up: %d of the 2 statements prepared on the conn (want 2), %d rows (want %d: nothing run)", prepared, n, rows)
	}

	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		pc := pool.DriverConn(dc).(*stdlib.Conn).Conn()
		b := &pgx.Batch{}
		b.Queue(withParam, 7)
		b.Queue(withParam, 8)
		return pc.SendBatch(ctx, b).Close()
	})
	if err != nil {
		t.Fatalf("a batch of a warmed statement: %v", err)
	}
	if n := count(); n != rows+2 {
		t.Fatalf("%d rows after the batch; want %d", n, rows+2)
	}
	t.Logf("warm-up prepared %d statements, ran none (%d rows before and after); a batch of them then ran", prepared, rows)
}
