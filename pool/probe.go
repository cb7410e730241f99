package pool

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// The checks (decide.go asks for them, the supervisor runs them). Each has
// a deadline from measured times, and reports facts only:
//
//   - the path: traffic the pool's sockets received since the check began
//     (no I/O), or an idle pooled conn's ping, else a fresh connection
//     (login), which is also the only check while the path is down;
//   - the flows of the current generation (checkFlows, once the path
//     answers): a ping on up to flowSample idle conns, and for each conn
//     lent out with a request in flight, the kernel's own TCP keepalive
//     probe on its socket (sockopt.KeepAliveProbe: no byte of the database
//     protocol), answered or not within the deadline. A flow the kernel
//     cannot probe (its request is unacknowledged: Linux sends no
//     keepalive then) counts as dead only after stallDead retransmission
//     timeouts in a row while the path answers; otherwise it is left to
//     its own deadline, as with plain database/sql. A proxy that answers
//     TCP for a dead path makes a flow look alive: then the request keeps
//     its own deadline too.
//
// Without socket control (OpenDB, soft mode) a check has the idle ping and
// the fresh connection only: requests in flight are never cut, and keep
// their own deadlines.

// flowSample bounds the idle conns a flows check pings: flows of one
// generation through one path share fate, so a few answer for all.
const flowSample = 2

// stallDead: a flow whose data went unacknowledged for this many
// retransmission timeouts in a row (at least 1.4s on Linux) while the path
// answers is dead. One timeout is one lost packet; three in a row on a
// path losing 3% of its packets is a 1-in-37,000 event.
const stallDead = 3

// check runs one check and reports its verdicts through report: the path's
// first (inCheckDone), then for checkFlows with a path that answered, the
// flows' (inFlowsDone).
func (p *Pool) check(ctx context.Context, kind checkKind, n int, window time.Duration, more <-chan int, report func(input)) {
	started, since := time.Now(), p.cfg.now()
	idle := p.idleCount() // before the check retires any
	res := p.checkPath(ctx, started, n, window, more)
	if res.more != nil {
		defer res.more.Wait() // the other connects of an UP's check (kept as spares)
	}
	res.idle = idle
	if ctx.Err() != nil {
		return // closing: not a verdict
	}
	if !res.pathOK || res.pinged == nil && res.how != "traffic arrived" {
		// A check that found the path by traffic or an idle conn's ping is
		// routine (one a second on an idle pool): not an event.
		p.emit(Event{Kind: EventProbe, Reason: res.how, Err: res.err()})
	}
	report(input{kind: inCheckDone, res: res.checkResult})
	if res.ping != nil {
		// Traffic answered for the path first; the idle conn's ping goes
		// on, and a conn that misses it is dead (its own fact).
		if c := <-res.ping; c != nil {
			res.pingFailed = c
		}
	}
	if !res.pathOK || kind != checkFlows && res.pingFailed == nil {
		return // an idle conn that missed its ping makes any check look at the flows
	}
	fr := p.checkFlows(ctx, started, since, res.pinged)
	if c := res.pingFailed; c != nil {
		fr.sampled++
		fr.dead = append(fr.dead, c.id)
	}
	if ctx.Err() != nil {
		return
	}
	fr.idle = res.idle
	if len(fr.dead) > 0 {
		p.emit(Event{Kind: EventProbe, Reason: fmt.Sprintf("flows: %d checked, %d dead", fr.sampled, len(fr.dead))})
	}
	report(input{kind: inFlowsDone, res: fr})
}

type pathVerdict struct {
	checkResult
	pinged     *conn      // the idle conn the path check pinged (answered)
	pingFailed *conn      // the idle conn that missed its ping (closed)
	ping       chan *conn // a ping still running when traffic answered: the conn if it misses
	more       *sync.WaitGroup
	failed     error
}

func (v pathVerdict) err() error {
	if v.pathOK {
		return nil
	}
	return v.failed
}

