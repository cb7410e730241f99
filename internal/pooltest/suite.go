// Package pooltest holds the real-driver checks every adapter runs against
// a real server: reset, sever with a query in flight, and liveness over a
// blackholed flow (through internal/faultproxy on loopback).
package pooltest

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/flapguard/flapguard/internal/waitfor"
	"time"

	"github.com/flapguard/flapguard/internal/faultproxy"
	"github.com/flapguard/flapguard/pool"
)

// Target describes a real server for one driver.
type Target struct {
	Driver   string                   // pool driver name ("pgx", "mysql")
	Addr     string                   // host:port of the real server
	DSN      func(addr string) string // a DSN pointing at addr
	SleepSQL string                   // a statement that sleeps ~30s server-side
	// SessionIDSQL returns the current session's server id; SessionExistsSQL
	// counts the sessions with the id given as its one argument.
	SessionIDSQL, SessionExistsSQL string
	AdminDriver                    string // database/sql driver name for a plain admin pool
	// Orphans is the pool's Config.Orphans in the orphan check: OrphansOn
	// where OrphansAuto leaves reaping off (SQL Server).
	Orphans pool.OrphanMode
}

// Reachable skips t when the server does not accept TCP.
func (tg Target) Reachable(t *testing.T) {
	c, err := net.DialTimeout("tcp", tg.Addr, time.Second)
	if err != nil {
		t.Skipf("%s server %s not reachable: %v", tg.Driver, tg.Addr, err)
	}
	c.Close()
}

func open(t *testing.T, tg Target, addr string, cfg pool.Config) *pool.Pool {
	t.Helper()
	p, err := pool.Open(tg.Driver, tg.DSN(addr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Run runs every check as a subtest.
func Run(t *testing.T, tg Target) {
	tg.Reachable(t)
	t.Run("Reset", func(t *testing.T) { testReset(t, tg) })
	t.Run("SeverInFlight", func(t *testing.T) { testSever(t, tg) })
	t.Run("LivenessOverBlackhole", func(t *testing.T) { testLiveness(t, tg) })
	t.Run("OrphansReaped", func(t *testing.T) { testOrphans(t, tg) })
}

// testOrphans: two pooled sessions whose flows a rekey kills stay on the
// server (it never hears of their end); once the pool has recovered it
// ends them, and the server confirms they are gone.
func testOrphans(t *testing.T, tg Target) {
	admin, err := sql.Open(tg.AdminDriver, tg.DSN(tg.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	px, err := faultproxy.New(tg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	p := open(t, tg, px.Addr(), pool.Config{ProbeInterval: 100 * time.Millisecond, LivenessIdle: 10 * time.Millisecond, Orphans: tg.Orphans})
	db := p.DB()
	db.SetMaxIdleConns(4)
	ctx := context.Background()
	var ids []int64
	var conns []*sql.Conn
	for range 2 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := c.QueryRowContext(ctx, tg.SessionIDSQL).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids, conns = append(ids, id), append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	exists := func(id int64) bool {
		var n int
		if err := admin.QueryRowContext(ctx, tg.SessionExistsSQL, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	px.RekeyBlackhole() // the two flows die silently: the server keeps both sessions
	time.Sleep(50 * time.Millisecond)
	for _, id := range ids {
		if !exists(id) {
			t.Fatalf("session %d gone before any reaping: the proxy did not keep it", id)
		}
	}
	// Traffic on the new path: liveness finds the dead conns, the prober
	// sees progress and reaps.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (exists(ids[0]) || exists(ids[1])) {
		var x int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&x); err != nil {
			t.Fatalf("query: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := p.Stats()
	t.Logf("orphan sessions %v after the rekey: still present %v/%v; pool reaped %d", ids, exists(ids[0]), exists(ids[1]), st.OrphansReaped)
	if exists(ids[0]) || exists(ids[1]) || st.OrphansReaped < 2 {
		t.Fatalf("orphans not reaped (reaped %d)", st.OrphansReaped)
	}
}

func testReset(t *testing.T, tg Target) {
	p := open(t, tg, tg.Addr, pool.Config{ProbeInterval: -1})
	db := p.DB()
	db.SetMaxIdleConns(8)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	stop := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var x int
				if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&x); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		p.Reset("test")
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("query failed across resets: %v", err)
	}
	st := p.Stats()
	t.Logf("20 resets under 16 workers: generation %d, connects %d, renewed %d, closed idle %d", st.Generation, st.Connects, st.Renewed, st.ResetClosed)
	if st.Generation != 21 || st.Connects < 20 {
		t.Fatalf("stats %+v", st)
	}
}

func testSever(t *testing.T, tg Target) {
	p := open(t, tg, tg.Addr, pool.Config{ProbeInterval: -1})
	db := p.DB()
	errc := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(context.Background(), tg.SleepSQL) // no deadline
		errc <- err
	}()
	waitFor(t, func() bool { return db.Stats().InUse == 1 })
	time.Sleep(300 * time.Millisecond) // let the statement reach the server
	start := time.Now()
	p.Sever("test")
	select {
	case err := <-errc:
		took := time.Since(start)
		t.Logf("in-flight %q returned %v after Sever: %v", tg.SleepSQL, took, err)
		if took > time.Second {
			t.Fatalf("took %v after Sever", took)
		}
		if !errors.Is(err, pool.ErrOutcomeUnknown) {
			t.Fatalf("err = %v; want ErrOutcomeUnknown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight statement did not return after Sever")
	}
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("ping after sever: %v", err)
	}
}

func testLiveness(t *testing.T, tg Target) {
	px, err := faultproxy.New(tg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	p := open(t, tg, px.Addr(), pool.Config{ProbeInterval: -1, LivenessIdle: 10 * time.Millisecond})
	db := p.DB()
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := px.RekeyBlackhole(); n != 1 {
		t.Fatalf("blackholed %d flows; want 1", n)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	var x int
	err = db.QueryRowContext(cctx, "SELECT 1").Scan(&x)
	took := time.Since(start)
	st := p.Stats()
	t.Logf("query over a blackholed idle conn (30s deadline) took %v: err=%v; liveness failures %d, renewed %d", took, err, st.LivenessFailures, st.Renewed)
	if err != nil {
		t.Fatalf("query failed: %v", err)
	}
	if took > 3*time.Second || st.LivenessFailures != 1 {
		t.Fatalf("took %v with %d liveness failures; want a quick renew after 1 failure", took, st.LivenessFailures)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waitfor.True(t, "the condition", 5*time.Second, cond)
}
