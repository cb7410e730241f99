//go:build linux

package soak

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/flapguard/flapguard/internal/lab"
)

// sockets remembers every TCP socket the pool dialed, so that the server's
// sessions can be matched with the client sockets still open: a session
// whose client socket is closed is an orphan. It does not wrap the conns
// (drivers type-assert *net.TCPConn: go-sql-driver/mysql connector.go).
type sockets struct {
	dial lab.DialFunc

	mu     sync.Mutex // protects conns, dialed and ports
	conns  []*net.TCPConn
	dialed []time.Time       // when each successful dial returned
	ports  map[int]time.Time // local port -> when it was dialed (the last time)
	closed map[int]time.Time // local port -> when open() first saw it closed
}

func (s *sockets) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := s.dial(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		s.mu.Lock()
		s.conns = append(s.conns, tc)
		now := time.Now()
		s.dialed = append(s.dialed, now)
		if s.ports == nil {
			s.ports = make(map[int]time.Time)
		}
		if a, ok := tc.LocalAddr().(*net.TCPAddr); ok {
			s.ports[a.Port] = now
		}
		s.mu.Unlock()
	}
	return c, err
}

// open returns the local ports of the sockets that are still open, and
// forgets the closed ones. A closed socket refuses RawConn.Control
// (internal/poll's incref fails once Close began).
func (s *sockets) open() map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ports := make(map[int]bool)
	live := s.conns[:0]
	for _, c := range s.conns {
		rc, err := c.SyscallConn()
		if err != nil || rc.Control(func(uintptr) {}) != nil {
			if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
				if s.closed == nil {
					s.closed = make(map[int]time.Time)
				}
				s.closed[a.Port] = time.Now()
			}
			continue
		}
		live = append(live, c)
		if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
			ports[a.Port] = true
		}
	}
	clear(s.conns[len(live):])
	s.conns = live
	return ports
}

// dialedAt reports when the socket with local port was dialed and, if
// watch saw it closed, about when (within watchEvery).
func (s *sockets) dialedAt(port int) (dialed, closed time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ports[port], s.closed[port]
}

// watchEvery is how often watch looks for closed sockets.
const watchEvery = 100 * time.Millisecond

// watch notes when sockets close until stop is closed, so that a report
// can say when an orphan's client socket went away.
func (s *sockets) watch(stop <-chan struct{}) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.open()
		}
	}
}

// dialedBetween counts the dials that succeeded in (from, to).
func (s *sockets) dialedBetween(from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.dialed {
		if t.After(from) && t.Before(to) {
			n++
		}
	}
	return n
}
