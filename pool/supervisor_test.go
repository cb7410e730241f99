package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// supPool is a pool over the fake driver with socket control, an injected
// clock and a probe schedule that never fires by itself: tests drive the
// supervisor with apply, tick and settle.
func supPool(t *testing.T, mod func(*Config)) (*Pool, *fakeDriver, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	cfg := Config{ProbeInterval: time.Hour, LivenessIdle: -1, DownWait: -1, now: clk.now}
	if mod != nil {
		mod(&cfg)
	}
	p, d := openFake(t, cfg, true)
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	return p, d, clk
}

// apply hands events to the pool and waits until the supervisor has acted
// on them, including the probes they started.
func apply(t *testing.T, p *Pool, evs ...detect.Event) {
	t.Helper()
	for _, ev := range evs {
		if ev.Source == "" {
			ev.Source = "test"
		}
		p.Notify(ev)
	}
	p.sup.sync(func() { p.sup.step() })
	settle(t, p)
}

func down(id string) detect.Event { return detect.Event{Tunnel: id, State: detect.Down} }
func up(id string) detect.Event   { return detect.Event{Tunnel: id, State: detect.Up} }

func TestOneOfTwoRedundantTunnelsDownSeversNothing(t *testing.T) {
	p, d, _ := supPool(t, func(c *Config) { c.Tunnels = []string{"aws-1", "aws-2"} })
	apply(t, p, down("aws-1"))
	if s := p.Stats(); s.Severs != 0 || s.Resets != 0 || s.TunnelDown || s.Health != Healthy {
		t.Fatalf("one of two tunnels down: %+v; want nothing severed, gate open, healthy", s)
	}
	if err := p.DB().Ping(); err != nil {
		t.Fatalf("ping with aws-2 carrying the traffic: %v", err)
	}
	d.kill()
	apply(t, p, down("aws-2"))
	if s := p.Stats(); s.Severs != 0 || s.Resets != 1 || !s.TunnelDown || s.Health != Unreachable {
		t.Fatalf("both tunnels down, path dead: %+v; want the idle conns retired (no sever), gate shut, unreachable", s)
	}
	d.revive()
	apply(t, p, up("aws-1"))
	if s := p.Stats(); s.TunnelDown || s.Health == Unreachable {
		t.Fatalf("one tunnel back: %+v; want the gate open and recovering (or healthy already)", s)
	}
}

// With RequireAllTunnels one DOWN reports the path down: its check holds
// the gate, and a dead path keeps it shut.
func TestRequireAllTunnelsDownOfOneIsChecked(t *testing.T) {
	p, d, _ := supPool(t, func(c *Config) {
		c.Tunnels = []string{"a", "b"}
		c.RequireAllTunnels = true
	})
	d.kill()
	apply(t, p, down("a"))
	if s := p.Stats(); !s.TunnelDown || s.Severs != 0 {
		t.Fatalf("RequireAllTunnels, one down, path dead: %+v; want the gate shut, nothing severed", s)
	}
}

// A learned single tunnel and a learned redundant pair need no rule of
// their own: each DOWN is checked, and only a dead path shuts the gate.
func TestLearnedTunnelsAreCheckedLikeAnyOther(t *testing.T) {
	p, d, _ := supPool(t, nil)
	apply(t, p, up("t2"))
	apply(t, p, down("t1")) // t2 is up: not reported down, checked, harmless
	if s := p.Stats(); s.TunnelDown || s.Resets != 0 {
		t.Fatalf("redundant learned tunnel down, path works: %+v", s)
	}
	d.kill()
	apply(t, p, down("t2"))
	if s := p.Stats(); !s.TunnelDown || s.Health != Unreachable {
		t.Fatalf("every learned tunnel down, path dead: %+v; want the gate shut", s)
	}
}

