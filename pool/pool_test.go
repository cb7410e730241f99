package pool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flapguard/flapguard/internal/waitfor"
	"time"

	"github.com/flapguard/flapguard/detect"
)

func TestResetWith100ConcurrentQueriersHasNoErrors(t *testing.T) {
	for _, sockets := range []bool{false, true} {
		t.Run(map[bool]string{false: "soft", true: "sockets"}[sockets], func(t *testing.T) {
			p, d := openFake(t, quietConfig(), sockets)
			db := p.DB()
			db.SetMaxOpenConns(20)
			db.SetMaxIdleConns(20)
			var errs atomic.Int64
			var firstErr atomic.Pointer[error]
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 100 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						var x int
						if err := db.QueryRowContext(context.Background(), "q").Scan(&x); err != nil {
							errs.Add(1)
							firstErr.CompareAndSwap(nil, &err)
						}
					}
				})
			}
			for i := range 50 {
				p.Reset("test " + string(rune('a'+i%26)))
				time.Sleep(2 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			if n := errs.Load(); n != 0 {
				t.Fatalf("%d queries failed during resets; first: %v", n, *firstErr.Load())
			}
			st := p.Stats()
			if st.Generation != 51 || st.Resets != 50 {
				t.Fatalf("generation %d resets %d; want 51 and 50", st.Generation, st.Resets)
			}
			t.Logf("queries %d, connections opened %d, closed %d", d.queries.Load(), d.opened.Load(), d.closed.Load())
			if d.opened.Load() < 20 {
				t.Fatalf("only %d connections opened across 50 resets: resets did not renew the pool", d.opened.Load())
			}
		})
	}
}

func TestResetClosesIdleConnsAtOnce(t *testing.T) {
	p, d := openFake(t, quietConfig(), false)
	db := p.DB()
	idleConns(t, p, 5)
	if got := db.Stats().Idle; got != 5 {
		t.Fatalf("idle = %d; want 5", got)
	}
	p.Reset("test")
	if got := d.closed.Load(); got != 5 {
		t.Fatalf("driver conns closed right after Reset = %d; want 5", got)
	}
	for _, fc := range d.all() {
		if !fc.closed.Load() {
			t.Fatal("an idle driver conn is still open after Reset")
		}
	}
	// The next query gets a fresh conn without an error.
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("ping after reset: %v", err)
	}
	if d.opened.Load() != 6 {
		t.Fatalf("opened = %d; want 6 (one new)", d.opened.Load())
	}
}

func TestResetDiscardsInUseConnOnReturn(t *testing.T) {
	p, d := openFake(t, quietConfig(), false)
	ctx := context.Background()
	c, err := p.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	p.Reset("test")
	// Still usable while held: a reset by itself fails nothing.
	if err := c.PingContext(ctx); err != nil {
		t.Fatalf("held conn failed after reset: %v", err)
	}
	if d.closed.Load() != 0 {
		t.Fatal("in-use conn was closed by a soft reset")
	}
	c.Close()
	if d.closed.Load() != 1 {
		t.Fatalf("closed = %d after return; want 1 (stale conn discarded)", d.closed.Load())
	}
	if err := p.DB().PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if d.opened.Load() != 2 {
		t.Fatalf("opened = %d; want 2", d.opened.Load())
	}
}

func TestSeverReturnsHungQueryWithin100ms(t *testing.T) {
	p, d := openFake(t, quietConfig(), true)
	db := p.DB()
	errc := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(context.Background(), "hang") // no deadline at all
		errc <- err
	}()
	waitFor(t, func() bool { return d.blocked.Load() == 1 }) // blocked in the socket read
	start := time.Now()
	p.Sever("test")
	select {
	case err := <-errc:
		took := time.Since(start)
		t.Logf("hung query returned %v after Sever: %v", took, err)
		if took > 100*time.Millisecond {
			t.Fatalf("took %v; want ≤ 100ms", took)
		}
		if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrConnLost) {
			t.Fatalf("err = %v; want a lost connection with unknown outcome", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hung query did not return after Sever")
	}
	if s := p.Stats(); s.SeveredSockets == 0 || s.Severs != 1 || !s.SocketControl {
		t.Fatalf("stats %+v", s)
	}
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("ping after sever: %v", err)
	}
}

func TestLivenessUsesItsOwnDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sockets bool
		mode    int32
	}{
		{"driver honours ctx", false, 1},
		{"driver ignores ctx, pool closes socket", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig()
			cfg.LivenessIdle = time.Millisecond
			cfg.LivenessTimeoutMin = 50 * time.Millisecond
			cfg.LivenessTimeoutMax = 100 * time.Millisecond
			var events []Event
			var mu sync.Mutex
			cfg.OnEvent = func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }
			p, d := idleConnPinging(t, cfg, tc.sockets, tc.mode)
			db := p.DB()
			ctx := context.Background()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			var x int
			err := db.QueryRowContext(cctx, "q").Scan(&x)
			took := time.Since(start)
			t.Logf("query with a 30s deadline took %v over a dead idle conn", took)
			if err != nil {
				t.Fatalf("query failed: %v (the dead conn should have been replaced)", err)
			}
			if took > 2*time.Second {
				t.Fatalf("took %v; the liveness check used the caller's deadline", took)
			}
			settle(t, p) // the lost conn is a hint: a check may make a fresh connection
			st := p.Stats()
			if pooled := d.opened.Load() - int64(st.Probes-st.ProbeFailures); st.LivenessFailures != 1 || pooled != 2 {
				t.Fatalf("liveness failures %d, pooled connections opened %d; want 1 and 2", st.LivenessFailures, pooled)
			}
			mu.Lock()
			defer mu.Unlock()
			found := false
			for _, ev := range events {
				found = found || ev.Kind == EventLivenessFailed
			}
			if !found {
				t.Fatal("no EventLivenessFailed")
			}
		})
	}
}

