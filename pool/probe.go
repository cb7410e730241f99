package pool

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

type jobKind int

const (
	jobIdle   jobKind = iota + 1 // ping one idle pooled conn
	jobFresh                     // make, ping and close a new connection
	jobCanary                    // jobFresh after the tunnels came up
	jobVerify                    // jobFresh with a short deadline: is a tunnel's DOWN an outage?
)

// job is one probe the supervisor asked for, with what it knew then.
type job struct {
	kind     jobKind
	idle     *conn
	tunnel   string
	evidence int // distinct conns that failed
	stalled  int // busy conns retransmitting into the void
	idleDead bool
	epoch    uint64
}

type probeResult struct {
	job
	err        error // of the fresh connection
	idleOK     bool  // jobIdle: the conn answered
	sampleDead bool  // an idle conn sampled after a good fresh probe failed
	progress   bool  // other work reached the server meanwhile
}

// tick looks at the path (supervisor goroutine). timed: the schedule woke
// it, not only a kick.
func (s *supervisor) tick(timed bool) {
	p := s.p
	ops, connects := p.totalOps(), p.stats.connects.Load()
	progress, newConns := ops != s.lastOps, connects != s.lastConnects
	s.lastOps, s.lastConnects = ops, connects
	s.evidence += p.evidence.take()
	waiting := p.waiting.Swap(false)

	if s.gated || s.health == Unreachable {
		s.evidence = 0
		if !s.gated && newConns {
			s.recovered("a new connection succeeded")
			return
		}
		down, _ := s.tunnels.pathState()
		if p.cfg.ProbeInterval == off && (down || !s.gated) {
			return // no prober: only the tunnels' UP reopens
		}
		if timed || waiting {
			s.startProbe(job{kind: jobFresh})
		}
		return
	}
	if progress {
		s.reap() // the path works: end what lost conns left behind
	}
	if p.cfg.ProbeInterval == off {
		s.evidence = 0 // no prober: lost conns are discarded one by one
		return
	}
	stalled := p.stalledConns()
	if s.health == Healthy && s.evidence == 0 && stalled == 0 {
		if !timed || progress {
			return // traffic proves the path, or nothing asked
		}
		if c := p.pickIdle(); c != nil {
			s.startProbe(job{kind: jobIdle, idle: c})
		}
		return
	}
	if s.health == Recovering && progress && s.evidence == 0 && stalled == 0 {
		s.setHealth(Healthy, "operations succeed")
		return
	}
	if s.resetWanted && !s.cooled(s.lastReset) {
		return // a reset is already due at the end of the cooldown
	}
	if s.health == Healthy {
		s.setHealth(Suspect, "a connection failed")
	}
	s.startProbe(job{kind: jobFresh, evidence: s.evidence, stalled: stalled})
	s.evidence = 0
}

// startProbe runs j on a goroutine of its own; one probe at a time.
func (s *supervisor) startProbe(j job) {
	if s.probing {
		s.probeAgain = true
		return
	}
	s.probing = true
	j.epoch = s.epoch
	p := s.p
	ops0, conns0 := p.totalOps(), p.stats.connects.Load()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r := s.run(j)
		r.progress = p.totalOps() > ops0 || p.stats.connects.Load() > conns0
		select {
		case s.results <- r:
		case <-s.ctx.Done():
		}
	}()
}

// run does a job's I/O, under the supervisor's context.
func (s *supervisor) run(j job) probeResult {
	p := s.p
	r := probeResult{job: j}
	switch j.kind {
	case jobIdle:
		r.idleOK = p.probeIdle(s.ctx, j.idle)
	case jobVerify:
		r.err = p.freshProbe(s.ctx, p.verifyTimeout())
	default:
		r.err = p.freshProbe(s.ctx, p.cfg.ProbeTimeout)
		if r.err == nil && j.evidence == 1 {
			c := p.pickIdle()
			r.sampleDead = c != nil && !p.probeIdle(s.ctx, c)
		}
	}
	return r
}

