package syslogfeed

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// The table of open TCP connections, and who makes room for whom.
//
// A connection that holds a slot without delivering messages must not
// starve a router that has something to say: when a source has
// MaxConnsPerSource connections, or the receiver MaxConns, a new
// connection is admitted and another is closed to make room (evicted).
// Who goes first is decided by what each connection delivered, not only
// by when: a connection that never delivered a complete message goes
// first, then one that delivered only messages that were no event
// (junk, or chatter no rule turns into an event), and a connection that
// delivered an event (a router) goes last; within each rank, the one
// idle longest (oldest last message, or oldest accept) goes first. A
// sender that keeps opening connections, or keeps sending junk, so evicts
// its own before a router's.
//
// A TLS connection enters the table only after its handshake (tcp.go's
// runConn): until then it holds a handshake slot, handshakesPerSource per
// source address and MaxConns in all, for at most handshakeTimeout.

const (
	handshakeTimeout    = 5 * time.Second
	handshakesPerSource = 2
)

// tcpConn is one connection in the table.
type tcpConn struct {
	c         net.Conn
	src       netip.Addr
	accepted  time.Time    // a real clock, as the socket deadlines
	lastMsg   atomic.Int64 // unix nanos of the last complete message; 0: none yet
	delivered atomic.Bool  // a message of it was an event
	evicted   atomic.Bool
}

// idleSince returns when c last delivered a message, and whether it ever did.
func (c *tcpConn) idleSince() (time.Time, bool) {
	if n := c.lastMsg.Load(); n != 0 {
		return time.Unix(0, n), true
	}
	return c.accepted, false
}

// rank orders connections for eviction, lowest first: 0 never delivered
// a message, 1 delivered messages but no event, 2 delivered an event.
func (c *tcpConn) rank() int {
	switch {
	case c.delivered.Load():
		return 2
	case c.lastMsg.Load() != 0:
		return 1
	}
	return 0
}

// startHandshake takes a handshake slot for src, or reports that none is
// free.
func (s *Receiver) startHandshake(src netip.Addr) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.shaking[src] >= handshakesPerSource || s.shakingTotal >= s.maxConns {
		return false
	}
	s.shaking[src]++
	s.shakingTotal++
	return true
}

// endHandshake gives src's handshake slot back.
func (s *Receiver) endHandshake(src netip.Addr) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.shaking[src]--; s.shaking[src] <= 0 {
		delete(s.shaking, src)
	}
	s.shakingTotal--
}

// admit adds c to the table and returns the connections evicted to make
// room for it (already out of the table; the caller closes them).
func (s *Receiver) admit(c *tcpConn) []*tcpConn {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	var victims []*tcpConn
	if s.perSource > 0 && s.perSrc[c.src] >= s.perSource {
		if v := s.idlestLocked(func(o *tcpConn) bool { return o.src == c.src }); v != nil {
			s.removeLocked(v)
			victims = append(victims, v)
		}
	}
	if len(s.conns) >= s.maxConns {
		if v := s.idlestLocked(func(*tcpConn) bool { return true }); v != nil {
			s.removeLocked(v)
			victims = append(victims, v)
		}
	}
	s.conns[c] = struct{}{}
	s.perSrc[c.src]++
	for _, v := range victims {
		v.evicted.Store(true)
	}
	return victims
}

// idlestLocked returns the connection among those matching that goes
// first: the lowest rank, and within it the one idle longest.
func (s *Receiver) idlestLocked(match func(*tcpConn) bool) *tcpConn {
	var best *tcpConn
	var bestSince time.Time
	bestRank := 0
	for o := range s.conns {
		if !match(o) {
			continue
		}
		since, _ := o.idleSince()
		r := o.rank()
		if best == nil || r < bestRank || (r == bestRank && since.Before(bestSince)) {
			best, bestSince, bestRank = o, since, r
		}
	}
	return best
}

// remove takes c out of the table, if it is still there.
func (s *Receiver) remove(c *tcpConn) {
	s.connsMu.Lock()
	s.removeLocked(c)
	s.connsMu.Unlock()
}

func (s *Receiver) removeLocked(c *tcpConn) {
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.perSrc[c.src]--; s.perSrc[c.src] <= 0 {
		delete(s.perSrc, c.src)
	}
}

// openConns returns the number of connections in the table.
func (s *Receiver) openConns() int {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return len(s.conns)
}
