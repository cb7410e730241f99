package pool

import (
	"time"

	"github.com/flapguard/flapguard/detect"
)

// applyEvents records tunnel events in the table (supervisor goroutine).
func (s *supervisor) applyEvents(evs []detect.Event) {
	now := s.p.cfg.now()
	wasDown, _ := s.tunnels.pathState()
	defer func() {
		if isDown, _ := s.tunnels.pathState(); isDown != wasDown {
			s.prevToggle, s.lastToggle, s.toggledNow = s.lastToggle, now, true
		}
	}()
	for _, ev := range evs {
		s.p.stats.events.Add(1)
		s.p.emit(Event{Kind: EventTunnel, TunnelEvent: ev})
		if ev.State == detect.Rekey {
			s.resetWanted = true
			continue
		}
		if s.tunnels.apply(ev, now) {
			s.resetWanted = true
		}
		s.lastEvent = ev.String()
	}
	s.p.stats.tunnelsForgotten.Store(s.tunnels.evicted)
}

// reconcile brings the gate and the pool in line with the tunnel table,
// under storm control. A DOWN after a quiet spell severs at once (the
// seed case). Once a DOWN has severed, the tunnels' further toggles are a
// storm: they sever nothing more until the table has been quiet for
// ResetCooldown; then one trailing sever applies if the storm ended down,
// or went down meanwhile (old flows may have died with it). So toggles
// faster than the cooldown collapse into the first sever and at most one
// more at the storm's end. Reopening is never delayed (it ends gating).
// A storm never leaves the pool stuck: it ends in the state of the last
// event.
func (s *supervisor) reconcile() {
	down, verify := s.tunnels.pathState()
	// The toggle before this one, if the events just applied flipped the
	// path: the current flip itself is not a storm.
	recent := s.lastToggle
	if s.toggledNow {
		recent, s.toggledNow = s.prevToggle, false
	}
	stormy := !s.lastEdge.IsZero() && !s.cooled(s.lastEdge)
	if !s.lastEdge.IsZero() && recent.After(s.lastEdge) && !s.cooled(recent) {
		stormy = true // toggling since the last sever: wait for quiet
	}
	switch {
	case down && !s.gated:
		if !stormy {
			s.goDown(s.lastEvent)
		} else {
			s.missedDown, s.missedDownAt = true, s.p.monoNow()
			// Hold only a tunnel that stayed up long enough to be checked:
			// toggles faster than the prober's shortest spacing are a
			// monitor's noise (a real tunnel does not come up and go down
			// within milliseconds), and holding the gate for each would keep
			// it shut while the path works (the lab's H3).
			if recent.IsZero() || s.p.cfg.now().Sub(recent) >= minProbeBackoff {
				s.hold(s.lastEvent)
			}
		}
	case down && s.held && !stormy:
		// The storm is over and ended down: an outage like any other.
		s.goDown(s.lastEvent)
	case !down && !s.gated && s.missedDown:
		// The tunnels went down and came back during the storm: old flows
		// may have died with them (a rekey), and nothing cut them. Once the
		// storm is over (the trailing edge): a new generation, and the
		// requests still in flight since before that DOWN are cut (on a
		// working path they would have finished by now); requests started
		// since are left alone.
		if !stormy {
			s.missedDown = false
			s.lastEdge = s.p.cfg.now()
			idle := s.p.idleCount()
			s.p.reset("tunnels went down and up during a storm", false)
			if n := s.p.severBusySince(s.missedDownAt); n > 0 {
				s.p.emit(Event{Kind: EventSever, Reason: "requests in flight since a DOWN during a storm", Count: n})
			}
			s.rebuild(idle, false, nil)
		}
	case !down && s.gated && !s.canary:
		s.goUp(s.lastEvent)
	case !down && !s.gated && verify != "" && s.verifying != verify:
		s.verifying = verify
		s.startProbe(job{kind: jobVerify, tunnel: verify})
	}
	if s.resetWanted && !s.gated && s.health != Unreachable {
		s.autoReset("tunnel rekeyed, or came up without a down", true)
	}
}

