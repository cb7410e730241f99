package pool

import (
	"context"
	"database/sql/driver"
	"sync"
	"sync/atomic"
	"time"
)

// rebuild reopens, in the background, n connections after a reset whose
// cause a check found (a dead path that answers again, dead flows), so the
// first requests after recovery find fresh connections instead of each
// paying a connect. It borrows n conns at once through database/sql (the
// retired ones are renewed in ResetSession, or new ones are made), readies
// each (a connect, no statement) and returns them to the idle list. A
// driver with Driver.Warm readies each for its first statements before
// returning it, until a request needs a conn. n is at most what the pool
// held idle, so database/sql's idle limit is respected; nothing goes past
// the gate while it is shut (Connect waits there); Close cancels it.
func (s *supervisor) rebuild(n int) {
	if n <= 0 || s.p.closed.Load() {
		return
	}
	p := s.p
	ctx, cancel := context.WithTimeout(s.ctx, p.cfg.ProbeTimeout)
	ctx = context.WithValue(ctx, rebuildKey{}, false)
	// A request that finds no conn ready connects (passGate counts it) or,
	// at MaxOpenConns, waits: either ends the warm-up of the conns held.
	demand, waits := p.demand.Load(), p.db.Stats().WaitCount
	more := func() bool {
		return ctx.Err() == nil && p.demand.Load() == demand && p.db.Stats().WaitCount == waits
	}
	var wg sync.WaitGroup
	var made atomic.Int64
	var readied sync.Map // *conn: readied by this rebuild
	// All n borrows start at once, so each takes a conn of its own (a
	// retired one, renewed in ResetSession, or a new one). A conn readied
	// is held until every borrow has ended, so that the others cannot get
	// it back from the idle list instead of a conn of their own — renewing
	// from a check's spare is instant, faster than goroutines start (the
	// lab showed 1 of 8 conns rebuilt, the rest renewed by requests, and
	// connected anew when they came later than the spares' LivenessIdle)
	// — unless a request needs a conn (more): then each is returned as
	// soon as it is ready, and a request waits for one connect at most.
	// A borrow that still gets a conn this rebuild readied gives it back
	// at once and is not counted.
	left := atomic.Int64{}
	left.Store(int64(n))
	all := make(chan struct{})
	ended := func() {
		if left.Add(-1) == 0 {
			close(all)
		}
	}
	for range n {
		wg.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer wg.Done()
			c, err := p.db.Conn(ctx)
			if err != nil {
				ended()
				return
			}
			again := false
			err = c.Raw(func(dc any) error {
				fc, ok := dc.(*conn)
				if !ok {
					return nil
				}
				if _, again = readied.LoadOrStore(fc, true); again {
					return nil
				}
				if err := fc.enter(ctx); err != nil {
					return err
				}
				return p.warm(ctx, fc, more)
			})
			ended()
			if err == nil && !again {
				made.Add(1)
				hold(ctx, all, more)
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

// hold waits until all is closed, ctx ends or a request needs a conn.
func hold(ctx context.Context, all <-chan struct{}, more func() bool) {
	t := time.NewTicker(holdPoll)
	defer t.Stop()
	for more() {
		select {
		case <-all:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// holdPoll: how often a conn the rebuild holds looks for a request that
// needs one (database/sql's WaitCount has no signal).
const holdPoll = 2 * time.Millisecond

// warm runs the driver's Warm on a conn the rebuild holds (Driver.Warm). A
// conn the warm-up found unusable is dropped.
func (p *Pool) warm(ctx context.Context, c *conn, more func() bool) error {
	if p.drv.Warm == nil || !more() {
		return nil
	}
	l := c.l()
	if err := p.drv.Warm(ctx, l.inner, more); err != nil {
		l.bad.Store(true)
		p.log.Debug("flapguard: a rebuilt conn failed its warm-up; dropped", "err", p.redact(err.Error()))
		return driver.ErrBadConn
	}
	return nil
}
