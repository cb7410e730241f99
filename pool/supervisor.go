package pool

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// supervisor is the one goroutine that decides about the path (pgxpool's
// backgroundHealthCheck is the model). It alone owns the pool's health, the
// gate, the tunnel table, the probe schedule and the storm control; it
// selects on Close, kicks (events, failures, requests waiting at the gate),
// the results of its probes and one timer it owns. Its I/O (probes, the
// check after a tunnel comes up, orphan reaping, rebuilding the pool) runs
// on goroutines of its own under a context that Close cancels, and reports
// back here; a result that was overtaken by a tunnel event (epoch) is
// dropped, so a probe can never undo a DOWN that arrived while it ran.
type supervisor struct {
	p *Pool

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the loop and every job
	wake    chan struct{}  // buffer 1: bursts merge into one wake-up
	calls   chan func()    // run on the loop (tests, and step in Close)
	results chan probeResult

	// Owned by the loop goroutine.
	health         Health
	tunnels        tunnelTable
	gated          bool      // the gate is blocked because tunnels are down
	held           bool      // by a DOWN inside a storm: nothing severed or reset (hold)
	lastEdge       time.Time // last event-driven sever or reopen (storm control)
	lastReset      time.Time // last automatic reset (storm control)
	resetWanted    bool      // a reset waits for the cooldown to end
	resetDone      bool      // the reset that ends an outage was made
	epoch          uint64    // bumped when the path goes down or comes back
	canary         bool      // the check after the tunnels came up is running
	verifying      string    // the tunnel whose DOWN a probe is verifying
	evidence       int       // failed conns not yet weighed by a probe
	probing        bool      // a probe job is running
	probeAgain     bool      // another probe was asked for while one ran
	reaping        bool
	backoff        time.Duration // probe spacing while unreachable
	downSince      time.Time     // when the path was last found or reported down
	severDue       bool          // the outage has not severed yet (see onProbe)
	missedDown     bool          // a DOWN inside the cooldown was not applied
	missedDownAt   int64         // monoNow of the last such DOWN
	lastEvent      string        // the last tunnel event applied, for reasons
	lastToggle     time.Time     // when the tunnel table last flipped the path's state
	prevToggle     time.Time     // the flip before it
	toggledNow     bool          // the events just applied flipped it
	lastStallProbe time.Time
	lastOps        uint64
	lastConnects   uint64
	idleBefore     int  // idle conns when the outage began, to rebuild
	rebuiltAtUp    bool // goUp started the rebuild alongside the canary
	timer          *time.Timer
	due            time.Time // when the timer fires (zero: not armed)
}

const (
	// While the path is down it is probed on a short schedule that backs
	// off from minProbeBackoff to fastProbeCeiling for the first
	// fastProbeFor of the outage (a VPN flap is usually over by then),
	// then to ProbeInterval; each probe's deadline comes from measured
	// connect times, so a probe stuck in a SYN into the void does not
	// delay noticing the path's return.
	minProbeBackoff  = 50 * time.Millisecond
	fastProbeCeiling = 100 * time.Millisecond
	fastProbeFor     = 30 * time.Second

	// stallDead: a busy conn whose data went unacknowledged for this many
	// retransmission timeouts in a row (at least 1.4s on Linux) while a new
	// connection works is a dead flow. One timeout is one lost packet; three
	// in a row on a path losing 3% of its packets is a 1-in-37,000 event.
	stallDead = 3
	// stallProbeEvery bounds the probes the stall watch starts.
	stallProbeEvery = 500 * time.Millisecond
	// stallWatch: how often busy conns are checked for stalls (TCP_INFO).
	stallWatch = 100 * time.Millisecond
	// severAfter: a path failing for this long is severed (see onProbe).
	severAfter = time.Second
)

func newSupervisor(p *Pool) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{
		p: p, ctx: ctx, cancel: cancel,
		wake:    make(chan struct{}, 1),
		calls:   make(chan func()),
		results: make(chan probeResult, 1),
		tunnels: newTunnelTable(&p.cfg),
	}
	return s
}

