package pool

import (
	"fmt"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// The supervisor's decisions, as data (etcd-io/raft is the model): next
// maps the machine's state, one input and the time to the next state and
// the actions to take. It does no I/O, starts no goroutine and reads no
// clock; the executor (supervisor.go) feeds it inputs in the order they
// happen and performs its actions.
//
// Verify, then act. Every input from outside — a tunnel event, a lost
// connection, a failed connect, a stalled flow, a request waiting at the
// gate — is a hint that starts a check (probe.go). Only a check's result
// is a fact, and only a fact severs, resets or cuts a request:
//
//   - the path is checked down: the gate stays shut (new work never enters
//     a dead path) and the idle conns are retired (a new generation). A
//     request in flight keeps its own deadline, as with plain database/sql:
//     its flow cannot be checked while the path is down, and it may
//     survive a short outage.
//   - the path answers: the gate opens; the flows the check found dead are
//     cut (their requests return now); when every old flow it sampled was
//     dead, the generation is (flows through one path share fate), and the
//     pool is reset and rebuilt.
//
// A DOWN that says the path is down shuts the gate while its check runs
// (a few milliseconds: an idle conn's ping, a keepalive probe, or a fresh
// connect), so no new work goes into a path reported dead before the check
// has spoken. A DOWN the check found harmless is watched: the path is
// checked every watchEvery for watchFor, so a path that dies a moment
// after a correct DOWN (a monitor faster than the data plane) is still
// found fast. Checks are coalesced (one runs, one is pending) and spaced:
// while hint-started checks keep finding nothing, the spacing doubles from
// minSpacing to maxSpacing, so a storm, a replay or a wrong monitor costs
// a bounded number of checks and never a sever.
//
// One limiter bounds every automatic reset, whatever its cause: at most one
// per Config.ResetCooldown, and one more owed at its end.

// Constants of the decision, each with one meaning.
const (
	// minSpacing and maxSpacing bound the time between two checks started
	// by hints while the checks keep finding the path working.
	minSpacing = 50 * time.Millisecond
	maxSpacing = time.Second
	// watchEvery and watchFor: after a DOWN whose check found the path
	// working, the path is checked this often for this long.
	watchEvery = 100 * time.Millisecond
	watchFor   = time.Second
	// downEvery is how often a path checked down is checked again during
	// the first downFastFor of the outage (a VPN flap is usually over by
	// then); after that, every Config.ProbeInterval.
	downEvery   = 50 * time.Millisecond
	downFastFor = 30 * time.Second
)

// pathFact is what the last check found.
type pathFact uint8

const (
	pathUnchecked pathFact = iota // no check yet: taken as working
	pathUp                        // the last check found the path answering
	pathDown                      // the last check found it dead
)

func (f pathFact) String() string {
	switch f {
	case pathUp:
		return "up"
	case pathDown:
		return "down"
	}
	return "unchecked"
}

// inputKind is what happened.
type inputKind uint8

const (
	inEvent         inputKind = iota + 1 // a tunnel event (ev), already accepted by Notify
	inCheckDone                          // a check's verdict on the path (epoch, res)
	inFlowsDone                          // the flows part of a checkFlows check ended (epoch, res)
	inConnLost                           // an operation lost its conn, or a conn missed its liveness ping
	inConnectFailed                      // a connect for a request failed
	inStall                              // a busy flow retransmits into the void
	inWaiting                            // a request waits at the gate
	inProgress                           // operations reached the server since the last look
	inTimer                              // a timer the machine armed fired (timer)
	inClose                              // the pool is closing
)

// timerName names the machine's timers; each is armed by an action and
// comes back as an inTimer input.
type timerName uint8

const (
	timerCheck   timerName = iota + 1 // the next check is due (spacing, watch, recheck while down)
	timerRoutine                      // the routine look at an idle pool (Config.ProbeInterval)
	timerOwed                         // the limiter's cooldown ended: the owed reset is due
)

type input struct {
	kind  inputKind
	ev    detect.Event // inEvent
	epoch uint64       // inCheckDone: the epoch the check was started in
	res   checkResult  // inCheckDone
	timer timerName    // inTimer
}

// checkResult is what a check found (probe.go). The path's verdict comes
// first (inCheckDone), so the gate does not wait for the flows; a
// checkFlows check whose path answered then looks at the flows and reports
// again (inFlowsDone).
type checkResult struct {
	pathOK  bool     // the path answered: traffic, a ping, a keepalive ACK or a login
	how     string   // how the path was judged, for reasons
	idle    int      // idle conns when the check ran: what a rebuild restores
	sampled int      // inFlowsDone: flows of the current generation checked
	dead    []uint64 // inFlowsDone: ids of those found dead (idle ones already closed)
}

// checkKind says how much a check looks at.
type checkKind uint8

const (
	checkPath  checkKind = iota + 1 // the path only (watch, routine, a path checked down)
	checkFlows                      // the path, then the current generation's flows
)

// actionKind is what the executor must do.
type actionKind uint8

const (
	actGate    actionKind = iota + 1 // shut or open the gate (shut)
	actCheck                         // start a check (epoch, check; hold: a DOWN shut the gate for it; n: fresh connects while down; window: how long a check of a down path staggers its connects)
	actReset                         // a new generation: retire idle conns, discard busy ones on return (reason); sever: close the old sockets too
	actCut                           // close the sockets of the conns in ids: their flows were checked dead
	actRebuild                       // reopen the conns a reset retired (n)
	actConnect                       // the running check (epoch), on a path checked down, connects n conns more now, kept for the rebuild; the first to succeed answers for the path
	actArm                           // arm timer after d (an earlier wake-up of the same timer stays)
	actReap                          // end the server sessions lost conns left behind
	actHealth                        // the health changed (health, reason)
	actIgnored                       // an input was dropped (reason), for the event log
)

type action struct {
	kind   actionKind
	shut   bool
	epoch  uint64
	check  checkKind
	hold   bool
	sever  bool
	reason string
	ids    []uint64
	n      int
	timer  timerName
	d      time.Duration
	window time.Duration
	health Health
}

// machine is the supervisor's whole decision state. Each field is owned by
// next; the executor reads the derived views (gateShut, health).
type machine struct {
	// Configuration, fixed at start.
	cooldown   time.Duration // Config.ResetCooldown: the limiter
	probeEvery time.Duration // Config.ProbeInterval; off: no timed checks
	tunnels    tunnelHints   // what the tunnel events say (hints only)

	path      pathFact
	downAt    time.Time // when the path was checked down (the outage's start)
	epoch     uint64    // of the running check; a result from another is dropped
	running   bool      // a check runs
	holding   bool      // the running check holds the gate (a DOWN started it)
	hinted    bool      // the running check was started by a hint (it counts for spacing)
	pending   checkKind // a hint arrived that no running check answers (0: none)
	spacing   time.Duration
	lastEnd   time.Time // when the last hint-started check that found nothing ended
	watchEnd  time.Time // watch the path until then (after a harmless DOWN)
	lastCut   time.Time // the limiter's last automatic reset
	owed      string    // the reason of an automatic reset the limiter holds ("" none)
	owedSever bool      // ... and whether it severs (a generation checked dead)
	rebuild   int       // conns to reopen when the path answers again
	health    Health
	upHint    bool // an UP came while the path is down: the next check connects as many conns as the rebuild needs
	connected bool // the running check was given the rebuild's connects (at its start or by actConnect)
	progress  bool // operations reached the server since the last routine look
	closed    bool
}

func newMachine(cfg *Config) machine {
	return machine{
		cooldown:   cfg.ResetCooldown,
		probeEvery: cfg.ProbeInterval,
		tunnels:    newTunnelHints(cfg),
		spacing:    minSpacing,
	}
}

// gateShut is the gate as the state says: shut while the path is checked
// down, and while a check that a DOWN started runs and the tunnels still
// report the path down (an UP during that check reopens it: the DOWN's
// caution ends with it, and the check goes on to its verdict; H5's storm
// held the gate through 300ms of a working path, from a DOWN's check that
// was still running when the UP came).
func (m *machine) gateShut() bool {
	return !m.closed && (m.path == pathDown || m.running && m.holding && m.tunnels.down())
}

// next applies one input at now and returns the actions to take, in order.
func (m *machine) next(in input, now time.Time) []action {
	if m.closed {
		return nil
	}
	var d decision
	d.m, d.now = m, now
	wasShut := m.gateShut()
	switch in.kind {
	case inEvent:
		d.event(in.ev)
	case inCheckDone:
		d.checkDone(in.epoch, in.res)
	case inFlowsDone:
		d.flowsDone(in.res)
	case inConnLost:
		d.setHealth(Suspect, "a connection was lost")
		d.hint(checkFlows)
	case inConnectFailed, inStall:
		d.hint(checkFlows)
	case inWaiting:
		if m.path == pathDown && !m.running {
			d.start(checkPath, false, false) // a request waits: look now
		}
	case inProgress:
		m.progress = true
		if m.path == pathDown {
			break
		}
		if m.health == Recovering {
			d.setHealth(Healthy, "operations succeed")
		}
		// The path works: end the sessions lost conns left behind (the
		// executor does nothing when there are none).
		d.do(action{kind: actReap})
	case inTimer:
		d.timer(in.timer)
	case inClose:
		m.closed, m.running, m.pending = true, false, 0
		return []action{{kind: actGate, shut: false}}
	}
	if shut := m.gateShut(); shut != wasShut {
		// The gate action goes first: a check's connects must not wait
		// behind a gate the same decision opens.
		d.acts = append([]action{{kind: actGate, shut: shut}}, d.acts...)
	}
	return d.acts
}

// decision collects the actions of one step.
type decision struct {
	m    *machine
	now  time.Time
	acts []action
}

func (d *decision) do(a action) { d.acts = append(d.acts, a) }

func (d *decision) arm(t timerName, after time.Duration) {
	d.do(action{kind: actArm, timer: t, d: max(after, 0)})
}

func (d *decision) setHealth(h Health, reason string) {
	if d.m.health == h {
		return
	}
	d.m.health = h
	d.do(action{kind: actHealth, health: h, reason: reason})
}

func (d *decision) event(ev detect.Event) {
	m := d.m
	if ev.State == detect.Rekey {
		// Old flows may be dead: check them.
		d.hint(checkFlows)
		return
	}
	if !m.tunnels.apply(ev) {
		d.do(action{kind: actIgnored, reason: "too many tunnels"})
		return
	}
	// An UP after a DOWN, or a DOWN: the flows may have died with the
	// tunnel. A DOWN that says the path is down holds the gate while its
	// check runs. An UP while the path is checked down makes the check's
	// connects the rebuild's (action n): the pool is full again by the time
	// traffic returns, at the cost of n connects into a dead path once if
	// the UP came early.
	if ev.State == detect.Up && m.path == pathDown {
		if m.running && !m.connected {
			// A check of the down path runs; its connects started before
			// the UP may be SYNs lost in the void (retried after 1s): it
			// makes the rebuild's connects now, and the first to succeed
			// answers for it.
			m.connected = true
			d.do(action{kind: actConnect, epoch: m.epoch, n: max(m.rebuild, 1)})
		} else if !m.running {
			m.upHint = true
		}
	}
	d.hint(checkFlows)
}

// hint asks for a check of kind k. It starts now unless a check runs (then
// it is pending, and answered by a check started after the running one
// ends) or checks that a hint started keep finding nothing and the last
// ended less than the spacing ago (then it starts when the spacing is up).
// While the path is checked down nothing is spaced. A check started while
// the tunnels report the path down holds the gate while it runs.
func (d *decision) hint(k checkKind) {
	m := d.m
	if m.running {
		m.pending = max(m.pending, k)
		return
	}
	if m.path != pathDown && !m.lastEnd.IsZero() {
		if d.now.Sub(m.lastEnd) > 2*m.spacing {
			m.spacing, m.lastEnd = minSpacing, time.Time{} // quiet for a while: start over
		} else if wait := m.lastEnd.Add(m.spacing).Sub(d.now); wait > 0 && !(d.holds() && m.spacing == minSpacing) {
			// (A DOWN that reports the path down waits only once checks
			// have started to find nothing again and again: a storm.)
			m.pending = max(m.pending, k)
			d.arm(timerCheck, wait)
			return
		}
	}
	d.start(k, d.holds(), true)
}

// holds says whether a check started now holds the gate: the tunnels report
// the path down and no check has found it down yet.
func (d *decision) holds() bool { return d.m.tunnels.down() && d.m.path != pathDown }

// start starts a check now; hold: it holds the gate while it runs; hinted:
// a hint asked for it (it counts for the spacing).
func (d *decision) start(k checkKind, hold, hinted bool) {
	m := d.m
	if m.pending != 0 {
		// The check started now answers the hint that waits (a routine
		// check that started while a lost conn's hint was spaced looked
		// at the path only, and left the pool Suspect: 15 of 200 runs of
		// TestProberUnconfirmedEvidenceDoesNotReset under load).
		k, hinted = max(k, m.pending), true
	}
	m.epoch++
	m.running, m.holding, m.hinted, m.pending = true, hold, hinted, 0
	n := 1
	m.connected = m.upHint && m.path == pathDown
	if m.connected {
		n = max(m.rebuild, 1)
	}
	m.upHint = false
	// A check of a down path staggers its connects for downWindow in the
	// first downFastFor of the outage (a VPN flap is usually over by then);
	// later, one connect per check.
	var window time.Duration
	if m.path == pathDown && d.now.Sub(m.downAt) < downFastFor {
		window = downWindow
	}
	d.do(action{kind: actCheck, epoch: m.epoch, check: k, hold: hold, n: n, window: window})
}

func (d *decision) timer(t timerName) {
	m := d.m
	switch t {
	case timerCheck:
		switch {
		case m.running:
			// The running check answers; its end looks at pending.
		case m.pending != 0:
			d.start(m.pending, d.holds(), true)
		case m.path == pathDown && m.probeEvery != off:
			d.start(checkPath, false, false)
		case d.now.Before(m.watchEnd):
			d.start(checkPath, false, false)
		}
	case timerRoutine:
		if m.probeEvery == off {
			return
		}
		if !m.running && m.path != pathDown && !m.progress {
			d.start(checkPath, false, false) // traffic proves the path otherwise
		}
		m.progress = false
		d.arm(timerRoutine, m.probeEvery)
	case timerOwed:
		if m.owed != "" {
			reason, sever := m.owed, m.owedSever
			m.owed, m.owedSever = "", false
			d.autoReset(reason, sever)
		}
	}
}

// autoReset is a reset under the one limiter: at most one per cooldown, and
// one owed at its end. It reports whether the reset was made now.
func (d *decision) autoReset(reason string, sever bool) bool {
	m := d.m
	if left := m.lastCut.Add(m.cooldown).Sub(d.now); !m.lastCut.IsZero() && left > 0 {
		if m.owed == "" {
			d.arm(timerOwed, left)
		}
		m.owed, m.owedSever = reason, m.owedSever || sever
		return false
	}
	m.lastCut, m.owed = d.now, ""
	d.do(action{kind: actReset, reason: reason, sever: sever})
	return true
}

func (d *decision) checkDone(epoch uint64, r checkResult) {
	m := d.m
	if !m.running || epoch != m.epoch {
		d.do(action{kind: actIgnored, reason: fmt.Sprintf("result of check %d, not of the running check %d", epoch, m.epoch)})
		return
	}
	held, hinted := m.holding, m.hinted
	m.running, m.holding, m.hinted, m.connected = false, false, false, false
	if !r.pathOK {
		d.pathDown(r)
	} else {
		d.pathUp(r, held, hinted)
	}
	if m.pending != 0 {
		// A hint came while the check ran: it is answered by a check
		// started after it (spaced unless the path is reported down).
		k := m.pending
		m.pending = 0
		d.hint(k)
	}
}

func (d *decision) pathDown(r checkResult) {
	m := d.m
	reason := "path down: " + r.how
	if m.path != pathDown {
		m.path, m.downAt = pathDown, d.now
		m.rebuild = max(m.rebuild, r.idle)
		m.spacing, m.lastEnd = minSpacing, time.Time{}
		d.setHealth(Unreachable, reason)
		// Retire the idle conns: nothing new may use them. Requests in
		// flight keep their own deadlines (their flows are checked when
		// the path answers again).
		d.autoReset(reason, false)
	}
	m.watchEnd = time.Time{}
	if m.probeEvery == off {
		return // no timed checks: a hint (an UP, a waiting request) looks again
	}
	every := downEvery
	if d.now.Sub(m.downAt) >= downFastFor {
		every = m.probeEvery
	}
	d.arm(timerCheck, every)
}

func (d *decision) pathUp(r checkResult, held, hinted bool) {
	m := d.m
	wasDown := m.path == pathDown
	m.path = pathUp
	if wasDown {
		// The outage ended. The generation was retired when the path went
		// down (or that reset is owed); the requests still in flight are
		// checked by the flows part of this check.
		d.setHealth(Recovering, "path answers again: "+r.how)
		d.do(action{kind: actRebuild, n: m.rebuild})
		d.do(action{kind: actReap})
		m.rebuild = 0
		m.spacing, m.lastEnd = minSpacing, time.Time{}
	} else {
		if m.health == Unreachable {
			d.setHealth(Healthy, "path answers: "+r.how)
		}
		if hinted {
			// Nothing wrong with the path: the next hint-started check
			// waits longer (flowsDone starts over if flows were dead).
			if !m.lastEnd.IsZero() {
				m.spacing = min(2*m.spacing, maxSpacing)
			}
			m.lastEnd = d.now
		}
	}
	if held {
		// A DOWN's check found the path working: watch it closely for a
		// while, in case it dies a moment later.
		m.watchEnd = d.now.Add(watchFor)
	}
	if d.now.Before(m.watchEnd) {
		// While hints keep coming and finding nothing (a storm), the watch
		// backs off with them.
		d.arm(timerCheck, max(watchEvery, m.spacing))
	}
}

// flowsDone: the flows of the current generation were checked while the
// path answered. The dead ones are cut; when every flow sampled was dead,
// the generation is, and the pool is reset and rebuilt.
func (d *decision) flowsDone(r checkResult) {
	m := d.m
	if len(r.dead) == 0 {
		if m.health == Suspect {
			d.setHealth(Healthy, "path and connections answer")
		}
		return
	}
	d.do(action{kind: actCut, ids: r.dead, reason: "flows checked dead while the path answers"})
	m.spacing, m.lastEnd = minSpacing, time.Time{}
	// The generation is dead when every flow sampled is, and at least two
	// were: on a lossy path one ping can miss its deadline (that conn was
	// cut; the rest are left alone).
	if len(r.dead) >= r.sampled && len(r.dead) >= 2 {
		// A fact about the generation: the pool is reset and rebuilt. Its
		// flows not checked are not cut: a flow a check could not tell
		// keeps its own deadline (the soak showed live ones among them).
		if d.autoReset("every connection checked is dead while the path answers", false) {
			d.do(action{kind: actRebuild, n: r.idle})
		}
		d.setHealth(Recovering, "old connections discarded")
	} else if m.health == Suspect {
		d.setHealth(Healthy, "path answers; the dead connections were cut")
	}
	d.do(action{kind: actReap})
}
