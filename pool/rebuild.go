package pool

import (
	"context"
	"database/sql"
)

// rebuild reopens, in the background, n connections after a reset whose
// cause is known (the tunnels came up, a dead path or dead flows were
// found), so the first requests after recovery find fresh connections
// instead of each paying a connect. It borrows n conns at once through
// database/sql (the retired ones are renewed in ResetSession, or new ones
// are made), readies each (a connect, no statement) and returns them to
// the idle list. n is at most what the pool held idle, so database/sql's
// idle limit is respected; nothing goes past the gate while it is blocked
// (Connect waits there); Close cancels it.
func (s *supervisor) rebuild(n int) {
	if n <= 0 || s.p.closed.Load() {
		return
	}
	p := s.p
	ctx, cancel := context.WithTimeout(s.ctx, p.cfg.ProbeTimeout)
	conns := make(chan *sql.Conn, n)
	done := make(chan struct{}, n)
	for range n {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { done <- struct{}{} }()
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
			_ = err // a conn that could not be renewed was dropped by database/sql (Raw returned ErrBadConn)
			conns <- c
		}()
	}
	// Hold every conn until all are made (so each borrow opens a new one
	// rather than taking back a rebuilt one), then return them together.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		for range n {
			<-done
		}
		close(conns)
		made := 0
		for c := range conns {
			c.Close()
			made++
		}
		p.stats.rebuilt.Add(uint64(made))
		p.log.Debug("flapguard: pool rebuilt", "conns", made)
	}()
}
