package pool

import (
	"context"
	"database/sql/driver"
	"math/rand/v2"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// probeLoop is the prober's goroutine. It wakes every ProbeInterval (±20%)
// or when a failure kicks it, and tells "one bad connection" from "the path
// is dead" from "the path is back but old flows are dead" (the rekey case).
func (p *Pool) probeLoop() {
	defer p.wg.Done()
	if p.cfg.ProbeInterval == off {
		<-p.done
		return
	}
	t := time.NewTimer(p.jitter())
	defer t.Stop()
	lastOps := p.totalOps()
	for {
		select {
		case <-p.done:
			return
		case <-p.trigger:
		case <-t.C:
		}
		ops := p.totalOps()
		p.probeTick(ops != lastOps)
		lastOps = p.totalOps()
		t.Reset(p.jitter())
	}
}

func (p *Pool) jitter() time.Duration {
	d := p.cfg.ProbeInterval
	return d - d/5 + rand.N(2*d/5+1)
}

// probeTick is one round of the prober. progress says whether operations
// reached the server since the last round.
func (p *Pool) probeTick(progress bool) {
	st := p.health.get()
	if progress && st != StateDown {
		p.reapOrphans() // the path works: end what lost conns left behind
	}
	evidence := p.health.takeEvidence()
	stalled := p.stalledConns()
	idleDead := false
	if st == StateHealthy && evidence == 0 && stalled == 0 {
		if progress {
			return // real traffic proves the path: no probe
		}
		c := p.pickIdle()
		if c == nil {
			return // nothing pooled, nothing to check
		}
		if p.probeIdle(c) {
			return
		}
		idleDead = true
	}
	if st == StateRecovering && progress && evidence == 0 && stalled == 0 {
		p.setState(StateHealthy, "operations succeed")
		return
	}

	ops0, conns0 := p.totalOps(), p.stats.connects.Load()
	err := p.freshProbe()
	if err != nil {
		if p.totalOps() > ops0 || p.stats.connects.Load() > conns0 {
			// Requests or new connections succeeded while the probe was
			// failing: the probe started while the path was dead, and the
			// path has come back since. Severing now would cut healthy
			// work; look again.
			p.kick()
			return
		}
		if st != StateDown {
			p.setState(StateDown, "a fresh connection failed")
			// Once, on entering Down: requests hung on the dead path return
			// now. While Down, failed probes change nothing (no reset loop
			// when the server itself is down).
			p.reset("path down: fresh connection failed", true, false)
		}
		return
	}
	if p.gate.isDown() {
		// A tunnel DOWN whose UP never came: the path answers, reopen.
		p.gate.open()
		p.log.Info("flapguard: path answers again; reopening after a tunnel down event without its up")
	}
	switch {
	case st == StateDown:
		p.reset("path back after down", false, false)
		p.abandonPending(p.gen.Load())
		p.setState(StateRecovering, "a fresh connection succeeded")
		p.reapOrphans()
	case stalled > 0 || idleDead || evidence >= 2 || (evidence == 1 && p.idleSampleDead()):
		// The path works but old flows don't: the tunnel came back with new
		// security associations and the old flows are blackholed. A new
		// generation retires the idle conns and discards the busy ones on
		// return; only the busy conns whose sockets are retransmitting
		// into the void are severed, so a healthy query in flight is never
		// cut because some other connection died.
		if p.health.allowReset() {
			p.reset("path works but old connections are dead", false, true)
			if n := p.severStalled(); n > 0 {
				p.stats.severedSockets.Add(uint64(n))
			}
			p.setState(StateRecovering, "old connections discarded")
			p.reapOrphans()
		} else {
			time.AfterFunc(p.cfg.ResetCooldown, p.kick) // storm control: try again after the cooldown
		}
	default:
		// One connection went bad (it was discarded); the rest are fine.
		p.setState(StateHealthy, "path and pooled connections answer")
		p.reapOrphans()
	}
}

// stalledConns counts in-use conns whose socket is retransmitting into the
// void. Needs socket control.
func (p *Pool) stalledConns() int { return len(p.stalled()) }

func (p *Pool) stalled() []*rawConn {
	if p.dialer == nil {
		return nil
	}
	var out []*rawConn
	for _, c := range p.snapshot() {
		l := c.l()
		if c.state.Load() != stateBusy || l.bad.Load() {
			continue
		}
		if s := l.socks.current(); s != nil {
			if st, ok := sockopt.Stalled(s); ok && st {
				out = append(out, l)
			}
		}
	}
	return out
}

// severStalled closes the sockets of the busy conns that are stalled, so
// the requests hung on them return now; it returns how many it closed.
func (p *Pool) severStalled() int {
	n := 0
	for _, l := range p.stalled() {
		l.bad.Store(true)
		n += l.socks.closeAll()
	}
	return n
}

// pickIdle returns an idle conn of the current generation, or nil.
func (p *Pool) pickIdle() *conn {
	gen := p.gen.Load()
	for _, c := range p.snapshot() {
		if l := c.l(); l.gen == gen && !l.bad.Load() && c.state.Load() == stateIdle {
			return c
		}
	}
	return nil
}

// idleSampleDead pings one idle conn and reports whether it failed; with
// none to ask there is no evidence, and it answers false.
func (p *Pool) idleSampleDead() bool {
	c := p.pickIdle()
	return c != nil && !p.probeIdle(c)
}

// probeIdle pings an idle conn while database/sql cannot lend it out (a
// borrower waits for the probe). It reports whether the conn answered; a
// conn that does not is closed.
func (p *Pool) probeIdle(c *conn) bool {
	ch := make(chan struct{})
	c.probeMu.Lock()
	c.probeDone = ch
	c.probeMu.Unlock()
	if !c.state.CompareAndSwap(stateIdle, stateProbing) {
		close(ch)
		return true // borrowed meanwhile: its user will find out
	}
	ok := true
	l := c.l()
	if pg, isPinger := l.inner.(driver.Pinger); isPinger {
		d := p.livenessTimeout(l.socks.current())
		ctx, cancel := context.WithTimeout(context.Background(), d)
		stop := func() bool { return false }
		if l.socks != nil {
			stop = context.AfterFunc(ctx, func() { l.socks.closeAll() })
		}
		err := pg.Ping(ctx)
		stop()
		cancel()
		ok = err == nil
	}
	if ok {
		c.state.Store(stateIdle)
	} else {
		l.bad.Store(true)
		c.retire(true)
		c.state.Store(stateRetired)
	}
	close(ch)
	return ok
}

// freshProbe makes a new connection (not pooled), pings it and closes it.
// An error the server sent (classified alive: too many connections, login
// failed) still proves the path works, so it counts as success.
func (p *Pool) freshProbe() error {
	p.stats.probes.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ProbeTimeout)
	defer cancel()
	ic, err := p.conn.dial(ctx)
	if err == nil {
		if pg, ok := ic.inner.(driver.Pinger); ok {
			err = pg.Ping(ctx)
		}
		ic.close()
	}
	if err != nil && ctx.Err() == nil && !p.classify(err).IsLost() {
		err = nil
	}
	if err != nil {
		p.stats.probeFailures.Add(1)
	}
	p.emit(Event{Kind: EventProbe, Err: err})
	return err
}
