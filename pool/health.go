package pool

import (
	"fmt"
	"sync"
)

// Health is the pool's judgement of the path to the server. Only the
// supervisor changes it (supervisor.go); Stats and String read a copy.
type Health int32

const (
	// Healthy: operations succeed.
	Healthy Health = iota
	// Suspect: a connection was lost or missed its liveness ping; a check
	// of the path and the connections runs.
	Suspect
	// Unreachable: a check found the path down (a fresh connection failed
	// and nothing else answered). The gate is shut and the idle
	// connections were retired; requests in flight keep their deadlines.
	Unreachable
	// Recovering: the path answers again, or every connection checked was
	// dead and the pool was reset; it waits for the first success.
	Recovering
)

func (h Health) String() string {
	switch h {
	case Healthy:
		return "healthy"
	case Suspect:
		return "suspect"
	case Unreachable:
		return "unreachable"
	case Recovering:
		return "recovering"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// evidence collects, from the goroutines that use connections, which
// conns failed since the supervisor last looked.
type evidence struct {
	mu    sync.Mutex // protects conns
	conns map[*conn]struct{}
}

func (e *evidence) add(c *conn) {
	e.mu.Lock()
	if e.conns == nil {
		e.conns = make(map[*conn]struct{})
	}
	if c != nil {
		e.conns[c] = struct{}{}
	} else {
		e.conns[&conn{}] = struct{}{} // evidence without a conn of ours
	}
	e.mu.Unlock()
}

// take returns how many distinct conns failed since the last call.
func (e *evidence) take() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.conns)
	clear(e.conns)
	return n
}

// connLost is called when an operation failed with a lost connection.
//
// A conn of a generation already retired is not evidence: the pool has
// acted on its path already, and most often closed its socket itself (a
// sever, or the cut at a storm's end); counting those would reset the
// fresh generation for nothing.
func (p *Pool) connLost(c *conn, err error) {
	p.stats.connsLost.Add(1)
	gen := c.l().gen
	p.emit(Event{Kind: EventConnLost, Err: err, Generation: gen})
	if gen < p.gen.Load() {
		return
	}
	p.suspectConn(c)
}

// livenessFailed is called when a borrowed conn missed its liveness ping.
func (p *Pool) livenessFailed(c *conn, d fmt.Stringer, err error) {
	p.emit(Event{Kind: EventLivenessFailed, Err: err, Generation: c.l().gen, Reason: "no answer within " + d.String()})
	p.suspectConn(c)
}

// suspectConn records evidence against the path and wakes the supervisor,
// which decides what it means.
func (p *Pool) suspectConn(c *conn) {
	p.evidence.add(c)
	p.sup.kick()
}