// A DOWN is a hint: the gate shuts only because the check it starts finds
// the path dead, and it reopens when a check after the UP finds it back.
func TestNotifyDownGatesAndUpReleases(t *testing.T) {
	cfg := quietConfig()
	cfg.DownWait = 10 * time.Second
	p, d := openFake(t, cfg, true)
	db := p.DB()
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	d.kill()
	v, err := p.NotifyWait(ctx, detect.Event{Tunnel: "t1", State: detect.Down, Source: "test"})
	if err != nil || !v.Checked || v.PathOK || !p.Stats().TunnelDown {
		t.Fatalf("DOWN on a dead path: verdict %v, err %v, gate shut %v; want checked down, gate shut", v, err, p.Stats().TunnelDown)
	}
	errc := make(chan error, 1)
	go func() { errc <- db.PingContext(ctx) }()
	waitFor(t, func() bool { return p.gate.waiters.Load() == 1 }) // the ping waits at the gate
	select {
	case err := <-errc:
		t.Fatalf("ping returned during DOWN: %v", err)
	default:
	}
	d.revive()
	upAt := time.Now()
	p.Notify(detect.Event{Tunnel: "t1", State: detect.Up, Source: "test"})
	select {
	case err := <-errc:
		t.Logf("waiter released %v after UP", time.Since(upAt))
		if err != nil {
			t.Fatalf("waiter failed after UP: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not released by UP")
	}
	if st := p.Stats(); st.TunnelDown || st.Events != 2 || st.Severs != 0 {
		t.Fatalf("stats after UP: %+v; want gate open, 2 events, nothing severed", st)
	}
}

func TestNotifyDownFailFastAndTimeout(t *testing.T) {
	for _, wait := range []time.Duration{-1, 50 * time.Millisecond} {
		cfg := quietConfig()
		cfg.DownWait = wait
		p, d := openFake(t, cfg, false)
		d.kill()
		p.NotifyWait(context.Background(), detect.Event{Tunnel: detect.AllTunnels, State: detect.Down})
		if !p.Stats().TunnelDown {
			t.Fatalf("DownWait %v: gate open after a DOWN on a dead path", wait)
		}
		err := p.DB().PingContext(context.Background())
		if !errors.Is(err, ErrTunnelDown) {
			t.Fatalf("DownWait %v: err = %v; want ErrTunnelDown", wait, err)
		}
	}
}

// A DOWN on a path that works (a wrong monitor, a forged event) costs a
// check and nothing else.
func TestWrongDownCostsACheckOnly(t *testing.T) {
	p, d := openFake(t, quietConfig(), true)
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	opened := d.opened.Load()
	v, _ := p.NotifyWait(context.Background(), detect.Event{Tunnel: "t", State: detect.Down})
	s := p.Stats()
	t.Logf("verdict: %v; %d connects", v, d.opened.Load()-opened)
	if !v.Checked || !v.PathOK || s.TunnelDown || s.Severs != 0 || s.Resets != 0 {
		t.Fatalf("wrong DOWN: verdict %v, %+v; want checked harmless, gate open, nothing severed or reset", v, s)
	}
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyIgnoresOtherTunnelsInvalidAndStale(t *testing.T) {
	cfg := quietConfig()
	cfg.Tunnels = []string{"mine"}
	p, d := openFake(t, cfg, false)
	d.kill()
	p.Notify(detect.Event{Tunnel: "other", State: detect.Down})
	p.Notify(detect.Event{Tunnel: "mine", State: detect.State(42)})
	p.NotifyWait(context.Background(), detect.Event{Tunnel: "mine", State: detect.Down, At: time.Now()})
	if !p.Stats().TunnelDown {
		t.Fatal("gate open after a DOWN of mine on a dead path")
	}
	d.revive()
	p.Notify(detect.Event{Tunnel: "mine", State: detect.Up, At: time.Now().Add(-time.Hour)})
	waitFor(t, func() bool { return p.Stats().EventsIgnored == 3 })
	if !p.Stats().TunnelDown {
		t.Fatal("a stale UP reopened the gate")
	}
	if r := p.Stats().Resets; r != 1 {
		t.Fatalf("resets = %d; want 1 (the check that found the path down)", r)
	}
}

func TestAfterCloseResetAndNotifyAreNoOps(t *testing.T) {
	p, _ := openFake(t, Config{}, false)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.Reset("x")
	p.Sever("x")
	p.Notify(detect.Event{Tunnel: detect.AllTunnels, State: detect.Down})
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if p.Stats().Resets != 0 {
		t.Fatal("reset after close did something")
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for field, cfg := range map[string]Config{
		"LivenessTimeoutMin": {LivenessTimeoutMin: -time.Second},
		"ProbeTimeout":       {ProbeTimeout: -1},
		"LivenessTimeoutMax": {LivenessTimeoutMin: 3 * time.Second, LivenessTimeoutMax: time.Second},
		"Tunnels[0]":         {Tunnels: []string{""}},
		"KeepAliveCount":     {KeepAliveCount: 5000},
		"DialTimeout":        {DialTimeout: 48 * time.Hour},
	} {
		_, err := Open("sqlserver", "sqlserver://u:pw@h", cfg)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err = %v; want it to name the field", field, err)
		}
		p := OpenDB(&fakeDriver{}, cfg)
		if err := p.DB().Ping(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("OpenDB %s: ping err = %v; want the config error", field, err)
		}
		p.Close()
	}
}

func TestOpenBadInput(t *testing.T) {
	if _, err := Open("nosuchdriver", "x", Config{}); err == nil || !strings.Contains(err.Error(), "unknown driver") {
		t.Fatalf("unknown driver: %v", err)
	}
	_, err := Open("sqlserver", "sqlserver://sa:s3cretPW@host:notaport?database=x", Config{})
	if err == nil {
		t.Fatal("bad DSN accepted")
	}
	if strings.Contains(err.Error(), "s3cretPW") {
		t.Fatalf("error leaks the password: %v", err)
	}
	t.Logf("bad DSN error: %v", err)
	if _, err := OpenWithDialer(nil, Config{}); err == nil {
		t.Fatal("nil newConnector accepted")
	}
	p := OpenDB(nil, Config{})
	defer p.Close()
	if err := p.DB().Ping(); err == nil {
		t.Fatal("nil connector pinged fine")
	}
}

func TestResetStormIsRaceFree(t *testing.T) {
	p, _ := openFake(t, Config{ProbeInterval: time.Millisecond, DownWait: -1}, true)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				switch (i + j) % 4 {
				case 0:
					p.Reset("storm")
				case 1:
					p.Sever("storm")
				case 2:
					p.Notify(detect.Event{Tunnel: detect.AllTunnels, State: detect.State(1 + j%3)})
				default:
					p.DB().PingContext(context.Background())
				}
			}
		})
	}
	wg.Wait()
	// After the storm the pool is consistent: every Reset and Sever was
	// counted, the last tunnel event is applied and the pool serves again.
	st := p.Stats()
	if st.Resets < 800 || st.Severs < 400 || st.Generation < 801 {
		t.Fatalf("after 400 Resets and 400 Severs: %+v", st)
	}
	p.Notify(detect.Event{Tunnel: detect.AllTunnels, State: detect.Up})
	waitFor(t, func() bool { return !p.Stats().TunnelDown })
	if err := p.DB().PingContext(context.Background()); err != nil {
		t.Fatalf("ping after the storm: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("close after the storm: %v", err)
	}
}