// checkPath: did the path answer since started? Traffic arriving on any of
// the pool's sockets and an idle conn's ping are looked for at once, within
// the liveness deadline; only when neither answers is a fresh connection
// made. While the path is down, only a fresh connection can tell.
//
// n > 1 (an UP came while the path was down): n connects at once, each kept
// as a spare for the rebuild; the first to succeed is the verdict. A number
// received on more (an UP that came while this check of a down path ran) is
// as many connects more, made at once the same way.
func (p *Pool) checkPath(ctx context.Context, started time.Time, n int, window time.Duration, more <-chan int) pathVerdict {
	v := pathVerdict{more: new(sync.WaitGroup)}
	if Health(p.healthNow.Load()) != Unreachable {
		// The watch for traffic has the liveness deadline, the ping its
		// own (the same, in pingWithin); the first to answer is the
		// verdict. A ping still running then goes on (see check).
		wctx, wcancel := context.WithCancel(ctx)
		found := make(chan pathVerdict, 2)
		var wg sync.WaitGroup
		if p.dialer != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tctx, tcancel := context.WithTimeout(wctx, p.livenessTimeout(nil))
				defer tcancel()
				if p.heardSince(tctx, started) {
					found <- pathVerdict{checkResult: checkResult{pathOK: true, how: "traffic arrived"}}
				}
			}()
		}
		var missed *conn
		var ping chan *conn
		if c := p.pickIdle(); c != nil {
			wg.Add(1)
			ping = make(chan *conn, 1)
			go func() {
				defer wg.Done()
				ok := p.probeIdle(ctx, c)
				switch {
				case ok && ctx.Err() == nil:
					found <- pathVerdict{checkResult: checkResult{pathOK: true, how: "an idle connection answered a ping"}, pinged: c}
					ping <- nil
				case !ok:
					missed = c
					ping <- c
				default:
					ping <- nil
				}
			}()
		}
		all := make(chan struct{})
		go func() { wg.Wait(); close(all) }()
		select {
		case r := <-found:
			wcancel()
			if r.pinged == nil {
				r.ping = ping // the ping goes on
			}
			return r
		case <-all:
			wcancel()
			select {
			case r := <-found: // it answered just as the other gave up
				return r
			default:
			}
		}
		if ctx.Err() != nil {
			return v
		}
		v.pingFailed = missed
	}
	p.stats.probes.Add(1)
	// While the path is down, the connection that finds it back is kept
	// for the rebuild: one connect fewer before the pool is full again. And
	// data arriving meanwhile on a flow that survived the outage (a request
	// retransmitted, answered) proves the path as soon as it arrives,
	// sooner than a connect started into the void can.
	down := Health(p.healthNow.Load()) == Unreachable
	var err error
	if down && p.dialer != nil {
		fctx, cancel := context.WithCancel(ctx)
		heard, probed := make(chan bool, 1), make(chan error, 1)
		go func() { heard <- p.heardSince(fctx, started) }()
		stagger := func() {
			go func() { probed <- p.staggeredProbe(fctx, p.connectTimeoutFor(), window, true) }()
		}
		stagger()
		// The rebuild's connects (n-1 now, and what an UP that comes while
		// this check runs asks for on more): not under fctx, they go on
		// after the verdict, into spares the rebuild waits for
		// (connector.connect); the first to succeed while the check runs
		// answers for the path.
		spared := make(chan error, 2*maxSpares)
		inFlight := 0
		connect := func(k int) {
			for range min(k, maxSpares) {
				inFlight++
				v.more.Add(1)
				p.sparesPending.Add(1)
				go func() {
					defer v.more.Done()
					spared <- p.freshProbe(ctx, p.cfg.ProbeTimeout, true)
					p.sparesPending.Add(-1)
					p.signalSpare()
				}()
			}
		}
		connect(n - 1)
	wait:
		for {
			select {
			case err = <-probed:
				if err != nil && inFlight > 0 && fctx.Err() == nil {
					// The rebuild's connects, made after the UP, still
					// run: they answer for the path, not this window's
					// connects, which went out before it (the lab's V8:
					// the verdict "down" came 80ms after UP, and the path
					// was found only by the next check). Another window
					// runs beside them.
					stagger()
					continue
				}
				probed = nil
				break wait
			case ok := <-heard:
				heard = nil
				if ok {
					v.how, err = "data arrived on a surviving flow", nil
					break wait
				}
			case e := <-spared:
				inFlight--
				if e == nil {
					err = nil
					break wait
				}
			case k := <-more:
				more = nil
				connect(k)
			}
		}
		cancel()
		if probed != nil {
			<-probed
		}
		if heard != nil {
			<-heard
		}
	} else {
		// Deciding that a path that worked is down: a generous deadline
		// (a slow connect on a starved or lossy path is no outage), and
		// attempts staggered like a down path's, so a path that comes back
		// while the verdict runs is found by a later SYN rather than judged
		// by one lost in the outage (H5's storm: a connect sent 70ms before
		// a 300ms blackhole ended waited out its 450ms deadline for the
		// kernel's 1s retransmission, and a working path was checked down).
		// (Without socket control a check cannot tell a handshake from a
		// login: one connect.)
		if vt := p.verdictTimeout(); p.dialer != nil {
			err = p.staggeredProbe(ctx, vt, vt, down)
		} else {
			err = p.freshProbe(ctx, vt, down)
		}
	}
	if err == nil && v.how != "" {
		v.pathOK = true
		return v
	}
	if err == nil {
		v.pathOK, v.how = true, "a fresh connection succeeded"
		if v.pingFailed != nil {
			v.how += " (an idle connection missed its ping)"
		}
		return v
	}
	p.stats.probeFailures.Add(1)
	v.how, v.failed = "a fresh connection failed", err
	return v
}

