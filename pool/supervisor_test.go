package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
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
	p, _, _ := supPool(t, func(c *Config) { c.Tunnels = []string{"aws-1", "aws-2"} })
	apply(t, p, down("aws-1"))
	if s := p.Stats(); s.Severs != 0 || s.Resets != 0 || s.TunnelDown || s.Health != Healthy {
		t.Fatalf("one of two tunnels down: %+v; want nothing severed, gate open, healthy", s)
	}
	if err := p.DB().Ping(); err != nil {
		t.Fatalf("ping with aws-2 carrying the traffic: %v", err)
	}
	apply(t, p, down("aws-2"))
	if s := p.Stats(); s.Severs != 1 || !s.TunnelDown || s.Health != Unreachable {
		t.Fatalf("both tunnels down: %+v; want one sever, gate shut, unreachable", s)
	}
	apply(t, p, up("aws-1"))
	if s := p.Stats(); s.TunnelDown || s.Health == Unreachable {
		t.Fatalf("one tunnel back: %+v; want the gate open and recovering (or healthy already)", s)
	}
}

func TestRequireAllTunnelsDownOfOneSevers(t *testing.T) {
	p, _, _ := supPool(t, func(c *Config) {
		c.Tunnels = []string{"a", "b"}
		c.RequireAllTunnels = true
	})
	apply(t, p, down("a"))
	if s := p.Stats(); s.Severs != 1 || !s.TunnelDown {
		t.Fatalf("RequireAllTunnels, one down: %+v; want sever and gate", s)
	}
}

func TestLearnedTunnelsSingleIsInstantRedundantIsVerified(t *testing.T) {
	p, d, clk := supPool(t, nil)
	// The only tunnel seen goes down: sever at once (the seed case).
	apply(t, p, down("t1"))
	if s := p.Stats(); s.Severs != 1 || !s.TunnelDown || s.Probes != 0 {
		t.Fatalf("only tunnel down: %+v; want an immediate sever, no probe first", s)
	}
	apply(t, p, up("t1"), up("t2"))
	if s := p.Stats(); s.TunnelDown {
		t.Fatalf("after UP: gate still shut: %+v", s)
	}
	clk.advance(2 * time.Second) // past the cooldown
	// Another tunnel is known up: a DOWN is verified first, and the path
	// works, so nothing is severed.
	probes := p.Stats().Probes
	apply(t, p, down("t1"))
	if s := p.Stats(); s.Severs != 1 || s.TunnelDown || s.Probes <= probes {
		t.Fatalf("redundant tunnel down, path works: %+v; want one verifying probe and no sever", s)
	}
	// The path really is dead: the verifying probe fails and the pool severs.
	apply(t, p, up("t1"))
	clk.advance(2 * time.Second)
	dead := errors.New("dial tcp: connect: connection timed out")
	d.connectErr.Store(&dead)
	apply(t, p, down("t1"))
	if s := p.Stats(); s.Severs != 2 || !s.TunnelDown {
		t.Fatalf("redundant tunnel down, path dead: %+v; want the second sever and the gate shut", s)
	}
}

func TestFutureDatedEventDoesNotFreezeTheTunnel(t *testing.T) {
	p, _, clk := supPool(t, nil)
	apply(t, p, detect.Event{Tunnel: "t", State: detect.Down, At: clk.now().Add(time.Hour)})
	if s := p.Stats(); !s.TunnelDown || s.EventsFuture != 1 {
		t.Fatalf("future-dated DOWN: %+v; want it applied as received now, and counted", s)
	}
	apply(t, p, detect.Event{Tunnel: "t", State: detect.Up, At: clk.now()})
	if s := p.Stats(); s.TunnelDown {
		t.Fatalf("a current UP after a future-dated DOWN left the gate shut: %+v", s)
	}
	if err := p.DB().Ping(); err != nil {
		t.Fatalf("ping after UP: %v", err)
	}
	clk.advance(2 * time.Second)
	apply(t, p, down("t"))
	if s := p.Stats(); !s.TunnelDown || s.Severs != 2 {
		t.Fatalf("a later DOWN was not obeyed: %+v", s)
	}
}