// goDown: the tunnels say the path is down. Requests hung on it return now
// and new connections wait at the gate.
func (s *supervisor) goDown(reason string) {
	p := s.p
	s.lastEdge = p.cfg.now()
	s.epoch++ // a probe started before this must not undo it
	s.downSince = p.cfg.now()
	s.gated, s.resetWanted, s.resetDone, s.backoff, s.severDue, s.missedDown = true, false, false, 0, false, false
	s.held = false
	s.rebuiltAtUp = false
	s.idleBefore = max(s.idleBefore, p.idleCount())
	p.gate.block()
	s.setHealth(Unreachable, reason)
	p.reset(reason, true)
	if p.cfg.ProbeInterval != off {
		s.armIn(minProbeBackoff)
	}
}

// hold: the tunnels say the path is down, inside a storm (storm control:
// no sever, no reset). Requests in flight are left alone: on a flap they
// finish by retransmission, as with plain database/sql. But nothing new is
// sent into the path while it is reported down: new connections wait at
// the gate, and a conn lent out before now is pinged with the pool's short
// deadline at its next borrow (conn.ready), so a borrower does not send its
// statement down a flow that may have died with the tunnel; a conn that
// does not answer is renewed, behind the gate. When the tunnels come back
// (goUp), the waiters go first onto new connections. Flows still hung then
// are cut at the storm's trailing edge (reconcile).
func (s *supervisor) hold(reason string) {
	p := s.p
	s.epoch++ // a probe started before this must not undo it
	s.downSince = p.cfg.now()
	s.gated, s.held, s.backoff, s.severDue = true, true, 0, false
	p.heldAt.Store(p.monoNow())
	p.gate.block()
	s.setHealth(Unreachable, reason)
	if p.cfg.ProbeInterval != off {
		s.armIn(minProbeBackoff)
	}
}

// goUp: the tunnels say the path is back. A new generation begins, and a
// fresh connection (the canary) must answer before the gate opens.
//
// When the pool held idle conns before the outage, it is rebuilt now
// rather than after the check, so it is full again when traffic returns,
// and the rebuild's own connections are the check: the first of them to
// connect opens the gate. A separate canary would be one more server
// session starting at the very moment the rebuild's do; on a server that
// starts a process per session that contention is what delays the last
// rebuilt connection (docs/drivers.md, "What a connect costs").
func (s *supervisor) goUp(reason string) {
	p := s.p
	if !s.resetDone && !s.held {
		p.reset(reason, false)
		s.resetDone = true
	}
	p.abandonPending(p.gen.Load(), p.cfg.now().Add(time.Nanosecond))
	s.canary = true
	if !s.rebuiltAtUp && s.idleBefore > 0 && !s.held {
		s.rebuiltAtUp = true
		s.rebuild(s.idleBefore, true, s.canaryReport())
		return
	}
	s.startProbe(job{kind: jobCanary})
}

// canaryReport returns what the rebuild that checks the path after the
// tunnels came up calls once: with nil when its first connection
// succeeded, or with the error when every one failed. The result reaches
// the loop as the canary's would.
func (s *supervisor) canaryReport() func(error) {
	r := probeResult{job: job{kind: jobCanary, epoch: s.epoch}, started: s.p.cfg.now()}
	return func(err error) {
		r.err = err
		select {
		case s.results <- r:
		case <-s.ctx.Done():
		}
	}
}

// recovered: a fresh connection succeeded while the path was down. The
// gate opens (whatever the tunnel table says: a DOWN whose UP never came
// must not shut the pool for good), and the pool is rebuilt.
//
// since is when the path was last known to work (the good probe began):
// connects still pending from before it are cut and retried.
func (s *supervisor) recovered(reason string, since time.Time) {
	p := s.p
	if s.gated {
		if down, _ := s.tunnels.pathState(); down {
			p.log.Info("flapguard: the path answers although tunnels are reported down; reopening")
			s.tunnels.markAllUp()
		}
	}
	if !s.resetDone && !s.held {
		p.reset(reason, false)
	}
	held := s.held
	s.resetDone, s.canary, s.backoff, s.severDue, s.held = false, false, 0, false, false
	s.epoch++        // a probe started while the path was down is stale now
	p.severStalled() // flows that stayed dead while the path came back
	p.abandonPending(p.gen.Load(), since)
	s.gated = false
	p.gate.open()
	s.setHealth(Recovering, reason)
	n := s.idleBefore
	s.idleBefore = 0
	if s.rebuiltAtUp || held {
		n = 0 // goUp started it, or nothing was reset
	}
	s.rebuiltAtUp = false
	s.rebuild(n, false, nil)
	s.reap()
}