// waitPending waits until n connects are in progress.
func waitPending(t testing.TB, p *Pool, n int) {
	t.Helper()
	waitFor(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.pending) == n
	})
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	waitfor.True(t, "the condition", 5*time.Second, cond)
}

// A connect that started into a dead path hangs in its login (no request
// deadline); when the path comes back the pool cuts it and the connector
// tries again, so the request succeeds.
func TestPendingConnectIsRetriedWhenThePathComesBack(t *testing.T) {
	p, d := openFake(t, quietConfig(), true)
	d.connectHang.Store(true)
	errc := make(chan error, 1)
	go func() { errc <- p.DB().PingContext(context.Background()) }()
	waitPending(t, p, 1)
	d.connectHang.Store(false)
	p.reset("path back", false)
	if n := p.abandonPending(p.gen.Load(), time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("abandoned %d sockets; want 1", n)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("request failed: %v; want the connect retried", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still hanging")
	}
}

func TestConnectTimeoutBoundsALoginWithoutDeadline(t *testing.T) {
	cfg := quietConfig()
	cfg.ConnectTimeout = 100 * time.Millisecond
	p, d := openFake(t, cfg, true)
	d.connectHang.Store(true)
	start := time.Now()
	err := p.DB().PingContext(context.Background())
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("ping returned %v after %v; want an error after about ConnectTimeout", err, time.Since(start))
	}
	t.Logf("login into a dead path returned after %v: %v", time.Since(start), err)
}

// database/sql lends a conn its background opener made without calling
// ResetSession; the first operation still gets the liveness check (a dead
// fresh conn is renewed before anything is sent).
func TestFreshConnGetsLivenessOnFirstUse(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	cfg := quietConfig()
	cfg.now = clk.now
	cfg.LivenessTimeoutMin = 20 * time.Millisecond
	cfg.LivenessTimeoutMax = 50 * time.Millisecond
	p, d := openFake(t, cfg, true)
	ic, err := p.conn.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := ic.(*conn) // state fresh, as the opener leaves it
	d.all()[0].pingMode.Store(1)
	clk.advance(5 * time.Second)
	if _, err := c.ExecContext(context.Background(), "INSERT", nil); err != nil {
		t.Fatalf("exec on a dead fresh conn: %v; want it renewed first", err)
	}
	if d.pings.Load() != 1 || d.opened.Load() != 2 || p.Stats().Renewed != 1 {
		t.Fatalf("pings %d opened %d renewed %d; want 1, 2, 1", d.pings.Load(), d.opened.Load(), p.Stats().Renewed)
	}
	c.Close()
}

