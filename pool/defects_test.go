package pool

import (
	"context"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// Defects of the supervisor before verify-then-act (issue 25), each with
// the trigger that showed it. Each of these failed on the old supervisor.

// Defect 4: dips were applied before the other events of a batch, across
// tunnels: aws-2 down for maintenance, then aws-2 UP, aws-1 DOWN, aws-1 UP
// in one batch severed the pool although in arrival order the path was
// never down.
func TestEventsApplyInArrivalOrder(t *testing.T) {
	p, _, _ := supPool(t, func(c *Config) { c.Tunnels = []string{"aws-1", "aws-2"} })
	apply(t, p, down("aws-2"))
	p.sup.sync(func() {
		for _, ev := range []detect.Event{up("aws-2"), down("aws-1"), up("aws-1")} {
			p.Notify(ev)
		}
	})
	apply(t, p)
	if s := p.Stats(); s.Severs != 0 || s.Resets != 0 || s.TunnelDown {
		t.Fatalf("%+v; want nothing severed, reset or gated: the path was never reported down", s)
	}
}

// Defect 6: with ProbeInterval < 0 the health stayed Recovering forever
// after an outage.
func TestHealthRecoversWithoutTheProber(t *testing.T) {
	p, d, _ := supPool(t, func(c *Config) { c.ProbeInterval = -1 })
	d.kill()
	apply(t, p, down("t"))
	d.revive()
	apply(t, p, up("t"))
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	p.sup.sync(func() { p.sup.step() })
	if h := health(p); h != Healthy {
		t.Fatalf("health %v after recovery and a successful operation; want healthy", h)
	}
}

// Defect 11: failed connects were no evidence: a quiet pool whose idle
// conns had expired, path dead, made every request wait its connect
// timeout while Health said Healthy.
func TestFailedConnectsAreHints(t *testing.T) {
	p, d, _ := supPool(t, nil)
	p.DB().SetMaxIdleConns(0) // nothing pooled: every request connects
	d.kill()
	if err := p.DB().Ping(); err == nil {
		t.Fatal("ping on a dead path succeeded")
	}
	waitFor(t, func() bool { return health(p) == Unreachable && p.Stats().TunnelDown })
}

// Defect 15: a duplicate UP reset a single-tunnel pool (two feeds
// reporting the same UP made a full rebuild).
func TestDuplicateUpCostsNothing(t *testing.T) {
	p, _, _ := supPool(t, func(c *Config) { c.Tunnels = []string{"t"} })
	apply(t, p, up("t"))
	apply(t, p, up("t"))
	if s := p.Stats(); s.Resets != 0 || s.Severs != 0 {
		t.Fatalf("%+v; want no reset for an UP of a tunnel that is up", s)
	}
}

// Defect 9: the cooldown covered only some resets: DOWN, Rekey, UP closed
// the rebuilt conns and rebuilt them a second time.
func TestDownRekeyUpResetsOnce(t *testing.T) {
	p, d, _ := supPool(t, nil)
	idleConns(t, p, 2)
	d.kill()
	apply(t, p, down("t"))
	d.revive()
	apply(t, p, detect.Event{Tunnel: "t", State: detect.Rekey}, up("t"))
	waitFor(t, func() bool { return p.Stats().Rebuilt >= 2 })
	settle(t, p)
	if s := p.Stats(); s.Resets != 1 || s.Rebuilt != 2 {
		t.Fatalf("%+v; want one reset and the 2 idle conns rebuilt once", s)
	}
}

// Defect 12: AllTunnels events were not counted in the inbox bound:
// Tunnels ["t"], a DOWN of t and then an UP for every tunnel dropped the
// UP as "too many tunnels".
func TestAllTunnelsUpIsTakenAfterADown(t *testing.T) {
	p, _, _ := supPool(t, func(c *Config) { c.Tunnels = []string{"t"} })
	if err := p.Accept(down("t")); err != nil {
		t.Fatal(err)
	}
	if err := p.Accept(detect.Event{Tunnel: detect.AllTunnels, State: detect.Up}); err != nil {
		t.Fatalf("UP for every tunnel after a DOWN: %v; want it taken", err)
	}
}

// Defect 16: an early UP (the path still dead) repeated an n-way rebuild
// into the dead path; now it is one check, and nothing is rebuilt until a
// check finds the path.
func TestEarlyUpIsOneCheckNoRebuild(t *testing.T) {
	p, d, _ := supPool(t, func(c *Config) { c.ProbeInterval = -1 })
	idleConns(t, p, 4)
	d.kill()
	apply(t, p, down("t"))
	probes := p.Stats().Probes
	apply(t, p, up("t")) // the path is still dead
	s := p.Stats()
	if !s.TunnelDown || s.Rebuilt != 0 || s.Probes-probes != 1 {
		t.Fatalf("%+v (%d probes); want the gate shut, nothing rebuilt, one check", s, s.Probes-probes)
	}
}

// Defect 17: gate.stop opened and marked stopped under two lock
// acquisitions (TunnelDown could read true after Close), and an OnEvent
// callback that called Close deadlocked.
func TestCloseFromOnEventAndGateAfterClose(t *testing.T) {
	var p *Pool
	closed := make(chan struct{})
	p, d, _ := supPool(t, func(c *Config) {
		c.OnEvent = func(ev Event) {
			if ev.Kind == EventHealthChange && ev.To == Unreachable {
				p.Close() // on the supervisor's goroutine: it waited for itself
				close(closed)
			}
		}
	})
	d.kill()
	p.Notify(down("t"))
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close called from OnEvent did not return")
	}
	if p.Stats().TunnelDown {
		t.Fatal("TunnelDown true after Close")
	}
	if _, err := p.NotifyWait(context.Background(), up("t")); err != nil {
		t.Fatal(err)
	}
}