func (s *supervisor) start() {
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	s.lastOps = s.p.totalOps()
	s.wg.Add(1)
	go s.loop()
}

// stop cancels every job and waits for the loop and the jobs to end.
func (s *supervisor) stop() {
	s.cancel()
	s.wg.Wait()
}

// kick wakes the supervisor without blocking.
func (s *supervisor) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sync runs f on the loop goroutine and waits for it; it reports false if
// the supervisor has stopped. Tests drive the supervisor through it.
func (s *supervisor) sync(f func()) bool {
	done := make(chan struct{})
	select {
	case s.calls <- func() { f(); close(done) }:
	case <-s.ctx.Done():
		return false
	}
	select {
	case <-done:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *supervisor) loop() {
	defer s.wg.Done()
	defer s.timer.Stop()
	if s.p.cfg.ProbeInterval != off {
		s.armIn(s.jitter())
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case f := <-s.calls:
			f()
		case <-s.wake:
			s.step(false)
		case r := <-s.results:
			if r.kind != jobCanary {
				s.probing = false
			}
			s.onProbe(r)
			if s.probeAgain {
				s.probeAgain = false
				s.step(true)
			}
		case <-s.timer.C:
			s.due = time.Time{}
			s.step(true)
		}
	}
}

// step applies waiting tunnel events, then looks at the path. timed: the
// probe schedule (not only a kick) woke the supervisor.
func (s *supervisor) step(timed bool) {
	dips, evs := s.p.inbox.take()
	if len(dips) > 0 {
		// Tunnels went down and up again since the last look. If their
		// DOWNs took the path down, that is a toggle the storm control
		// must see (a first one severs, as the DOWN alone would have).
		s.applyEvents(dips)
		if down, _ := s.tunnels.pathState(); down {
			s.reconcile()
		}
	}
	if len(evs) > 0 {
		s.applyEvents(evs)
	}
	s.reconcile()
	s.tick(timed)
	if s.due.IsZero() && s.p.cfg.ProbeInterval != off {
		s.armIn(s.jitter())
	}
	if s.p.cfg.ProbeInterval != off && s.p.dialer != nil && !s.gated && s.p.busyCount() > 0 {
		s.armIn(stallWatch)
	}
}

// armIn makes the timer fire within d (an earlier wake-up stays).
func (s *supervisor) armIn(d time.Duration) {
	at := time.Now().Add(d)
	if !s.due.IsZero() && !at.Before(s.due) {
		return
	}
	s.timer.Stop()
	select {
	case <-s.timer.C:
	default:
	}
	s.due = at
	s.timer.Reset(d)
}

func (s *supervisor) jitter() time.Duration {
	d := s.p.cfg.ProbeInterval
	if d <= 0 {
		d = defaultProbeInterval
	}
	return d - d/5 + rand.N(2*d/5+1)
}

// setHealth changes the health and emits the transition.
func (s *supervisor) setHealth(to Health, reason string) {
	from := s.health
	if from == to {
		return
	}
	s.health = to
	s.p.healthNow.Store(int32(to))
	s.p.emit(Event{Kind: EventHealthChange, From: from, To: to, Reason: reason})
}

// cooled reports whether at least the cooldown has passed since last; if
// not, it arms the timer for the end of the cooldown.
func (s *supervisor) cooled(last time.Time) bool {
	if last.IsZero() {
		return true
	}
	left := s.p.cfg.ResetCooldown - s.p.cfg.now().Sub(last)
	if left <= 0 {
		return true
	}
	s.armIn(left)
	return false
}

// autoReset is a reset under storm control: at most one per cooldown; a
// reset asked for inside the cooldown happens at its end.
func (s *supervisor) autoReset(reason string, rebuild bool) bool {
	if !s.cooled(s.lastReset) {
		s.resetWanted = true
		return false
	}
	s.resetWanted = false
	s.lastReset = s.p.cfg.now()
	idle := s.p.idleCount()
	s.p.reset(reason, false)
	if rebuild {
		s.rebuild(idle, false, nil)
	}
	return true
}
