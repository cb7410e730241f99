package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// fakeClock is an injectable clock: tests move time, nothing sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestHealthStrings(t *testing.T) {
	for h, want := range map[Health]string{Healthy: "healthy", Suspect: "suspect", Unreachable: "unreachable", Recovering: "recovering", Health(9): "Health(9)"} {
		if h.String() != want {
			t.Errorf("%d: %q", int(h), h.String())
		}
	}
}

func TestEvidenceCountsDistinctConns(t *testing.T) {
	var e evidence
	c1, c2 := &conn{}, &conn{}
	e.add(c1)
	e.add(c2)
	e.add(c1)
	if n := e.take(); n != 2 {
		t.Fatalf("evidence = %d; want 2 distinct conns", n)
	}
	if n := e.take(); n != 0 {
		t.Fatalf("evidence not cleared: %d", n)
	}
}

// health returns the supervisor's judgement as Stats shows it.
func health(p *Pool) Health { return Health(p.healthNow.Load()) }

// tick runs one scheduled round of the supervisor, as if other operations
// had (progress) or had not reached the server since the last round, and
// waits until every probe it started has been acted on.
func tick(t testing.TB, p *Pool, progress bool) {
	t.Helper()
	p.sup.sync(func() {
		p.sup.lastOps = p.totalOps()
		if progress {
			p.sup.lastOps--
		}
		p.sup.step()
		p.sup.m.progress = progress
		p.sup.apply(input{kind: inTimer, timer: timerRoutine})
	})
	settle(t, p)
}

// settle waits until the supervisor runs no probe, has none to run and no
// evidence waits for it (a suspectConn whose wake-up the loop has not
// handled yet).
func settle(t testing.TB, p *Pool) {
	t.Helper()
	waitFor(t, func() bool {
		p.evidence.mu.Lock()
		busy := len(p.evidence.conns) > 0
		p.evidence.mu.Unlock()
		// A failed connect the loop has not taken yet (it starts a check).
		busy = busy || p.connectFailed.Load()
		p.sup.sync(func() { busy = busy || p.sup.m.running || p.sup.m.pending != 0 || p.sup.checks > 0 })
		return !busy
	})
}

// proberPool is a pool whose supervisor is driven by hand (tick), with an
// injected clock, over a fake driver whose connects can be made to fail.
func proberPool(t *testing.T) (*Pool, *fakeDriver, *fakeClock, *[]Event) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var mu sync.Mutex
	var events []Event
	cfg := quietConfig()
	cfg.ProbeInterval = time.Hour // the schedule never fires: tests tick by hand
	cfg.now = clk.now
	cfg.LivenessIdle = -1
	cfg.OnEvent = func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }
	p, d := openFake(t, cfg, true)
	return p, d, clk, &events
}