// heardSince reports whether any socket of the pool receives data after
// started, before ctx ends: the server answered someone. No I/O: the
// kernel's TCP_INFO. (An acknowledgement alone does not count: it may come
// from a proxy in front of a dead path.)
func (p *Pool) heardSince(ctx context.Context, started time.Time) bool {
	base := make(map[net.Conn]time.Time)
	for {
		for _, c := range p.snapshot() {
			sock := c.l().socks.current()
			if sock == nil {
				continue
			}
			at, ok := lastHeard(sock, true)
			if !ok {
				continue
			}
			b, seen := base[sock]
			if !seen {
				base[sock] = at
				continue
			}
			if at.Sub(b) > heardTick {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(heardPoll):
		}
	}
}

// heardPoll is how often a check reads TCP_INFO while it waits: each read
// is a syscall per socket, and a check of a pool with many conns busy must
// not starve the process it protects (the soak, 64 workers on 2 cores,
// showed false liveness failures when checks polled every 2-5ms).
const heardPoll = 15 * time.Millisecond

// maxFlowSample bounds the busy flows one check probes.
const maxFlowSample = 8

// heardTick: the kernel keeps TCP_INFO's last-received times in jiffies
// (4ms at HZ=250), so a time read twice can move by one tick without
// anything arriving; only a later read more than that apart is news.
const heardTick = 5 * time.Millisecond

// lastHeard returns when sock last received data, or with acks also an
// acknowledgement (a keepalive probe's answer).
func lastHeard(sock net.Conn, dataOnly bool) (time.Time, bool) {
	heard := sockopt.Heard
	if dataOnly {
		heard = sockopt.HeardData
	}
	ago, ok := heard(sock)
	return time.Now().Add(-ago), ok
}

// checkFlows checks the flows (the path answers): the current
// generation's idle conns, and every conn lent out, whatever its
// generation. When conns are lent out, the sentinel is asked too
// (sentinel.go); found dead, it condemns every flow made before the check
// began (since, the pool's clock), and the other probes stop.
func (p *Pool) checkFlows(ctx context.Context, started, since time.Time, pinged *conn) checkResult {
	var r checkResult
	if pinged != nil {
		r.sampled++
	}
	// The busy flows' probes stop when the sentinel condemns them (bctx).
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var condemned bool
	gen := p.gen.Load()
	var mu sync.Mutex
	var wg sync.WaitGroup
	note := func(c *conn, dead bool) {
		mu.Lock()
		defer mu.Unlock()
		r.sampled++
		if dead {
			r.dead = append(r.dead, c.id)
		}
	}
	idle, busy := 0, 0
	var old []*conn // lent out, with flows made before the check began
	for _, c := range p.snapshot() {
		l := c.l()
		if c == pinged {
			continue
		}
		if l.gen != gen {
			// An older generation's conn still lent out carries a request
			// across the outage that retired it: its flow is checked like
			// the others. Idle ones of old generations are retired already.
			if st := c.state.Load(); st != stateBusy || l.bad.Load() {
				continue
			}
		}
		if l.bad.Load() {
			// Known dead while it sits idle (its failure was seen on
			// another borrow's path): close it now, so its server session
			// is reaped, rather than when database/sql next lends it.
			if c.state.CompareAndSwap(stateIdle, stateRetired) {
				c.retire(true)
				note(c, true)
			}
			continue
		}
		switch c.state.Load() {
		case stateIdle:
			if idle >= flowSample {
				continue
			}
			idle++
			wg.Add(1)
			go func() {
				defer wg.Done()
				note(c, !p.probeIdle(ctx, c))
			}()
		case stateBusy:
			sock := l.socks.current()
			if sock != nil && l.connectedAt.Before(since) {
				old = append(old, c)
			}
			if sock == nil || busy >= maxFlowSample {
				continue
			}
			busy++
			wg.Add(1)
			go func() {
				defer wg.Done()
				if alive, known := p.probeFlow(bctx, sock, started); known {
					note(c, !alive)
				}
			}()
		}
	}
	if len(old) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if dead, known := p.probeSentinel(ctx, since); known && dead {
				mu.Lock()
				condemned = true
				mu.Unlock()
				cancel() // the verdict is in: the other probes stop
			}
		}()
	}
	wg.Wait()
	if condemned && r.sampled == len(r.dead) {
		// The sentinel's flow died while the path answered, and no flow
		// checked answered: every flow made before the check began died
		// with it. (A flow that answered makes the answers mixed: facts
		// about those conns only.)
		seen := make(map[uint64]bool, len(r.dead))
		for _, id := range r.dead {
			seen[id] = true
		}
		for _, c := range old {
			if !seen[c.id] {
				r.dead = append(r.dead, c.id)
			}
		}
		r.sampled = max(r.sampled, len(r.dead)) + 1 // the sentinel
		r.dead = append(r.dead, 0)                  // ... dead (id 0 names no conn)
	}
	return r
}