func TestEventString(t *testing.T) {
	ev := Event{Kind: EventHealthChange, Generation: 3, From: Suspect, To: Recovering, Reason: "old connections discarded"}
	if got, want := ev.String(), "health-change gen=3 suspect->recovering (old connections discarded)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	ev = Event{Kind: EventSever, Generation: 2, Count: 7, Err: errors.New("x")}
	if got, want := ev.String(), "sever gen=2 count=7 err=x"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// The supervisor's idle probe takes the conn database/sql will lend last,
// and a borrow soon after it does not ping again: the probe was its check.
func TestIdleProbeTakesTheColdestConnAndCountsAsTheBorrowsCheck(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	cfg := quietConfig()
	cfg.now = clk.now
	p, d := openFake(t, cfg, true)
	ctx := context.Background()
	use := func() (*sql.Conn, *conn) {
		c, err := p.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, "INSERT"); err != nil {
			t.Fatal(err)
		}
		var dc *conn
		c.Raw(func(x any) error { dc = x.(*conn); return nil })
		return c, dc
	}
	a, ca := use()
	clk.advance(100 * time.Millisecond)
	b, cb := use()
	b.Close()
	a.Close() // returned last: database/sql lends it first
	clk.advance(2 * time.Second)
	if got := p.pickIdle(); got != ca {
		t.Fatalf("pickIdle took %p; want the conn lent out longest ago (%p), not %p", got, ca, cb)
	}
	if !p.probeIdle(ctx, cb) || d.pings.Load() != 1 {
		t.Fatalf("probe: pings %d; want 1", d.pings.Load())
	}
	// The borrow after the probe gets the conn returned last (a), which
	// was not probed: it is checked. Then b, probed 10ms ago: not again.
	clk.advance(10 * time.Millisecond)
	c1, _ := p.DB().Conn(ctx)
	c2, _ := p.DB().Conn(ctx)
	var got1, got2 *conn
	c1.Raw(func(dc any) error { got1 = dc.(*conn); return nil })
	c2.Raw(func(dc any) error { got2 = dc.(*conn); return nil })
	if got1 != ca || got2 != cb {
		t.Fatalf("database/sql lent %p then %p; the test expects a then b", got1, got2)
	}
	if n := d.pings.Load(); n != 2 {
		t.Fatalf("pings %d; want 2 (the probe, and a's own check; none for b)", n)
	}
	c1.Close()
	c2.Close()
	// Long after the probe, b is checked again.
	clk.advance(2 * time.Second)
	c3, _ := p.DB().Conn(ctx)
	c4, _ := p.DB().Conn(ctx)
	c3.Close()
	c4.Close()
	if n := d.pings.Load(); n != 4 {
		t.Fatalf("pings %d; want 4 (both checked after 2s idle)", n)
	}
}

// The pool vouches for a conn connected or lent out within LivenessIdle,
// so a driver that pings in ResetSession (pgx pings a new conn's first
// reuse whatever its age) does not; past LivenessIdle the pool pings it
// itself, once. With the pool's check off, the driver's rule applies.
func TestPoolVouchesForRecentConnsSoTheDriverDoesNotPing(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("liveness off %v", off), func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1000, 0)}
			cfg := quietConfig()
			cfg.now = clk.now
			if off {
				cfg.LivenessIdle = -1
			}
			p, d := openFake(t, cfg, true)
			db := p.DB()
			if _, err := db.Exec("INSERT"); err != nil { // a new conn, no reset
				t.Fatal(err)
			}
			clk.advance(200 * time.Millisecond)
			if _, err := db.Exec("INSERT"); err != nil { // its first reuse
				t.Fatal(err)
			}
			clk.advance(2 * time.Second)
			if _, err := db.Exec("INSERT"); err != nil { // after 2s idle
				t.Fatal(err)
			}
			want, wantPings := int64(2), int64(1)
			if off {
				want, wantPings = 0, 0
			}
			if d.resets.Load() != 2 || d.vouched.Load() != want || d.pings.Load() != wantPings {
				t.Fatalf("resets %d, vouched %d, pool pings %d; want 2, %d, %d", d.resets.Load(), d.vouched.Load(), d.pings.Load(), want, wantPings)
			}
		})
	}
}

// At its deadline a liveness ping whose answer has arrived but was not read
// yet (a CPU-starved process) gets the same time once more; one that was
// only acknowledged by TCP (a proxy in front of a dead path acknowledges
// too) fails at its deadline.
func TestLivenessExtendsOnlyForAnAnswerWaitingToBeRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     int32
		failures uint64
	}{
		{"answer waiting unread", 4, 0},
		{"acknowledged, no answer", 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig()
			cfg.LivenessIdle = time.Millisecond
			cfg.LivenessTimeoutMin = 100 * time.Millisecond
			cfg.LivenessTimeoutMax = 100 * time.Millisecond // the deadline; readLate is 150ms
			p, d := idleConnPinging(t, cfg, true, tc.mode)
			db := p.DB()
			ctx := context.Background()
			start := time.Now()
			var x int
			if err := db.QueryRowContext(ctx, "q").Scan(&x); err != nil {
				t.Fatalf("query failed: %v", err)
			}
			took := time.Since(start)
			st := p.Stats()
			t.Logf("%s: borrow took %v, liveness failures %d, connections opened %d", tc.name, took, st.LivenessFailures, d.opened.Load())
			if st.LivenessFailures != tc.failures {
				t.Fatalf("liveness failures %d; want %d", st.LivenessFailures, tc.failures)
			}
			if tc.failures > 0 && took > time.Second {
				t.Fatalf("took %v; an unanswered ping must fail at its 100ms deadline", took)
			}
		})
	}
}