func TestEventStormCollapsesAndEndsInTheLastState(t *testing.T) {
	for _, last := range []detect.State{detect.Up, detect.Down} {
		t.Run("ends "+last.String(), func(t *testing.T) {
			p, _, clk := supPool(t, func(c *Config) { c.Tunnels = []string{"t"} })
			// 1000 toggles over 2.5s of the pool's clock (longer than the
			// cooldown), the supervisor waking now and then, as often after
			// an UP as after a DOWN: a batch may hold a DOWN and the UP after
			// it, which is a toggle, not an UP out of nowhere. The storm ends
			// with an UP, or with one more DOWN.
			n := 1000
			if last == detect.Down {
				n++
			}
			for i := 0; i < n; {
				// A batch of 36 events arrives while the supervisor is busy
				// (Notify from the loop goroutine itself), then it looks: each
				// batch ends with an UP, after the previous one ended with an UP.
				p.sup.sync(func() {
					for end := min(i+36, n); i < end; i++ {
						st := detect.Down
						if i%2 == 1 {
							st = detect.Up
						}
						p.Notify(detect.Event{Tunnel: "t", State: st, Source: "storm"})
						clk.advance(2500 * time.Microsecond)
					}
				})
				apply(t, p)
			}
			clk.advance(2 * time.Second) // the cooldown ends: the trailing edge
			apply(t, p)
			s := p.Stats()
			t.Logf("1000 toggles ending %s: severs %d, resets %d, gate shut %v", last, s.Severs, s.Resets, s.TunnelDown)
			// Every reset rebuilds the pool (new connections), so resets are
			// bounded like severs: the storm's first DOWN severs, its UP
			// starts a new generation, the trailing edge may make one more.
			// A batch holding a DOWN and the UP after it is a toggle inside
			// the storm, not an UP out of nowhere (which asks for a reset).
			if s.Severs > 2 || s.Resets > 3 {
				t.Fatalf("%d severs, %d resets; want the storm collapsed (≤ 2, ≤ 3)", s.Severs, s.Resets)
			}
			if s.TunnelDown != (last == detect.Down) {
				t.Fatalf("storm ended %s but the gate is shut=%v", last, s.TunnelDown)
			}
		})
	}
}