func count(evs *[]Event, k EventKind) int {
	n := 0
	for _, e := range *evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// The prober finds a dead path (a lost conn is the hint): the gate shuts
// and the idle conns are retired, nothing in flight is severed, and a dead
// server costs no reset loop; when the path answers again the gate opens.
func TestProberFindsADeadPathAndItsReturn(t *testing.T) {
	p, d, _, evs := proberPool(t)
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	d.kill()
	p.suspectConn(nil)
	tick(t, p, false)
	if s := p.Stats(); health(p) != Unreachable || !s.TunnelDown || s.Severs != 0 || s.Resets != 1 {
		t.Fatalf("after a failed check: state %v %+v; want unreachable, gate shut, 1 reset and no sever", health(p), s)
	}
	for range 5 {
		tick(t, p, false)
	}
	waitFor(t, func() bool { return p.Stats().ProbeFailures >= 3 }) // rechecked every 50ms
	if s := p.Stats(); s.Resets != 1 {
		t.Fatalf("while down: %+v; want no more resets (no reset loop when the server is down), checks going on", s)
	}
	d.revive()
	waitFor(t, func() bool { return !p.Stats().TunnelDown })
	if h := health(p); h == Unreachable || h == Suspect {
		t.Fatalf("after the path answers: state %v", h)
	}
	tick(t, p, true) // traffic flows
	waitFor(t, func() bool { return health(p) == Healthy })
	if n := count(evs, EventHealthChange); n < 3 {
		t.Fatalf("%d state-change events; want each transition reported", n)
	}
}

func TestProberSeedCaseSeversWhenPathWorksButOldConnsDont(t *testing.T) {
	p, d, clk, _ := proberPool(t)
	db := p.DB()
	db.SetMaxIdleConns(4)
	ctx := context.Background()
	// Two pooled conns that stop answering (the rekey case), while new
	// connections work.
	c1, _ := db.Conn(ctx)
	c2, _ := db.Conn(ctx)
	c1.PingContext(ctx)
	c2.PingContext(ctx)
	c1.Close()
	c2.Close()
	before := d.all()
	for _, fc := range before {
		fc.pingMode.Store(1)
	}
	tick(t, p, false) // idle: pings one pooled conn, it fails → fresh probe ok → new generation
	if s := p.Stats(); s.Resets != 1 || health(p) != Recovering {
		t.Fatalf("seed case: resets %d state %v; want 1 and recovering", s.Resets, health(p))
	}
	waitFor(t, func() bool { return p.Stats().Rebuilt == 2 }) // the rebuild's conns are there to sample
	for _, fc := range before {
		if !fc.closed.Load() {
			t.Fatal("a dead idle conn survived the reset")
		}
	}
	// The limiter: evidence again (and the idle conns the supervisor samples
	// to confirm it dead too) inside the cooldown does not reset at once.
	for _, fc := range d.all() {
		fc.pingMode.Store(1)
	}
	p.suspectConn(&conn{})
	p.suspectConn(&conn{})
	tick(t, p, false)
	if s := p.Stats(); s.Resets != 1 {
		t.Fatalf("reset inside the cooldown: %d resets", s.Resets)
	}
	// The one limiter owes that reset, and makes it when the cooldown ends.
	clk.advance(2 * time.Second)
	waitFor(t, func() bool { return p.Stats().Resets == 2 })
}

// Two failed conns whose failure an idle conn does not confirm (a lossy
// path where two pings missed their deadline) do not reset the pool.
func TestProberUnconfirmedEvidenceDoesNotReset(t *testing.T) {
	p, _, _, _ := proberPool(t)
	db := p.DB()
	ctx := context.Background()
	c, _ := db.Conn(ctx)
	c.PingContext(ctx)
	c.Close() // one healthy idle conn to sample
	p.suspectConn(&conn{})
	p.suspectConn(&conn{})
	tick(t, p, false)
	if s := p.Stats(); s.Resets != 0 || health(p) != Healthy {
		t.Fatalf("unconfirmed evidence: resets %d state %v; want no reset, healthy", s.Resets, health(p))
	}
}

func TestProberOneBadConnDoesNotReset(t *testing.T) {
	p, _, _, _ := proberPool(t)
	db := p.DB()
	ctx := context.Background()
	c, _ := db.Conn(ctx)
	c.PingContext(ctx)
	c.Close() // one healthy idle conn
	p.suspectConn(&conn{})
	tick(t, p, true)
	if s := p.Stats(); s.Resets != 0 || health(p) != Healthy {
		t.Fatalf("one lost conn: resets %d state %v; want no reset, healthy", s.Resets, health(p))
	}
}

func TestProberSkipsWhenTrafficProvesHealth(t *testing.T) {
	p, d, _, _ := proberPool(t)
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	pings := d.pings.Load()
	tick(t, p, true)
	if d.pings.Load() != pings || p.Stats().Probes != 0 {
		t.Fatal("prober probed although traffic proved the path")
	}
	tick(t, p, false) // idle: one cheap ping of a pooled conn, no fresh connection
	if d.pings.Load() != pings+1 || p.Stats().Probes != 0 {
		t.Fatalf("idle tick: pings +%d, fresh probes %d; want one ping, no fresh probe", d.pings.Load()-pings, p.Stats().Probes)
	}
}

// One session killed while another conn is busy with a healthy query and
// nothing is idle: the prober must not cut the healthy query.
func TestProberDoesNotCutHealthyBusyConns(t *testing.T) {
	p, _, _, _ := proberPool(t)
	db := p.DB()
	errc := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(context.Background(), "hang") // a long, healthy query
		errc <- err
	}()
	waitFor(t, func() bool { return db.Stats().InUse == 1 })
	p.suspectConn(&conn{})
	tick(t, p, false)
	select {
	case err := <-errc:
		t.Fatalf("a healthy in-flight query was cut by the prober: %v", err)
	default:
	}
	if s := p.Stats(); s.Severs != 0 || s.SeveredSockets != 0 {
		t.Fatalf("severs %d, sockets %d; want none", s.Severs, s.SeveredSockets)
	}
	p.Sever("test cleanup")
	<-errc
}

