package pool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// gate holds back new connections while the path's tunnels are reported
// down. Only the supervisor blocks and releases it; Close stops it for
// good (open, and never blocked again).
type gate struct {
	blockedFlag atomic.Bool  // fast path for Connect
	onWait      func()       // called when a request starts waiting
	waiters     atomic.Int32 // requests waiting now

	mu      sync.Mutex    // protects following
	release chan struct{} // closed when the gate opens
	stopped bool
	// until: when each request waiting now must give up. database/sql
	// retries a connection attempt that failed with driver.ErrBadConn with
	// the same context (sql.go, DB.retry), so a request meets the gate up to
	// three times; it waits DownWait in all, not each time. Cleared when the
	// gate opens.
	until map[context.Context]time.Time
}

func (g *gate) blocked() bool { return g.blockedFlag.Load() }

// block holds back new connections; it reports whether the gate was open.
func (g *gate) block() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || g.blockedFlag.Load() {
		return false
	}
	g.release = make(chan struct{})
	g.blockedFlag.Store(true)
	return true
}

// open releases every waiter; it reports whether the gate was blocked.
func (g *gate) open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.openLocked()
}

func (g *gate) openLocked() bool {
	if !g.blockedFlag.Load() {
		return false
	}
	g.blockedFlag.Store(false)
	close(g.release)
	clear(g.until)
	return true
}

// stop opens the gate for good (the pool is closing).
func (g *gate) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	g.openLocked()
}

// wait returns nil when the gate is open, or waits for it up to max in all
// for ctx (a negative max fails at once) or the context's end, then fails
// with an error that matches ErrTunnelDown (and the context's error when
// that ended the wait). A request that starts waiting asks the supervisor
// to check the path now.
func (g *gate) wait(ctx context.Context, max time.Duration) error {
	if !g.blockedFlag.Load() {
		return nil
	}
	g.mu.Lock()
	ch := g.release
	blocked := g.blockedFlag.Load()
	var until time.Time
	if blocked && max >= 0 {
		if g.until == nil {
			g.until = make(map[context.Context]time.Time)
		}
		var ok bool
		if until, ok = g.until[ctx]; !ok {
			until = time.Now().Add(max)
			g.until[ctx] = until
		}
	}
	g.mu.Unlock()
	if !blocked {
		return nil
	}
	if max < 0 {
		return fmt.Errorf("%w (failing fast)", ErrTunnelDown)
	}
	left := time.Until(until)
	if left <= 0 {
		return fmt.Errorf("%w: still down after waiting %v", ErrTunnelDown, max)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrTunnelDown, err)
	}
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	if g.onWait != nil {
		g.onWait()
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: still down after waiting %v", ErrTunnelDown, max)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrTunnelDown, ctx.Err())
	}
}
