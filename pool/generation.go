package pool

import "time"

// Generations. Every connection is stamped with the generation current when
// it was dialed. A reset starts a new one: idle connections are closed at
// once, connections in use are discarded when database/sql gets them back
// (IsValid), and a pooled connection whose driver connection was closed
// gets a new one when next borrowed, before anything is sent (conn.ready).
// A sever also closes the sockets of every old connection, so requests hung
// on a blackholed flow return now.

// Reset discards the whole pool, like .NET's SqlConnection.ClearAllPools: a
// new generation begins, idle connections are closed now, and connections
// in use are discarded when returned. No query fails because of a Reset by
// itself. Use it when old connections are suspect but not known to be dead
// (a planned rekey, a failover). After Close it does nothing.
func (p *Pool) Reset(reason string) { p.reset(reason, false) }

// Sever is a Reset that also closes the sockets of every old-generation
// connection, so requests hung on a blackholed connection fail now instead
// of at their deadline (or after ~15 minutes of retransmits without one).
// Use it when the path is known dead (a tunnel DOWN, a failed probe).
// Without socket control (OpenDB) it is a Reset.
func (p *Pool) Sever(reason string) { p.reset(reason, true) }

func (p *Pool) reset(reason string, sever bool) {
	if p.closed.Load() {
		return
	}
	gen := p.gen.Add(1)
	p.mu.Lock()
	old := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		if c.l().gen < gen {
			old = append(old, c)
		}
	}
	var pend []*socketSet
	if sever {
		for s, pc := range p.pending {
			if pc.gen < gen {
				pend = append(pend, s)
			}
		}
	}
	p.mu.Unlock()

	closed, severed := 0, 0
	for _, c := range old {
		if c.state.CompareAndSwap(stateIdle, stateRetired) || c.state.CompareAndSwap(stateFresh, stateRetired) {
			closed++
			severed += c.retire(sever)
			continue
		}
		if l := c.l(); sever && l.socks != nil && l.gen < gen {
			l.bad.Store(true)
			severed += l.socks.closeAll()
		}
	}
	for _, s := range pend {
		severed += s.closeAll()
	}
	if sever && p.dialer != nil {
		severed += p.dialer.closeLoose(gen)
	}
	kind := EventReset
	p.stats.resets.Add(1)
	if sever {
		kind = EventSever
		p.stats.severs.Add(1)
		p.stats.severedSockets.Add(uint64(severed))
	}
	p.stats.resetClosed.Add(uint64(closed))
	p.emit(Event{Kind: kind, Generation: gen, Reason: reason, Count: closed + severed})
}

// abandonPending cuts the connects that started before generation gen and
// before time before (into a path that was dead then: a SYN into the void
// waits for its retransmission, a second or more); their connectors try
// again (see dial). Connects started after before are left alone: they
// started on a path already known to work.
func (p *Pool) abandonPending(gen uint64, before time.Time) int {
	p.mu.Lock()
	var pend []*socketSet
	for s, pc := range p.pending {
		if pc.gen < gen && pc.started.Before(before) {
			// Marked under the lock: a connect that finishes now either
			// sees the mark or has already left the pending set (see
			// connector.claim), never both unmarked and cut.
			s.abandoned.Store(true)
			delete(p.pending, s)
			pend = append(pend, s)
		}
	}
	p.mu.Unlock()
	n := 0
	for _, s := range pend {
		n += s.closeAll()
	}
	return n
}
