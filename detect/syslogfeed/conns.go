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
// connection is admitted and the connection idle longest is closed to
// make room (evicted). Idle means "no complete message": connections that
// never delivered one go first (oldest first), then the one whose last
// message is oldest. A sender that keeps opening connections so evicts its
// own first, as long as it has only a few addresses.

// tcpConn is one connection in the table.
type tcpConn struct {
	c        net.Conn
	src      netip.Addr
	accepted time.Time    // a real clock, as the socket deadlines
	lastMsg  atomic.Int64 // unix nanos of the last complete message; 0: none yet
	evicted  atomic.Bool
}

// idleSince returns when c last delivered a message, and whether it ever did.
func (c *tcpConn) idleSince() (time.Time, bool) {
	if n := c.lastMsg.Load(); n != 0 {
		return time.Unix(0, n), true
	}
	return c.accepted, false
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

// idlestLocked returns the connection among those matching that has been
// idle longest: one that never delivered a message (oldest first), else
// the one whose last message is oldest.
func (s *Receiver) idlestLocked(match func(*tcpConn) bool) *tcpConn {
	var best *tcpConn
	var bestSince time.Time
	bestDelivered := true
	for o := range s.conns {
		if !match(o) {
			continue
		}
		since, delivered := o.idleSince()
		if best == nil || (!delivered && bestDelivered) ||
			(delivered == bestDelivered && since.Before(bestSince)) {
			best, bestSince, bestDelivered = o, since, delivered
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
