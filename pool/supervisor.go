package pool

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// supervisor is the executor of the pool's decisions (decide.go): one
// goroutine (pgxpool's backgroundHealthCheck is the model) feeds the
// machine its inputs in the order they happen and performs the actions it
// returns. It owns every goroutine and timer the decisions need: the checks
// (probe.go), orphan reaping and the rebuild run on goroutines of their own
// under a context that Close cancels, and report back here.
type supervisor struct {
	p *Pool

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      jobs          // the loop and every job
	wake    chan struct{} // buffer 1: bursts merge into one wake-up
	calls   chan func()   // run on the loop (tests)
	results chan input    // inCheckDone and inFlowsDone from the checks

	// Owned by the loop goroutine.
	m        machine
	timers   [timerOwed + 1]*time.Timer
	due      [timerOwed + 1]time.Time
	fired    chan timerName
	reaping  bool
	lastOps  uint64
	stallAt  time.Time // the last stall hint
	verdicts []awaiting
	stopped  bool
	checks   int // check goroutines running (the machine's running check, and flows parts)
	// more carries actConnect to the running check (epoch moreFor).
	more    chan int
	moreFor uint64
}

// awaiting is a NotifyWait caller: it gets the verdict of the first check
// started after its event was applied (epoch above after).
type awaiting struct {
	after uint64
	done  chan Verdict
}

// stallWatch: how often busy conns are looked at (TCP_INFO, no I/O) for a
// flow retransmitting into the void, while there are busy conns.
const stallWatch = 100 * time.Millisecond

func newSupervisor(p *Pool) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	return &supervisor{
		p: p, ctx: ctx, cancel: cancel,
		wake:    make(chan struct{}, 1),
		calls:   make(chan func()),
		results: make(chan input, 4),
		fired:   make(chan timerName, len(timerNames)),
		m:       newMachine(&p.cfg),
	}
}

var timerNames = []timerName{timerCheck, timerRoutine, timerOwed}

func (s *supervisor) start() {
	s.lastOps = s.p.totalOps()
	s.wg.Add(1)
	go s.loop()
}

// stop cancels every job and waits for the loop and the jobs to end.
func (s *supervisor) stop() {
	s.cancel()
	s.wg.Wait()
}

// jobs is a sync.WaitGroup for the supervisor's goroutines that does not
// wait for itself: Config.OnEvent runs on those goroutines too, and a
// callback that calls Pool.Close must not wait for its own return (it
// deadlocked: issue 25's defect 17). Wait returns once every goroutine has
// ended, or when all those still running are inside OnEvent (the context
// is cancelled: they end when their callbacks return). callbacks counts
// every OnEvent call in progress, on any goroutine: a callback on a
// request's goroutine while Close waits can only make Wait return early,
// never hang.
type jobs struct {
	wg        sync.WaitGroup
	live      atomic.Int64
	callbacks atomic.Int64
}

func (j *jobs) Add(n int) { j.live.Add(int64(n)); j.wg.Add(n) }
func (j *jobs) Done()     { j.live.Add(-1); j.wg.Done() }

func (j *jobs) Wait() {
	if j.callbacks.Load() == 0 {
		j.wg.Wait()
		return
	}
	done := make(chan struct{})
	go func() { j.wg.Wait(); close(done) }()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if n := j.live.Load(); n > 0 && n <= j.callbacks.Load() {
			return
		}
	}
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
	defer s.stopTimers()
	if s.p.cfg.ProbeInterval != off {
		s.arm(timerRoutine, s.jitter())
	}
	stall := time.NewTicker(stallWatch)
	defer stall.Stop()
	var clock <-chan time.Time // the coarse clock (borrowNow)
	if d := clockTick(s.p.cfg.LivenessIdle); d > 0 && !s.p.cfg.clockInjected {
		t := time.NewTicker(d)
		defer t.Stop()
		clock = t.C
	}
	for {
		select {
		case <-s.ctx.Done():
			s.apply(input{kind: inClose})
			for _, a := range s.verdicts {
				a.done <- Verdict{Taken: true, Reason: "the pool closed before a check ran"}
			}
			return
		case f := <-s.calls:
			f()
		case <-s.wake:
			s.step()
		case in := <-s.results:
			if in.kind == 0 { // a check goroutine ended
				s.checks--
				continue
			}
			s.apply(in)
		case t := <-s.fired:
			s.due[t] = time.Time{}
			s.apply(input{kind: inTimer, timer: t})
		case <-stall.C:
			s.watchStalls()
			s.ensureSentinel()
		case <-clock:
			s.p.coarse.Store(nanotime())
		}
	}
}

