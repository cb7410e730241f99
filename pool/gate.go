package pool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// gate holds back new connections while a tunnel is reported down.
type gate struct {
	downFlag atomic.Bool // fast path for Connect

	mu      sync.Mutex // protects following
	down    map[string]bool
	release chan struct{} // closed when the gate opens
	closed  bool
}

func (g *gate) isDown() bool { return g.downFlag.Load() }

// close marks tunnel down; it reports whether the gate was open before.
func (g *gate) close(tunnel string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	wasOpen := len(g.down) == 0
	if g.down == nil {
		g.down = make(map[string]bool)
	}
	g.down[tunnel] = true
	if wasOpen {
		g.release = make(chan struct{})
		g.downFlag.Store(true)
	}
	return wasOpen
}

// up clears tunnel (AllTunnels clears all); it reports whether no tunnel
// is down any more.
func (g *gate) up(tunnel string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if tunnel == detect.AllTunnels {
		clear(g.down)
	} else {
		delete(g.down, tunnel)
		delete(g.down, detect.AllTunnels) // an Up for a named tunnel answers a Down for all
	}
	return len(g.down) == 0
}

// open releases waiters, whatever is marked down.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.down)
	if g.downFlag.Load() {
		g.downFlag.Store(false)
		close(g.release)
	}
}

// shut opens the gate for good (the pool is closing).
func (g *gate) shut() {
	g.open()
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// wait returns nil when the gate is open, or waits for it up to max (a
// negative max fails at once) or the context's end, then fails with
// ErrTunnelDown.
func (g *gate) wait(ctx context.Context, max time.Duration) error {
	if !g.downFlag.Load() {
		return nil
	}
	g.mu.Lock()
	ch := g.release
	down := g.downFlag.Load()
	g.mu.Unlock()
	if !down {
		return nil
	}
	if max < 0 {
		return fmt.Errorf("%w (failing fast)", ErrTunnelDown)
	}
	t := time.NewTimer(max)
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
