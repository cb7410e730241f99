package pool

import (
	"context"
	"net"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// The sentinel is one server session the pool keeps idle and never lends
// out, so that a check can still ask whether the flows made before an
// outage survived it when every pooled conn carries a request (none idle
// to ping, and a busy flow cannot be probed: its request is unacknowledged,
// or it heard from the server less than a second ago, the kernel's
// smallest TCP_KEEPIDLE). The sentinel sits silent for long, so the
// kernel's keepalive probe leaves at once when asked (TCP_KEEPIDLE set on
// the live socket re-arms the timer from the time already idle), and its
// answer is an ACK the peer's kernel sends at once: a round trip, not the
// liveness ping's retransmission timeout. Flows of one generation through
// one path share fate; a sentinel that answers none of sentinelProbes
// probes while the path answers before and after them is a fact about
// every flow made before the check began: they are cut (issue 25: a storm
// that ends in a rekey, with every worker in flight).
//
// It costs one more server session per pool (Stats.OwnSessions), made
// only with socket control, once the pool was seen with every conn lent out
// (where no idle conn could be pinged instead), and made again after a
// reset.

// sentinelProbes is how many keepalive probes the sentinel gets, each
// with its own round-trip deadline, before it counts as dead: on a path
// losing 3% of its packets each way a probe or its answer is lost 6% of the
// time, four in a row about 1 in 80,000.
const sentinelProbes = 4

// ensureSentinel makes the sentinel when one is due: socket control, a
// pool in use and healthy, and none of the current generation. The
// connect runs as a supervisor job; at most one at a time.
func (s *supervisor) ensureSentinel() {
	p := s.p
	if p.dialer == nil || p.closed.Load() || Health(p.healthNow.Load()) != Healthy || p.sentinelDialing.Load() {
		return
	}
	p.mu.Lock()
	have := p.sentinel != nil && p.sentinel.gen == p.gen.Load() && !p.sentinel.bad.Load()
	busy, idle := 0, 0
	for c := range p.conns {
		switch c.state.Load() {
		case stateBusy:
			busy++
		case stateIdle, stateFresh:
			idle++
		}
	}
	// Wanted where it helps: every conn lent out, none idle to ping. Kept
	// while it is of the current generation.
	used := p.sentinel != nil || busy > 0 && idle == 0
	old := p.sentinel
	if !have {
		p.sentinel = nil
	}
	p.mu.Unlock()
	if old != nil && !have {
		// Replaced after a reset, its flow may be dead with the others:
		// closed as lost, so its server session is reaped if still there.
		old.bad.Store(true)
		old.close()
	}
	if have || !used || !p.sentinelDialing.CompareAndSwap(false, true) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer p.sentinelDialing.Store(false)
		ctx, cancel := context.WithTimeout(context.WithValue(s.ctx, probeKey{}, true), p.cfg.ProbeTimeout)
		defer cancel()
		p.stats.probes.Add(1) // the checks' own session: counted with their connects
		rc, err := p.conn.dial(ctx)
		if err != nil {
			p.stats.probeFailures.Add(1)
			return
		}
		p.mu.Lock()
		if p.closed.Load() || p.sentinel != nil || rc.gen != p.gen.Load() {
			p.mu.Unlock()
			rc.close()
			return
		}
		p.sentinel = rc
		p.mu.Unlock()
	}()
}

// closeSentinel closes the sentinel (the pool is closing).
func (p *Pool) closeSentinel() {
	p.mu.Lock()
	rc := p.sentinel
	p.sentinel = nil
	p.mu.Unlock()
	if rc != nil {
		rc.close()
	}
}

// probeSentinel asks the sentinel's kernel whether its flow survived:
// dead and known when none of sentinelProbes keepalive probes was answered
// within its round-trip deadline, the socket was not closed by the peer
// (a session ended on its own is no fact about the path) and a fresh
// connection succeeds afterwards (the path answered throughout). known is
// false when it cannot tell: no sentinel older than since, one that heard
// from its peer less than a second ago, or no probe could go out.
func (p *Pool) probeSentinel(ctx context.Context, since time.Time) (dead, known bool) {
	p.mu.Lock()
	rc := p.sentinel
	p.mu.Unlock()
	if rc == nil || !rc.connectedAt.Before(since) {
		return false, false
	}
	sock := rc.socks.current()
	if sock == nil {
		return false, false
	}
	base, ok := lastHeard(sock, false)
	if !ok || time.Since(base) < time.Second {
		return false, false
	}
	heard := func() bool { at, ok := lastHeard(sock, false); return ok && at.Sub(base) > heardTick }
	each := p.keepAliveDeadline(sock)
	for range sentinelProbes {
		restore, sent := sockopt.KeepAliveProbe(sock)
		if !sent {
			restore()
			return false, false
		}
		t := time.NewTimer(each)
		select {
		case <-ctx.Done():
			t.Stop()
			restore()
			return false, false
		case <-t.C:
		}
		restore()
		if heard() {
			return false, true
		}
	}
	if closed, _, ok := sockopt.Peer(sock); !ok || closed {
		return false, false
	}
	if err := p.freshProbe(ctx, p.verdictTimeout(), true); err != nil || ctx.Err() != nil {
		return false, false // the path itself is in doubt: no fact about the flows
	}
	if heard() {
		return false, true
	}
	p.mu.Lock()
	if p.sentinel == rc {
		p.sentinel = nil
	}
	p.mu.Unlock()
	rc.bad.Store(true)
	rc.close()
	return true, true
}

// keepAliveDeadline is how long a keepalive probe's answer may take: the
// peer's kernel answers at once, so a round trip with a margin for jitter,
// at least 10ms (the kernel keeps the time of the last ACK in jiffies).
func (p *Pool) keepAliveDeadline(sock net.Conn) time.Duration {
	rtt, rttvar, _, ok := sockopt.RTT(sock)
	if !ok {
		return p.livenessTimeout(sock)
	}
	return max(2*rtt+8*rttvar+5*time.Millisecond, 10*time.Millisecond)
}
