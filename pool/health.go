package pool

import (
	"sync"
	"time"
)

// health is the pool's judgement of the path: a small state machine fed by
// lost connections, failed liveness checks, probes and tunnel events. It
// decides nothing by itself; the prober and the event loop act on it. Time
// comes from now, so tests drive it without sleeping.
type health struct {
	now func() time.Time

	mu        sync.Mutex // protects following
	state     State
	since     time.Time
	lastReset time.Time
	cooldown  time.Duration
	evidence  map[*conn]struct{} // conns that failed since the last probe
}

func (h *health) init(now func() time.Time) {
	h.now = now
	h.since = now()
	h.evidence = make(map[*conn]struct{})
}

func (h *health) get() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// set moves to state to and reports the state it left and whether that was
// a change.
func (h *health) set(to State) (from State, changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	from = h.state
	if from == to {
		return from, false
	}
	h.state, h.since = to, h.now()
	return from, true
}

// suspect records that c failed. Healthy and Recovering become Suspect;
// Down stays Down (the prober already knows).
func (h *health) suspect(c *conn) (from State, changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c != nil {
		h.evidence[c] = struct{}{}
	}
	from = h.state
	if from == StateHealthy || from == StateRecovering {
		h.state, h.since = StateSuspect, h.now()
		return from, true
	}
	return from, false
}

// takeEvidence returns how many distinct conns failed since the last call.
func (h *health) takeEvidence() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.evidence)
	clear(h.evidence)
	return n
}

// allowReset is the storm control: automatic resets are at least cooldown
// apart, so a flapping tunnel cannot make the pool churn connections.
func (h *health) allowReset() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastReset.IsZero() || h.now().Sub(h.lastReset) >= h.cooldown
}

func (h *health) noteReset() {
	h.mu.Lock()
	h.lastReset = h.now()
	h.mu.Unlock()
}

// setState changes the state and emits the transition.
func (p *Pool) setState(to State, reason string) {
	if from, changed := p.health.set(to); changed {
		p.emit(Event{Kind: EventStateChange, From: from, To: to, Reason: reason})
	}
}

// kick wakes the prober without blocking; bursts merge into one wake-up.
func (p *Pool) kick() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// connLost is called when an operation failed with a lost connection.
func (p *Pool) connLost(c *conn, err error) {
	p.stats.connsLost.Add(1)
	p.emit(Event{Kind: EventConnLost, Err: err, Generation: c.l().gen})
	p.suspectConn(c, "connection lost")
}

// livenessFailed is called when a borrowed conn missed its liveness ping.
func (p *Pool) livenessFailed(c *conn, d time.Duration, err error) {
	p.emit(Event{Kind: EventLivenessFailed, Err: err, Generation: c.l().gen, Reason: "no answer within " + d.String()})
	p.suspectConn(c, "liveness check failed")
}

func (p *Pool) suspectConn(c *conn, reason string) {
	if from, changed := p.health.suspect(c); changed {
		p.emit(Event{Kind: EventStateChange, From: from, To: StateSuspect, Reason: reason})
	}
	p.kick()
}

// pathWorks is called when a new connection was made: the path answers.
func (p *Pool) pathWorks() {
	if p.health.get() == StateDown && !p.gate.isDown() {
		p.setState(StateRecovering, "a new connection succeeded")
	}
}