// probeFlow checks one busy flow: alive if it received something since
// started, or its keepalive probe was answered within the deadline. known
// is false when it cannot be told (see the comment at the top).
func (p *Pool) probeFlow(ctx context.Context, sock net.Conn, started time.Time) (alive, known bool) {
	base, ok := lastHeard(sock, false)
	if !ok {
		return false, false
	}
	heard := func() bool { at, ok := lastHeard(sock, false); return ok && at.Sub(base) > heardTick }
	restore, sent := sockopt.KeepAliveProbe(sock)
	defer func() { restore() }() // the last probe's
	if !sent {
		return p.probeUnacked(ctx, sock, heard)
	}
	// The probe leaves when the flow has been silent for a second (the
	// kernel's smallest TCP_KEEPIDLE), then needs a round trip. On a lossy
	// path one probe or its answer can be lost: it is asked for again
	// after each round-trip deadline, flowProbes times in all, before the
	// flow counts as dead (three losses in a row on a path losing 3% of
	// its packets each way: about 1 in 5,000).
	first := time.Duration(0)
	if silent := time.Since(base); silent < time.Second {
		first = time.Second - silent
	}
	each := p.livenessTimeout(sock)
	deadline := time.Now().Add(first + each)
	for n := 1; ; {
		if heard() {
			return true, true
		}
		if !time.Now().Before(deadline) {
			if n >= flowProbes {
				return false, true
			}
			n++
			restore()
			if restore, sent = sockopt.KeepAliveProbe(sock); !sent {
				return false, false // data went out meanwhile: the flow is busy again
			}
			deadline = time.Now().Add(each)
		}
		select {
		case <-ctx.Done():
			return true, false
		case <-time.After(min(heardPoll, time.Until(deadline))):
		}
	}
}

// probeUnacked checks a flow whose request the server has not
// acknowledged (written into the outage): Linux sends no keepalive then,
// but retransmits it on its own timer. Alive when an acknowledgement comes;
// dead when a retransmission that went out after the check began (the path
// answers) is not acknowledged within the round-trip deadline; unknown
// (left to its own deadline, as
// with plain) when no retransmission went out within two timeouts.
func (p *Pool) probeUnacked(ctx context.Context, sock net.Conn, heard func() bool) (alive, known bool) {
	unacked, r0, ok := sockopt.Flight(sock)
	if !ok {
		n, ok := sockopt.Stalled(sock)
		return false, ok && n >= stallDead
	}
	if unacked == 0 {
		return true, true // acknowledged meanwhile
	}
	each := p.livenessTimeout(sock)
	_, _, rto, ok := sockopt.RTT(sock)
	if !ok {
		rto = time.Second
	}
	until := time.Now().Add(2*rto + each)
	var resent time.Time
	for {
		if heard() {
			return true, true
		}
		u, r, _ := sockopt.Flight(sock)
		if u == 0 {
			return true, true
		}
		now := time.Now()
		if r > r0 && resent.IsZero() {
			resent = now
		}
		if !resent.IsZero() && now.Sub(resent) > each {
			return false, true
		}
		if now.After(until) {
			return false, false
		}
		select {
		case <-ctx.Done():
			return true, false
		case <-time.After(heardPoll):
		}
	}
}