// onProbe acts on a probe's result (supervisor goroutine).
func (s *supervisor) onProbe(r probeResult) {
	p := s.p
	if r.kind == jobVerify {
		s.verifying = ""
	}
	if r.kind == jobCanary {
		s.canary = false
	}
	if r.epoch != s.epoch {
		// A tunnel event overtook the probe: what it saw may be stale.
		// Look again rather than undo the event.
		if s.gated || s.health != Healthy || r.kind == jobVerify {
			s.probeAgain = true
		}
		return
	}
	switch r.kind {
	case jobIdle:
		if !r.idleOK {
			s.startProbe(job{kind: jobFresh, idleDead: true})
		}
		return
	case jobVerify:
		if r.err != nil && !r.progress {
			s.tunnels.confirmDown(r.tunnel)
			s.goDown(fmt.Sprintf("tunnel %s down and a fresh connection failed", r.tunnel))
		} else {
			s.tunnels.checkedHarmless(r.tunnel)
			p.log.Info("flapguard: a tunnel is down but the path answers; nothing severed", "tunnel", r.tunnel)
		}
		return
	}
	if r.err != nil {
		if r.progress {
			// Work succeeded while the probe failed: the probe started into
			// a dead path that has come back since. Severing now would cut
			// healthy work; look again.
			s.kick()
			return
		}
		if s.health != Unreachable {
			s.idleBefore = max(s.idleBefore, p.idleCount())
			s.setHealth(Unreachable, "a fresh connection failed")
			// Once, on becoming unreachable: requests hung on the dead
			// path return now. While unreachable, failed probes change
			// nothing (no reset loop when the server itself is down).
			p.reset("path down: fresh connection failed", true)
			s.resetDone = false
			p.promoteOrphanCandidates()
		}
		s.backoff = min(max(2*s.backoff, minProbeBackoff), p.cfg.probeCeiling())
		s.armIn(s.backoff)
		return
	}
	if s.gated || s.health == Unreachable {
		s.recovered("a fresh connection succeeded")
		return
	}
	if r.stalled > 0 || r.idleDead || r.evidence >= 2 || (r.evidence == 1 && r.sampleDead) {
		// The path works but old flows don't: the tunnel came back with new
		// security associations and the old flows are blackholed. A new
		// generation retires the idle conns and discards the busy ones on
		// return; only the busy conns whose sockets are retransmitting into
		// the void are severed, so a healthy query in flight is never cut
		// because some other connection died.
		p.promoteOrphanCandidates()
		if s.autoReset("path works but old connections are dead", true) {
			if n := p.severStalled(); n > 0 {
				p.stats.severedSockets.Add(uint64(n))
			}
			s.setHealth(Recovering, "old connections discarded")
			s.reap()
		}
		return
	}
	// One connection went bad (it was discarded); the rest are fine.
	s.setHealth(Healthy, "path and pooled connections answer")
	s.reap()
}

// probeCeiling is the longest spacing of probes while the path is down.
func (c *Config) probeCeiling() time.Duration {
	if c.ProbeInterval == off {
		return defaultProbeInterval
	}
	return c.ProbeInterval
}

// verifyTimeout bounds the fresh connection that decides whether one
// tunnel's DOWN is an outage: a few connect times as measured, within
// [2×LivenessTimeoutMin, ProbeTimeout].
func (p *Pool) verifyTimeout() time.Duration {
	d := 4 * time.Duration(p.connectEWMA.Load())
	return min(max(d, 2*p.cfg.LivenessTimeoutMin), p.cfg.ProbeTimeout)
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

// idleCount counts the pooled conns database/sql holds idle.
func (p *Pool) idleCount() int {
	n := 0
	for _, c := range p.snapshot() {
		if s := c.state.Load(); s == stateIdle || s == stateFresh {
			n++
		}
	}
	return n
}

// probeIdle pings an idle conn while database/sql cannot lend it out (a
// borrower waits for the probe). It reports whether the conn answered; a
// conn that does not is closed.
func (p *Pool) probeIdle(ctx context.Context, c *conn) bool {
	ch := make(chan struct{})
	c.probeMu.Lock()
	c.probeDone = ch
	c.probeMu.Unlock()
	if !c.state.CompareAndSwap(stateIdle, stateProbing) {
		close(ch)
		return true // borrowed meanwhile: its user will find out
	}
	l := c.l()
	err := l.pingWithin(ctx, p.livenessTimeout(l.socks.current()))
	ok := err == nil || ctx.Err() != nil
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

// freshProbe makes a new connection (not pooled), pings it and closes it,
// within d. An error the server sent (classified alive: too many
// connections, login failed) still proves the path works, so it counts as
// success.
func (p *Pool) freshProbe(parent context.Context, d time.Duration) error {
	p.stats.probes.Add(1)
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	rc, err := p.conn.dial(ctx)
	if err == nil {
		if pg, ok := rc.inner.(driver.Pinger); ok {
			err = pg.Ping(ctx)
		}
		rc.close()
	}
	if err != nil && ctx.Err() == nil && !p.classify(err).IsLost() {
		err = nil
	}
	if parent.Err() != nil {
		return err // closing: not a verdict on the path
	}
	if err != nil {
		p.stats.probeFailures.Add(1)
	}
	p.emit(Event{Kind: EventProbe, Err: err})
	return err
}