// step feeds the machine what the pool's goroutines left for it: tunnel
// events in arrival order, lost conns, failed connects, a request at the
// gate, and whether operations progressed.
func (s *supervisor) step() {
	p := s.p
	for _, q := range p.inbox.take() {
		p.stats.events.Add(1)
		p.emit(Event{Kind: EventTunnel, TunnelEvent: q.ev})
		before := s.m.epoch
		s.apply(input{kind: inEvent, ev: q.ev})
		if q.done != nil {
			s.verdicts = append(s.verdicts, awaiting{after: before, done: q.done})
		}
	}
	p.stats.tunnelsForgotten.Store(s.m.tunnels.forgotten)
	if p.evidence.take() > 0 {
		s.apply(input{kind: inConnLost})
	}
	if p.connectFailed.Swap(false) {
		s.apply(input{kind: inConnectFailed})
	}
	if p.waiting.Swap(false) {
		s.apply(input{kind: inWaiting})
	}
	if ops := p.totalOps(); ops != s.lastOps {
		s.lastOps = ops
		s.apply(input{kind: inProgress})
	}
}

// watchStalls looks at the busy conns' sockets: a flow with data the peer
// has not acknowledged for a retransmission timeout is a hint (one lost
// packet on a working path costs one check at most per spacing; nothing is
// cut unless a check finds the flow dead).
func (s *supervisor) watchStalls() {
	p := s.p
	if p.dialer == nil || p.cfg.ProbeInterval == off || s.m.path == pathDown {
		return
	}
	if len(p.stalled(1)) == 0 {
		return
	}
	if now := p.cfg.now(); now.Sub(s.stallAt) >= maxSpacing/2 {
		s.stallAt = now
		s.apply(input{kind: inStall})
	}
}

// apply feeds one input to the machine and performs its actions.
func (s *supervisor) apply(in input) {
	if s.stopped {
		return
	}
	acts := s.m.next(in, s.p.cfg.now())
	for _, a := range acts {
		s.perform(a)
	}
	if in.kind == inCheckDone {
		s.deliver(in) // after the gate and the reset: a waiter sees them done
	}
	if in.kind == inClose {
		s.stopped = true
	}
}

// deliver hands a check's verdict to the NotifyWait callers whose event
// came before the check started.
func (s *supervisor) deliver(in input) {
	keep := s.verdicts[:0]
	for _, a := range s.verdicts {
		if in.epoch > a.after {
			a.done <- Verdict{Taken: true, Checked: true, PathOK: in.res.pathOK, Reason: in.res.how}
			continue
		}
		keep = append(keep, a)
	}
	s.verdicts = keep
}

func (s *supervisor) perform(a action) {
	p := s.p
	switch a.kind {
	case actGate:
		if a.shut {
			p.gate.block()
		} else {
			p.gate.open()
		}
	case actCheck:
		s.startCheck(a)
	case actReset:
		p.reset(a.reason, a.sever)
	case actCut:
		if n := p.cut(a.ids); n > 0 {
			p.emit(Event{Kind: EventFlowsCut, Reason: a.reason, Count: n})
		}
	case actConnect:
		if a.epoch == s.moreFor && s.more != nil {
			select {
			case s.more <- a.n:
			default:
			}
		}
	case actRebuild:
		p.abandonPending(p.gen.Load(), p.cfg.now())
		s.rebuild(a.n)
	case actArm:
		s.arm(a.timer, a.d)
	case actReap:
		s.reap()
	case actHealth:
		from := Health(p.healthNow.Swap(int32(a.health)))
		p.emit(Event{Kind: EventHealthChange, From: from, To: a.health, Reason: a.reason})
	case actIgnored:
		p.logLimited("ignored", "flapguard: input dropped", "reason", a.reason)
	}
}

// startCheck runs a check on a goroutine of its own.
func (s *supervisor) startCheck(a action) {
	p := s.p
	s.wg.Add(1)
	s.checks++
	send := func(in input) {
		select {
		case s.results <- in:
		case <-s.ctx.Done():
		}
	}
	more := make(chan int, 1)
	s.more, s.moreFor = more, a.epoch
	go func() {
		defer s.wg.Done()
		p.check(s.ctx, a.check, a.n, a.window, more, func(in input) {
			in.epoch = a.epoch
			send(in)
		})
		send(input{}) // this check ended
	}()
}

// arm makes timer t fire within d (an earlier wake-up stays).
func (s *supervisor) arm(t timerName, d time.Duration) {
	at := time.Now().Add(d)
	if !s.due[t].IsZero() && !at.Before(s.due[t]) {
		return
	}
	if s.timers[t] != nil {
		s.timers[t].Stop()
	}
	s.due[t] = at
	s.timers[t] = time.AfterFunc(d, func() {
		select {
		case s.fired <- t:
		case <-s.ctx.Done():
		}
	})
}

func (s *supervisor) stopTimers() {
	for _, t := range s.timers {
		if t != nil {
			t.Stop()
		}
	}
}

func (s *supervisor) jitter() time.Duration {
	d := s.p.cfg.ProbeInterval
	if d <= 0 {
		d = defaultProbeInterval
	}
	return d - d/5 + rand.N(2*d/5+1)
}
