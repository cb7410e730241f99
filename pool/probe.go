package pool

import (
	"context"
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
	jobDown                      // jobFresh with a short deadline while the path is down: is it back?
)

// job is one probe the supervisor asked for, with what it knew then.
type job struct {
	kind     jobKind
	idle     *conn
	tunnel   string
	evidence int  // distinct conns that failed
	stalled  int  // busy conns retransmitting into the void
	short    bool // a stall-triggered probe: deadline from measured connect times
	idleDead bool
	epoch    uint64
}

type probeResult struct {
	job
	started    time.Time // when the probe began (the injected clock)
	err        error     // of the fresh connection
	idleOK     bool      // jobIdle: the conn answered
	sampled    bool      // an idle conn was sampled after a good fresh probe
	sampleDead bool      // and it failed
	progress   bool      // other work reached the server meanwhile
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
			s.recovered("a new connection succeeded", p.cfg.now().Add(-p.downProbeTimeout()))
			return
		}
		down, _ := s.tunnels.pathState()
		if p.cfg.ProbeInterval == off && (down || !s.gated) {
			return // no prober: only the tunnels' UP reopens
		}
		if timed || waiting {
			s.startProbe(job{kind: jobDown})
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
	stalled := len(p.stalled(stallDead))
	// Stall watch: a busy conn whose data went unacknowledged for a
	// retransmission timeout may be the first sign of a dead path or dead
	// flows. A cheap probe (short deadline, at most one per
	// stallProbeEvery) tells; one lost packet on a working path costs
	// nothing more, since nothing is cut unless it stays stalled.
	if stalled == 0 && s.evidence == 0 && len(p.stalled(1)) > 0 && p.cfg.now().Sub(s.lastStallProbe) >= stallProbeEvery {
		s.lastStallProbe = p.cfg.now()
		s.startProbe(job{kind: jobFresh, short: true})
		return
	}
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
	s.startProbe(job{kind: jobFresh, evidence: s.evidence, stalled: stalled, short: stalled > 0})
	s.evidence = 0
}