func TestTunnelTableIsBounded(t *testing.T) {
	p, _, _ := supPool(t, nil)
	for i := range 100_000 {
		p.Notify(detect.Event{Tunnel: fmt.Sprintf("spoof-%d", i), State: detect.Up, Source: "spoof"})
		if i%1000 == 0 {
			apply(t, p)
		}
	}
	apply(t, p)
	var n int
	p.sup.sync(func() { n = len(p.sup.m.tunnels.state) })
	s := p.Stats()
	t.Logf("100k spoofed tunnel ids: table %d, forgotten %d, ignored %d", n, s.TunnelsForgotten, s.EventsIgnored)
	if n > maxLearnedTunnels || s.TunnelsForgotten == 0 {
		t.Fatalf("table holds %d tunnels (cap %d), forgotten %d", n, maxLearnedTunnels, s.TunnelsForgotten)
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

func TestProbeOvertakenByDownDoesNotUndoIt(t *testing.T) {
	p, d, _ := supPool(t, nil)
	started, release := holdConnect(d)
	p.suspectConn(nil)
	p.suspectConn(nil)
	p.sup.sync(func() { p.sup.step() }) // a fresh probe starts and is held in its connect
	<-started
	apply0 := func() { p.Notify(down("t")); p.sup.sync(func() { p.sup.step() }) }
	apply0()
	if s := p.Stats(); !s.TunnelDown || s.Health != Unreachable {
		t.Fatalf("DOWN while a probe runs: %+v; want it applied at once", s)
	}
	close(release) // the probe that started before the DOWN succeeds
	settle(t, p)
	if s := p.Stats(); !s.TunnelDown || s.Health != Unreachable {
		t.Fatalf("a probe that started before the DOWN undid it: %+v", s)
	}
}

func TestCloseDuringProbeOrCanaryReturnsFast(t *testing.T) {
	for _, name := range []string{"probe", "canary"} {
		t.Run(name, func(t *testing.T) {
			p, d, _ := supPool(t, nil)
			d.connectHang.Store(true) // every connect hangs in its login
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

func TestRequestWaitingAtTheGateProbesNow(t *testing.T) {
	p, d, _ := supPool(t, func(c *Config) { c.DownWait = 5 * time.Second })
	dead := errors.New("dial tcp: connect: connection timed out")
	d.connectErr.Store(&dead)
	apply(t, p, down("t"))
	// While the path stays dead the probes back off.
	waitFor(t, func() bool { return p.Stats().ProbeFailures >= 5 })
	d.connectErr.Store(nil) // the path is back; the next scheduled probe is far off
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
	apply(t, p, down("t"))
	opened := d.opened.Load()
	slowConnects(d)
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
		p, _, _ := supPool(t, nil)
		idleConns(t, p, 4)
		apply(t, p, down("t"))
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

// After an UP the pool is rebuilt alongside the check (canary), not after
// it: the rebuild's connects start while the gate still holds requests,
// and no second rebuild follows the canary's success.
func TestRebuildStartsWithTheCanaryAfterUp(t *testing.T) {
	p, d, _ := supPool(t, nil)
	idleConns(t, p, 3)
	apply(t, p, down("t"))
	var started atomic.Int32
	release := make(chan struct{})
	hook := func() error { started.Add(1); <-release; return nil }
	d.connectHook.Store(&hook)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	opened, probes := d.opened.Load(), p.Stats().Probes
	p.Notify(up("t"))
	p.sup.sync(func() { p.sup.step() })
	waitFor(t, func() bool { return started.Load() >= 4 }) // the canary and 3 rebuilt
	if s := p.Stats(); !s.TunnelDown {
		t.Fatalf("the gate opened before any connection succeeded: %+v", s)
	}
	close(release)
	settle(t, p)
	waitFor(t, func() bool { return p.Stats().Rebuilt == 3 })
	// Connects counted before probes: a probe starting in between is
	// subtracted without its connect, never the other way round.
	all := d.opened.Load() - opened
	s := p.Stats()
	if pooled := all - int64(s.Probes-probes); s.TunnelDown || pooled > 3 {
		t.Fatalf("after the canary: gate shut %v, %d pooled connects; want open, 3 (no second rebuild)", s.TunnelDown, pooled)
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
	apply(t, p, down("t"))
	closed := d.closed.Load()
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

// A DOWN inside a storm (within the cooldown of the last sever) severs and
// resets nothing, but (unless it came within milliseconds of the UP) holds
// the gate and has a conn lent out before it pinged at its next borrow (its
// flow may have died with the tunnel); the UP reopens without a reset; a
// storm that ends down is an outage.
func TestDownInsideAStormHoldsTheGate(t *testing.T) {
	p, _, clk := supPool(t, func(c *Config) {
		c.Tunnels = []string{"t"}
		c.LivenessIdle = time.Hour // only the hold can make a borrow ping
	})
	db := p.DB()
	apply(t, p, down("t")) // the storm's first DOWN severs
	apply(t, p, up("t"))
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	// A DOWN 10ms after the UP: toggles faster than the prober's shortest
	// spacing are noise, and the gate stays open.
	clk.advance(10 * time.Millisecond)
	apply(t, p, down("t"))
	if s := p.Stats(); s.TunnelDown {
		t.Fatalf("DOWN 10ms after the UP: %+v; want the gate open", s)
	}
	apply(t, p, up("t"))
	s0 := p.Stats()
	clk.advance(300 * time.Millisecond)
	apply(t, p, down("t"))
	s := p.Stats()
	if !s.TunnelDown || s.Severs != s0.Severs || s.Resets != s0.Resets || s.Generation != s0.Generation {
		t.Fatalf("DOWN inside the storm: %+v (before %+v); want the gate held, nothing severed or reset", s, s0)
	}
	if err := db.Ping(); err != nil { // the path works here: the ping answers
		t.Fatal(err)
	}
	if n := p.Stats().LivenessChecks - s0.LivenessChecks; n != 1 {
		t.Fatalf("borrow of a conn lent out before the held DOWN: %d liveness pings; want 1", n)
	}
	clk.advance(300 * time.Millisecond)
	apply(t, p, up("t"))
	s = p.Stats()
	if s.TunnelDown || s.Resets != s0.Resets {
		t.Fatalf("UP after a held DOWN: %+v; want the gate open, no reset", s)
	}
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if n := p.Stats().LivenessChecks - s0.LivenessChecks; n != 1 {
		t.Fatalf("a conn lent out after the held DOWN was pinged again (%d pings; want 1)", n)
	}
	// The storm ends down: once it has been quiet for the cooldown, the
	// held DOWN is an outage like any other (sever).
	clk.advance(300 * time.Millisecond)
	apply(t, p, down("t"))
	clk.advance(2 * time.Second)
	apply(t, p)
	if s := p.Stats(); !s.TunnelDown || s.Severs != s0.Severs+1 {
		t.Fatalf("storm ended down: %+v; want the gate shut and one more sever", s)
	}
}

// After an UP, the rebuild's connections are the check of the path: the
// first to connect opens the gate, and no separate probe connection is
// made (one server session fewer starting at that moment). When none
// connects, the gate stays shut until a probe finds the path, and the pool
// is rebuilt then.
func TestRebuildAfterUpIsTheCheck(t *testing.T) {
	t.Run("path back", func(t *testing.T) {
		var mu sync.Mutex
		var kinds []EventKind
		p, d, _ := supPool(t, func(c *Config) {
			c.OnEvent = func(ev Event) { mu.Lock(); kinds = append(kinds, ev.Kind); mu.Unlock() }
		})
		idleConns(t, p, 4)
		apply(t, p, down("t"))
		mu.Lock()
		kinds = nil
		mu.Unlock()
		slowConnects(d)
		apply(t, p, up("t"))
		waitFor(t, func() bool { return p.Stats().Rebuilt == 4 })
		if s := p.Stats(); s.TunnelDown {
			t.Fatalf("UP, rebuild connected: %+v; want the gate open", s)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, k := range kinds {
			if k == EventProbe {
				t.Fatalf("events after UP %v: a probe connection before the gate opened; want the rebuild to be the check", kinds)
			}
			if k == EventHealthChange {
				break // the gate opened
			}
		}
	})
	t.Run("path not back yet", func(t *testing.T) {
		p, d, _ := supPool(t, nil)
		idleConns(t, p, 4)
		apply(t, p, down("t"))
		dead := errors.New("dial tcp: connect: connection timed out")
		d.connectErr.Store(&dead)
		apply(t, p, up("t"))
		if s := p.Stats(); !s.TunnelDown || s.Rebuilt != 0 {
			t.Fatalf("UP while every connect fails: %+v; want the gate still shut, nothing rebuilt", s)
		}
		slowConnects(d)
		d.connectErr.Store(nil) // the prober's next look finds the path
		waitFor(t, func() bool { s := p.Stats(); return !s.TunnelDown && s.Rebuilt == 4 })
	})
}

// slowConnects makes every connect take 20ms, as on a network: all the
// borrows of a rebuild then take a conn before the first is back (with
// instant ones a borrow can get a conn its sibling has already readied;
// it is given back and the rebuild readies fewer).
func slowConnects(d *fakeDriver) {
	hook := func() error { time.Sleep(20 * time.Millisecond); return nil }
	d.connectHook.Store(&hook)
}