func TestEventErrorsAreRedacted(t *testing.T) {
	var got []Event
	var mu sync.Mutex
	cfg := quietConfig()
	cfg.OnEvent = func(ev Event) { mu.Lock(); got = append(got, ev); mu.Unlock() }
	p, _ := openFake(t, cfg, false)
	p.secrets = []string{"hunter2"}
	p.emit(Event{Kind: EventConnLost, Err: errors.New("login as sa:hunter2 failed")})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Err == nil || strings.Contains(got[0].Err.Error(), "hunter2") {
		t.Fatalf("event error not redacted: %v", got)
	}
}

// A fresh probe that fails while other work succeeds (the probe started
// into a dead path that has since come back) must not sever.
func TestProberFailedProbeWithProgressDoesNotSever(t *testing.T) {
	p, d, _, _ := proberPool(t)
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	hook := func() error {
		// While the probe connects, someone else's request succeeds.
		d.connectHook.Store(nil)
		if err := p.DB().Ping(); err != nil {
			t.Error(err)
		}
		return errors.New("dial tcp: i/o timeout")
	}
	d.connectHook.Store(&hook)
	p.suspectConn(nil)
	tick(t, p, false)
	if s := p.Stats(); s.Severs != 0 || health(p) == Unreachable {
		t.Fatalf("severs %d state %v; a probe that failed while the path worked must not sever", s.Severs, health(p))
	}
}

// A tunnel DOWN whose UP never comes is bounded by the prober: once a
// fresh connection succeeds, the gate opens.
func TestProberReopensAfterDownWithoutUp(t *testing.T) {
	p, _, _, _ := proberPool(t)
	p.Notify(detect.Event{Tunnel: "t", State: detect.Down})
	waitFor(t, func() bool { return p.Stats().TunnelDown })
	tick(t, p, false)
	// Recovering, or already Healthy if a later round found traffic.
	if s := p.Stats(); s.TunnelDown || (health(p) != Recovering && health(p) != Healthy) {
		t.Fatalf("after a good fresh probe: tunnel down %v, state %v; want the gate open and recovering", s.TunnelDown, health(p))
	}
	if err := p.DB().Ping(); err != nil {
		t.Fatalf("ping after reopening: %v", err)
	}
}

// A conn of a generation the pool already retired (a reset, a sever) is no
// evidence against the path when it fails: the pool acted already.
func TestLostConnOfARetiredGenerationIsNoEvidence(t *testing.T) {
	for _, retired := range []bool{false, true} {
		t.Run(fmt.Sprintf("retired %v", retired), func(t *testing.T) {
			p, d, _, _ := proberPool(t)
			d.execErrs = make(chan error, 1)
			ctx := context.Background()
			c, err := p.DB().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.ExecContext(ctx, "INSERT"); err != nil {
				t.Fatal(err)
			}
			if retired {
				p.Reset("test")
			}
			d.execErrs <- syscall.ECONNRESET
			// On the supervisor's goroutine, so its tick cannot take the
			// evidence first.
			var n int
			var execErr error
			p.sup.sync(func() {
				_, execErr = c.ExecContext(ctx, "INSERT")
				n = p.evidence.take()
			})
			if execErr == nil {
				t.Fatal("exec succeeded; want the injected loss")
			}
			want := 1
			if retired {
				want = 0
			}
			if n != want || p.Stats().ConnsLost != 1 {
				t.Fatalf("evidence %d, conns lost %d; want %d, 1", n, p.Stats().ConnsLost, want)
			}
		})
	}
}