func TestFutureDatedEventDoesNotFreezeTheTunnel(t *testing.T) {
	p, d, clk := supPool(t, nil)
	d.kill()
	apply(t, p, detect.Event{Tunnel: "t", State: detect.Down, At: clk.now().Add(time.Hour)})
	if s := p.Stats(); !s.TunnelDown || s.EventsFuture != 1 {
		t.Fatalf("future-dated DOWN: %+v; want it applied as received now, and counted", s)
	}
	d.revive()
	apply(t, p, detect.Event{Tunnel: "t", State: detect.Up, At: clk.now()})
	if s := p.Stats(); s.TunnelDown {
		t.Fatalf("a current UP after a future-dated DOWN left the gate shut: %+v", s)
	}
	if err := p.DB().Ping(); err != nil {
		t.Fatalf("ping after UP: %v", err)
	}
	d.kill()
	clk.advance(time.Second)
	apply(t, p, detect.Event{Tunnel: "t", State: detect.Down, At: clk.now()})
	if s := p.Stats(); !s.TunnelDown {
		t.Fatalf("a later DOWN was not obeyed: %+v", s)
	}
}

// 1000 toggles on a working path cost a bounded number of checks, no
// sever, no reset, no failed request; a storm that ends on a dead path
// ends with the gate shut.
func TestEventStormOnAWorkingPathCostsBoundedChecks(t *testing.T) {
	for _, dead := range []bool{false, true} {
		t.Run(fmt.Sprintf("path dead at the end %v", dead), func(t *testing.T) {
			p, d := openFake(t, Config{ProbeInterval: time.Hour, LivenessIdle: -1, Tunnels: []string{"t"}}, false)
			db := p.DB()
			if err := db.Ping(); err != nil {
				t.Fatal(err)
			}
			pings, opened := d.pings.Load(), d.opened.Load()
			start := time.Now()
			for i := range 1000 {
				st := detect.Down
				if i%2 == 1 {
					st = detect.Up
				}
				p.Notify(detect.Event{Tunnel: "t", State: st, Source: "storm"})
				if i%10 == 0 {
					if err := db.Ping(); err != nil {
						t.Fatalf("request %d during the storm failed: %v", i, err)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if dead {
				d.kill()
			}
			final := detect.Up
			if dead {
				final = detect.Down
			}
			v, _ := p.NotifyWait(context.Background(), detect.Event{Tunnel: "t", State: final, Source: "storm"})
			settle(t, p)
			s := p.Stats()
			checks := d.pings.Load() - pings - int64(p.Stats().DBStats.OpenConnections) // pings beyond the requests' own
			t.Logf("1001 events in %v: last verdict %v; severs %d, resets %d, connects %d, probe connects %d, pings %d (requests' included)",
				time.Since(start), v, s.Severs, s.Resets, d.opened.Load()-opened, s.Probes, d.pings.Load()-pings)
			_ = checks
			if s.Severs != 0 {
				t.Fatalf("%d severs; want none", s.Severs)
			}
			if !dead && (s.Resets != 0 || s.TunnelDown || d.opened.Load()-opened > 10) {
				t.Fatalf("working path: %+v, %d connects; want no reset, gate open, at most 10 connects", s, d.opened.Load()-opened)
			}
			if dead && !s.TunnelDown {
				t.Fatalf("storm ended on a dead path but the gate is open: %+v", s)
			}
		})
	}
}

func TestTunnelTableIsBounded(t *testing.T) {
	cfg := Config{}
	tt := newTunnelHints(&cfg)
	for i := range 100_000 {
		if !tt.apply(detect.Event{Tunnel: fmt.Sprintf("spoof-%d", i), State: detect.Up}) {
			t.Fatal("a learned tunnel was refused")
		}
	}
	t.Logf("100k spoofed tunnel ids: table %d, forgotten %d", len(tt.state), tt.forgotten)
	if len(tt.state) > maxLearnedTunnels || len(tt.order) != len(tt.state) || tt.forgotten != 100_000-maxLearnedTunnels {
		t.Fatalf("table holds %d tunnels (cap %d), order %d, forgotten %d", len(tt.state), maxLearnedTunnels, len(tt.order), tt.forgotten)
	}
}

// holdConnect makes the next Connect block until release is closed, then
// succeed; every Connect after it fails (the path died meanwhile).
func holdConnect(d *fakeDriver) (started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	dead := errors.New("dial tcp: connect: connection timed out")
	hook := func() error {
		d.connectErr.Store(&dead)
		close(started)
		<-release
		d.connectHook.Store(nil)
		return nil
	}
	d.connectHook.Store(&hook)
	return started, release
}

// A DOWN that arrives while a check runs is not answered by that check (it
// started before): a check started after it runs next, and decides. It was
// lost before (issue 25, defect 1).
func TestDownWhileACheckRunsIsCheckedAfterIt(t *testing.T) {
	p, d, _ := supPool(t, nil)
	started, release := holdConnect(d)
	for _, fc := range d.all() {
		fc.pingMode.Store(1) // the idle conn does not answer: the check connects
	}
	p.suspectConn(nil)
	p.sup.sync(func() { p.sup.step() }) // a check starts and is held in its connect
	<-started
	d.kill()
	p.Notify(down("t"))
	p.sup.sync(func() { p.sup.step() })
	close(release) // the check that started before the DOWN succeeds
	settle(t, p)
	if s := p.Stats(); !s.TunnelDown || s.Health != Unreachable {
		t.Fatalf("a check that started before the DOWN answered it: %+v; want the gate shut by the check after it", s)
	}
}

func TestCloseDuringProbeOrCanaryReturnsFast(t *testing.T) {
	for _, name := range []string{"probe", "canary"} {
		t.Run(name, func(t *testing.T) {
			p, d, _ := supPool(t, nil)
			d.connectHang.Store(true) // every connect hangs in its login
			for _, fc := range d.all() {
				fc.pingMode.Store(1) // and the idle conn does not answer
			}
			if name == "probe" {
				p.suspectConn(nil)
				p.sup.sync(func() { p.sup.step() })
			} else {
				apply(t, p, down("t"))
				p.Notify(up("t"))
				p.sup.sync(func() { p.sup.step() })
			}
			waitFor(t, func() bool { busy := false; p.sup.sync(func() { busy = p.sup.checks > 0 }); return busy })
			start := time.Now()
			p.Close()
			took := time.Since(start)
			t.Logf("Close during a hung %s took %v", name, took)
			if took > 100*time.Millisecond {
				t.Fatalf("Close took %v during a %s; want under 100ms", took, name)
			}
		})
	}
}

// Without a prober (no timed checks) a request waiting at the gate makes
// the supervisor check the path at once; without that kick it would wait
// its whole DownWait.
func TestRequestWaitingAtTheGateProbesNow(t *testing.T) {
	p, d, _ := supPool(t, func(c *Config) { c.DownWait = 5 * time.Second; c.ProbeInterval = -1 })
	d.kill()
	apply(t, p, down("t"))
	if !p.Stats().TunnelDown {
		t.Fatal("gate open after a DOWN on a dead path")
	}
	d.revive() // the path is back; nothing is scheduled to look
	start := time.Now()
	if err := p.DB().PingContext(context.Background()); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	took := time.Since(start)
	t.Logf("a request waiting at the gate was released after %v", took)
	if took > 300*time.Millisecond {
		t.Fatalf("released after %v; a waiting request must make the supervisor probe at once", took)
	}
}

func TestPoolIsRebuiltAfterUp(t *testing.T) {
	p, d, _ := supPool(t, nil)
	idleConns(t, p, 4)
	d.kill()
	apply(t, p, down("t"))
	opened := d.opened.Load()
	slowConnects(d)
	d.revive()
	apply(t, p, up("t"))
	waitFor(t, func() bool { return p.Stats().Rebuilt == 4 })
	gen := p.gen.Load()
	fresh := 0
	for _, c := range p.snapshot() {
		// (The supervisor's check after recovery may be pinging one.)
		if st := c.state.Load(); c.l().gen == gen && (st == stateIdle || st == stateProbing) {
			fresh++
		}
	}
	t.Logf("after UP: %d idle conns of the new generation, %d opened", fresh, d.opened.Load()-opened)
	if fresh != 4 {
		for _, c := range p.snapshot() {
			t.Logf("conn gen %d (now %d) state %d", c.l().gen, gen, c.state.Load())
		}
		t.Logf("stats %+v", p.Stats())
		t.Fatalf("%d idle conns of the new generation; want the 4 held before", fresh)
	}
}

// With instant connects a rebuild borrow can get a conn its sibling has
// already readied and given back: it is not readied or counted twice, and
// it is given back at once (borrowing again while holding it kept conns
// from requests at MaxOpenConns in the lab).
func TestRebuildCountsEachConnOnce(t *testing.T) {
	for range 20 {
		p, d, _ := supPool(t, nil)
		idleConns(t, p, 4)
		d.kill()
		apply(t, p, down("t"))
		d.revive()
		apply(t, p, up("t"))
		waitFor(t, func() bool { return p.Stats().Rebuilt > 0 })
		settle(t, p)
		gen, fresh := p.gen.Load(), uint64(0)
		for _, c := range p.snapshot() {
			if st := c.state.Load(); c.l().gen == gen && (st == stateIdle || st == stateProbing) {
				fresh++
			}
		}
		if n := p.Stats().Rebuilt; n > fresh || n > 4 {
			t.Fatalf("Rebuilt %d, but %d idle conns of the new generation", n, fresh)
		}
		p.Close()
	}
}

// A driver's Warm runs on each conn the rebuild reopened, before the conn
// goes back to the idle list; the check after UP (the canary) is no
// demand, but a request that connects because every conn is held ends
// the warm-up; a conn whose warm-up fails is dropped.
func TestWarmRunsOnRebuiltConnsUntilARequestNeedsOne(t *testing.T) {
	p, d, _ := supPool(t, nil)
	idleConns(t, p, 2)
	db := p.DB()
	ctx := context.Background()
	type call struct{ moreAtStart bool }
	entered := make(chan call, 2)
	proceed := make(chan struct{})
	var moreAfter atomic.Int32 // warm-ups that saw more() true after the request
	var failed atomic.Bool
	p.drv.Warm = func(ctx context.Context, c driver.Conn, more func() bool) error {
		entered <- call{more()}
		<-proceed
		if more() {
			moreAfter.Add(1)
		}
		if failed.CompareAndSwap(false, true) {
			return errors.New("warm-up: connection lost")
		}
		return nil
	}
	t.Cleanup(func() {
		select {
		case <-proceed:
		default:
			close(proceed)
		}
	})
	d.kill()
	apply(t, p, down("t"))
	closed := d.closed.Load()
	d.revive()
	p.Notify(up("t"))
	p.sup.sync(func() { p.sup.step() })
	for range 2 {
		select {
		case c := <-entered:
			if !c.moreAtStart {
				t.Fatal("more() was false at the start of a warm-up with no request about")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the rebuild did not warm its 2 conns")
		}
	}
	// Both rebuilt conns are held: a request connects a new one.
	settle(t, p)
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	close(proceed)
	waitFor(t, func() bool { return p.Stats().Rebuilt == 1 })
	if n := moreAfter.Load(); n != 0 {
		t.Fatalf("%d warm-ups still saw more() after a request had to connect; want 0", n)
	}
	waitFor(t, func() bool { return d.closed.Load() > closed })
}

// idleConns leaves n conns in the pool's idle list: it borrows them all at
// once (so database/sql opens n), checks each, then returns them.
func idleConns(t *testing.T, p *Pool, n int) {
	t.Helper()
	db := p.DB()
	db.SetMaxIdleConns(max(n, 4)) // room for one more than held
	ctx := context.Background()
	var cs []*sql.Conn
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.Close()
	}
}

// slowConnects makes every connect take 20ms, as on a network: all the
// borrows of a rebuild then take a conn before the first is back (with
// instant ones a borrow can get a conn its sibling has already readied;
// it is given back and the rebuild readies fewer).
func slowConnects(d *fakeDriver) {
	hook := func() error { time.Sleep(20 * time.Millisecond); return nil }
	d.connectHook.Store(&hook)
}