// flowProbes is how many keepalive probes a flow gets before it counts as
// dead.
const flowProbes = 3

// cut closes the sockets of the conns with the given ids (their flows were
// checked dead), so the requests on them return now. It returns how many
// sockets it closed.
func (p *Pool) cut(ids []uint64) int {
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	n := 0
	for _, c := range p.snapshot() {
		if !want[c.id] {
			continue
		}
		if l := c.l(); l.socks != nil {
			l.bad.Store(true)
			n += l.socks.closeAll()
		}
	}
	p.stats.severedSockets.Add(uint64(n))
	if n > 0 {
		p.promoteOrphanCandidates()
	}
	return n
}

// staggeredProbe is freshProbe for a path checked down: a connect whose
// SYN went into the void waits a second for its retransmission, so a new
// attempt starts every downSpacing for window (at least one, for d), each
// with deadline d; the first to succeed is kept as a spare and ends the
// rest. At the window's end the attempts still waiting are cut (their SYNs
// went into the void) and the check fails at once, so the next check's
// attempts follow without waiting out the last one's deadline: a path that
// comes back is found within about downSpacing and a connect.
//
// Once one attempt's TCP handshake completed, no more start: the path
// carries packets, and that attempt's login decides (a slow server or a
// starved client is not made slower by more logins). keep: the connection
// that succeeds is kept as a spare for the rebuild; otherwise it is closed.
func (p *Pool) staggeredProbe(ctx context.Context, d, window time.Duration, keep bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var shook atomic.Bool
	ctx = context.WithValue(ctx, handshakeKey{}, func() { shook.Store(true) })
	window = max(window, d)
	results := make(chan error, int(window/downSpacing)+2)
	started, finished := 0, 0
	drain := func() {
		cancel()
		for ; finished < started; finished++ {
			<-results
		}
	}
	var last error
	t := time.NewTimer(0)
	defer t.Stop()
	end := time.NewTimer(window)
	defer end.Stop()
	for {
		select {
		case <-t.C:
			if started < cap(results) && !shook.Load() {
				started++
				go func() { results <- p.freshProbe(ctx, d, keep) }()
				t.Reset(downSpacing)
			}
		case err := <-results:
			finished++
			if err == nil {
				drain()
				return nil
			}
			last = err
			if finished == started && (started == cap(results) || shook.Load()) {
				return last
			}
		case <-end.C:
			drain()
			if last == nil {
				last = fmt.Errorf("no connection answered within %v", window.Round(time.Millisecond))
			}
			return last
		case <-ctx.Done():
			drain()
			return ctx.Err()
		}
	}
}

// downSpacing is how often a check of a path found down starts a new
// connect, for downWindow, during the first downFastFor of an outage (then
// one connect per check, every Config.ProbeInterval).
const (
	downSpacing = 25 * time.Millisecond
	downWindow  = 500 * time.Millisecond
)

// verdictTimeout bounds the fresh connection that decides a working path is
// down: four measured connect times, at least twice LivenessTimeoutMin, at
// most ProbeTimeout.
func (p *Pool) verdictTimeout() time.Duration {
	d := 4 * time.Duration(p.connectEWMA.Load())
	return min(max(d, 2*p.cfg.LivenessTimeoutMin), p.cfg.ProbeTimeout)
}

// connectTimeoutFor bounds a check's fresh connection: a few connect times
// as measured, at least 50ms, so one stuck in a SYN into the void gives way
// soon to the next, at most ProbeTimeout.
func (p *Pool) connectTimeoutFor() time.Duration {
	d := 3 * time.Duration(p.connectEWMA.Load())
	return min(max(d, 50*time.Millisecond), p.cfg.ProbeTimeout)
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
// A completed login proves the path. An error the server sent (classified
// alive: too many connections, login failed) proves it too, so it counts
// as success.
//
// keep: a connection made is kept as the spare the next connect takes
// (connector.connect), instead of closed.
func (p *Pool) freshProbe(parent context.Context, d time.Duration, keep bool) error {
	ctx, cancel := context.WithTimeout(context.WithValue(parent, probeKey{}, true), d)
	defer cancel()
	rc, err := p.conn.dial(ctx)
	if err == nil {
		if !keep || p.closed.Load() {
			rc.close()
		} else {
			p.addSpare(rc)
		}
	}
	if err != nil && ctx.Err() == nil && !p.classify(err).IsLost() {
		err = nil
	}
	return err
}