// startProbe runs j on a goroutine of its own; one probe at a time, but
// the check after the tunnels came up never waits behind a probe still
// stuck in the dead path (goUp cuts that one's connect).
func (s *supervisor) startProbe(j job) {
	if j.kind != jobCanary {
		if s.probing {
			s.probeAgain = true
			return
		}
		s.probing = true
	}
	j.epoch = s.epoch
	p := s.p
	ops0, conns0 := p.totalOps(), p.stats.connects.Load()
	s.wg.Add(1)
	started := p.cfg.now()
	go func() {
		defer s.wg.Done()
		r := s.run(j)
		r.started = started
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
	case jobDown:
		r.err = p.freshProbe(s.ctx, p.downProbeTimeout())
	default:
		d := p.cfg.ProbeTimeout
		if j.short {
			d = p.verifyTimeout()
		}
		r.err = p.freshProbe(s.ctx, d)
		if r.err == nil && (j.evidence >= 1 || j.idleDead) {
			if c := p.pickIdle(); c != nil {
				r.sampled = true
				r.sampleDead = !p.probeIdle(s.ctx, c)
			}
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
		if r.err != nil {
			s.rebuiltAtUp = false // the UP was early: rebuild when the path is found
		}
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
		if ti := s.tunnels.m[r.tunnel]; ti == nil || !ti.down || s.tunnels.checked[r.tunnel] || s.gated {
			return // the tunnel's state changed while the probe ran
		}
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
		now := p.cfg.now()
		if s.health != Unreachable {
			s.downSince = r.started
			s.idleBefore = max(s.idleBefore, p.idleCount())
			s.setHealth(Unreachable, "a fresh connection failed")
			s.resetDone = false
			s.severDue = true
		}
		// Once per outage, when the path has been failing for at least
		// severAfter (a full-length probe proves that by itself), requests
		// hung on the dead path return now. A shorter outage (a flap)
		// severs nothing: flows that survive it by retransmission are
		// left alone, as plain database/sql would. While unreachable,
		// failed probes change nothing more (no reset loop when the server
		// itself is down).
		full := (r.kind == jobFresh || r.kind == jobCanary) && !r.short
		if s.severDue && (full || now.Sub(s.downSince) >= severAfter) {
			s.severDue = false
			p.reset("path down: fresh connection failed", true)
			p.promoteOrphanCandidates()
		}
		ceiling := p.cfg.probeCeiling()
		if p.cfg.now().Sub(s.downSince) < fastProbeFor {
			ceiling = min(ceiling, fastProbeCeiling)
		}
		s.backoff = min(max(2*s.backoff, minProbeBackoff), ceiling)
		s.armIn(s.backoff)
		return
	}
	if s.gated || s.health == Unreachable {
		s.recovered("a fresh connection succeeded", r.started)
		return
	}
	// The path works. Busy conns still retransmitting into the void now
	// (stalled for stallDead timeouts in a row) are dead flows: the tunnel
	// came back with new security associations and the old flows are
	// blackholed. Only they are severed, so a healthy query in flight is
	// never cut because some other connection died.
	// Failed conns (and an idle conn that missed the prober's ping) are
	// weak evidence on a lossy path, where a ping can miss its deadline:
	// with another idle conn to ask, its answer decides; without one, two
	// failed conns do.
	dead := p.severStalled()
	failed := r.evidence
	if r.idleDead {
		failed++
	}
	oldDead := failed >= 1 && (r.sampleDead || !r.sampled && failed >= 2)
	if dead > 0 || oldDead {
		// A new generation retires the idle conns (likely dead too) and
		// discards the busy ones on return.
		p.promoteOrphanCandidates()
		if s.autoReset("path works but old connections are dead", true) {
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

// verifyTimeout bounds a fresh connection that must answer quickly: the
// one that decides whether one tunnel's DOWN is an outage, and the probes
// while the path is down. A few connect times as measured, within
// [2×LivenessTimeoutMin, ProbeTimeout].
func (p *Pool) verifyTimeout() time.Duration {
	d := 4 * time.Duration(p.connectEWMA.Load())
	return min(max(d, 2*p.cfg.LivenessTimeoutMin), p.cfg.ProbeTimeout)
}

// downProbeTimeout bounds the probes while the path is down: a few connect
// times, at least 150ms, so one stuck in a SYN into the void gives way
// soon to the next.
func (p *Pool) downProbeTimeout() time.Duration {
	d := 3 * time.Duration(p.connectEWMA.Load())
	return min(max(d, 150*time.Millisecond), p.cfg.ProbeTimeout)
}

// stalled returns the in-use conns whose socket has had at least min
// retransmission timeouts in a row for unacknowledged data. Needs socket
// control.
func (p *Pool) stalled(min int) []*rawConn {
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
			if n, ok := sockopt.Stalled(s); ok && n >= min {
				out = append(out, l)
			}
		}
	}
	return out
}

// severStalled closes the sockets of the busy conns stalled for stallDead
// timeouts in a row, so the requests hung on them return now; it returns
// how many it closed.
func (p *Pool) severStalled() int {
	n := 0
	for _, l := range p.stalled(stallDead) {
		l.bad.Store(true)
		n += l.socks.closeAll()
	}
	p.stats.severedSockets.Add(uint64(n))
	return n
}

// pickIdle returns the idle conn of the current generation that was lent
// out least recently, or nil. database/sql lends the most recently
// returned conn first (sql.go, DB.conn: freeConn[last]), so this is the
// one a request is least likely to need while the probe holds it.
func (p *Pool) pickIdle() *conn {
	gen := p.gen.Load()
	var best *conn
	for _, c := range p.snapshot() {
		if l := c.l(); l.gen == gen && !l.bad.Load() && c.state.Load() == stateIdle {
			if best == nil || c.usedAt.Load() < best.usedAt.Load() {
				best = c
			}
		}
	}
	return best
}

// busyCount counts the pooled conns lent out.
func (p *Pool) busyCount() int {
	n := 0
	for _, c := range p.snapshot() {
		if c.state.Load() == stateBusy {
			n++
		}
	}
	return n
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
	if err == nil {
		c.probedAt.Store(p.monoNow())
	}
	if ok {
		if !c.state.CompareAndSwap(stateProbing, stateIdle) {
			l.close() // database/sql closed it meanwhile (conn.Close left this to us)
		}
	} else {
		l.bad.Store(true)
		c.retire(true)
		c.state.CompareAndSwap(stateProbing, stateRetired) // unless closed meanwhile
	}
	close(ch)
	return ok
}

// freshProbe makes a new connection (not pooled) and closes it, within d.
// A completed login proves the path (no ping after it: one round trip less
// before the gate opens). An error the server sent (classified alive: too
// many connections, login failed) proves it too, so it counts as success.
func (p *Pool) freshProbe(parent context.Context, d time.Duration) error {
	p.stats.probes.Add(1)
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	rc, err := p.conn.dial(ctx)
	if err == nil {
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
