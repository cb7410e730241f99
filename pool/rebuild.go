package pool

import (
	"context"
	"database/sql/driver"
	"sync"
	"sync/atomic"
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
	// retired one, renewed in ResetSession, or a new one); each is
	// returned as soon as it is ready, so a request that arrives meanwhile
	// waits for one connect at most. When connects are faster than
	// goroutines start, a borrow can get a conn another borrow of this
	// rebuild has already readied and returned: it is given back at once
	// and not counted (borrowing again while holding it would keep conns
	// from requests when MaxOpenConns is reached; the lab showed it).
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
			if err == nil && !again {
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
