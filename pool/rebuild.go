package pool

import (
	"context"
	"sync"
	"sync/atomic"
)

// rebuild reopens, in the background, n connections after a reset whose
// cause is known (the tunnels came up, a dead path or dead flows were
// found), so the first requests after recovery find fresh connections
// instead of each paying a connect. It borrows n conns at once through
// database/sql (the retired ones are renewed in ResetSession, or new ones
// are made), readies each (a connect, no statement) and returns them to
// the idle list. n is at most what the pool held idle, so database/sql's
// idle limit is respected; nothing goes past the gate while it is blocked
// (Connect waits there) unless pastGate; Close cancels it.
//
// pastGate is for the rebuild that starts with the check after the
// tunnels came up (goUp): its connects are checks of the path as much as
// the canary is, so they do not wait for it, and the pool is full again
// by the time traffic returns. Requests still wait at the gate until a
// connection has succeeded.
func (s *supervisor) rebuild(n int, pastGate bool) {
	if n <= 0 || s.p.closed.Load() {
		return
	}
	p := s.p
	ctx, cancel := context.WithTimeout(s.ctx, p.cfg.ProbeTimeout)
	if pastGate {
		ctx = context.WithValue(ctx, pastGateKey{}, true)
	}
	var wg sync.WaitGroup
	var made atomic.Int64
	// All n borrows start at once, so each takes a conn of its own (a
	// retired one, renewed in ResetSession, or a new one) before any is
	// returned; each is returned as soon as it is ready, so a request that
	// arrives meanwhile waits for one connect at most.
	for range n {
		wg.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer wg.Done()
			c, err := p.db.Conn(ctx)
			if err != nil {
				return
			}
			err = c.Raw(func(dc any) error {
				if fc, ok := dc.(*conn); ok {
					return fc.enter(ctx)
				}
				return nil
			})
			if err == nil {
				made.Add(1)
			}
			c.Close() // a conn that could not be renewed was dropped by database/sql (Raw returned ErrBadConn)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		wg.Wait()
		p.stats.rebuilt.Add(uint64(made.Load()))
		p.log.Debug("flapguard: pool rebuilt", "conns", made.Load())
	}()
}