// idleConnPinging opens a fake pool (cfg.LivenessIdle short) holding one
// idle conn whose pings behave as mode says, idle past LivenessIdle.
func idleConnPinging(t *testing.T, cfg Config, sockets bool, mode int32) (*Pool, *fakeDriver) {
	t.Helper()
	p, d := openFake(t, cfg, sockets)
	if err := p.DB().PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.all()[0].pingMode.Store(mode)
	time.Sleep(5 * time.Millisecond) // idle past LivenessIdle
	return p, d
}

// DB.Close closes idle conns before it stops the pool, so it can close a
// conn the supervisor is pinging: the driver conn must not be closed under
// the ping (a data race in pgx, seen in the soak), and must be closed when
// the ping ends.
func TestCloseDuringAnIdleProbe(t *testing.T) {
	p, d := idleConnPinging(t, quietConfig(), true, 1) // the ping hangs until ctx ends
	c := p.snapshot()[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan bool)
	pings := d.pings.Load()
	go func() { done <- p.probeIdle(ctx, c) }()
	waitFor(t, func() bool { return d.pings.Load() > pings })
	p.DB().Close()
	fc := d.all()[0]
	if fc.closed.Load() {
		t.Fatal("the driver conn was closed while the probe pinged it")
	}
	cancel()
	<-done
	if !fc.closed.Load() || c.state.Load() != stateClosed {
		t.Fatalf("after the probe: driver conn closed %v, state %d; want closed, %d", fc.closed.Load(), c.state.Load(), stateClosed)
	}
}

// A connect whose SYN went into a dead path has no socket yet: when the
// path comes back the pool cancels its dial too, and the connector dials
// again at once instead of waiting for the kernel's retransmission (the
// lab's V4: requests that needed a new conn at a blip's start failed at
// their deadline while the path had been back for 0.4s).
func TestPendingDialIsCancelledWhenThePathComesBack(t *testing.T) {
	var lost atomic.Bool
	lost.Store(true)
	cfg := quietConfig()
	cfg.DialTimeout = time.Hour // only the pool's cut may end the lost dial
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if lost.Load() {
			<-ctx.Done() // a SYN lost in the void
			return nil, ctx.Err()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	p, _ := openFake(t, cfg, true)
	errc := make(chan error, 1)
	go func() { errc <- p.DB().PingContext(context.Background()) }()
	waitPending(t, p, 1)
	lost.Store(false)
	p.reset("path back", false)
	p.abandonPending(p.gen.Load(), time.Now().Add(time.Hour))
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("request failed: %v; want the dial cancelled and made again", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still hanging in its first dial")
	}
}

// A check's connect whose SYN was lost (the path came back just after it)
// does not decide the verdict: a later attempt, made while it waits for the
// kernel's retransmission, answers (H5's storm: a working path was checked
// down by a connect sent 70ms before a blackhole ended). Once one attempt's
// handshake completed no more start.
func TestStaggeredProbeOutlivesALostSYN(t *testing.T) {
	var dials atomic.Int32
	cfg := quietConfig()
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			<-ctx.Done() // the first SYN is lost in the void
			return nil, ctx.Err()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	p, _ := openFake(t, cfg, true)
	start := time.Now()
	if err := p.staggeredProbe(context.Background(), 5*time.Second, 5*time.Second, false); err != nil {
		t.Fatalf("staggeredProbe: %v; want the second attempt to answer", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("verdict after %v; want it from the attempt after the lost one (~%v)", took, downSpacing)
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d dials; want 2 (the lost SYN, then one that completed its handshake)", n)
	}
}
