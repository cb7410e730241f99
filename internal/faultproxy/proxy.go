package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the proxy's current treatment of traffic.
type Mode int

const (
	// Pass forwards traffic normally.
	Pass Mode = iota
	// Drop discards every byte read on every flow; new flows never reach the
	// target.
	Drop
	// Stall stops reading on every flow; bytes wait in socket buffers and are
	// delivered once the mode returns to Pass. New flows wait too.
	Stall
)

// String returns "pass", "drop" or "stall".
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Drop:
		return "drop"
	case Stall:
		return "stall"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ErrClosed is returned by operations on a closed Proxy.
var ErrClosed = errors.New("faultproxy: proxy closed")

// DefaultDialTimeout bounds the proxy's dial to the target.
const DefaultDialTimeout = 5 * time.Second

// modeState is swapped whole on every mode change. When it is replaced, next
// is set and then changed is closed, so a flow waiting in Stall can walk
// every mode it slept through (a Stall→Drop→Pass must still lose the bytes
// held during the Stall).
type modeState struct {
	mode    Mode
	changed chan struct{}
	next    *modeState // set before changed is closed
}

// Proxy is a fault-injecting TCP proxy to one target. All methods are safe
// for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	dialer net.Dialer

	ctx    context.Context // cancelled by Close: aborts dials and Stall waits
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy started

	state atomic.Pointer[modeState]

	accepted atomic.Int64
	resets   atomic.Int64

	mu     sync.Mutex // protects following fields
	flows  map[*flow]struct{}
	nextID uint64
	closed bool
}

// New starts a proxy on 127.0.0.1 with a free port, forwarding to target
// ("host:port"). The proxy starts in Pass mode.
func New(target string) (*Proxy, error) {
	return Listen("127.0.0.1:0", target)
}

// Listen starts a proxy on addr forwarding to target. The target is not
// dialled until a client connects.
func Listen(addr, target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("faultproxy: bad target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:     ln,
		target: target,
		dialer: net.Dialer{Timeout: DefaultDialTimeout},
		ctx:    ctx,
		cancel: cancel,
		flows:  make(map[*flow]struct{}),
	}
	p.state.Store(&modeState{mode: Pass, changed: make(chan struct{})})
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address clients should dial ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode { return p.state.Load().mode }

// Pass restores normal forwarding. Blackholed flows stay dead.
func (p *Proxy) Pass() { p.setMode(Pass) }

// Drop discards all traffic both ways on every flow until the next Pass.
// See the package doc for how this differs from a real dead tunnel.
func (p *Proxy) Drop() { p.setMode(Drop) }

// Stall stops forwarding without losing bytes until the next Pass.
func (p *Proxy) Stall() { p.setMode(Stall) }

func (p *Proxy) setMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.state.Load()
	if old.mode == m {
		return
	}
	st := &modeState{mode: m, changed: make(chan struct{})}
	old.next = st
	p.state.Store(st)
	close(old.changed)
}

// RekeyBlackhole silently blackholes every flow that exists now, forever:
// bytes from either side are discarded and closes are not passed on. Flows
// accepted afterwards are unaffected. It returns how many flows it hit.
func (p *Proxy) RekeyBlackhole() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for f := range p.flows {
		f.blackholed.Store(true)
	}
	return len(p.flows)
}

// ResetAll closes every existing flow with a TCP RST on both sides (linger
// 0). It returns how many flows it reset.
func (p *Proxy) ResetAll() int {
	p.mu.Lock()
	fs := make([]*flow, 0, len(p.flows))
	for f := range p.flows {
		fs = append(fs, f)
	}
	p.mu.Unlock()
	for _, f := range fs {
		f.abort(true)
	}
	p.resets.Add(int64(len(fs)))
	return len(fs)
}

// Flows returns the number of open flows.
func (p *Proxy) Flows() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.flows)
}

// FlowStats describes one open flow.
type FlowStats struct {
	ID         uint64
	Client     string    // the client's address as the proxy sees it
	Opened     time.Time // when the proxy accepted it
	Connected  bool      // the proxy has a connection to the target
	Blackholed bool      // hit by RekeyBlackhole, or accepted during Drop
	BytesUp    int64     // client → target, forwarded
	BytesDown  int64     // target → client, forwarded
	Dropped    int64     // bytes read and discarded, both directions
}

// FlowStats returns a snapshot of every open flow, in accept order.
func (p *Proxy) FlowStats() []FlowStats {
	p.mu.Lock()
	out := make([]FlowStats, 0, len(p.flows))
	for f := range p.flows {
		out = append(out, f.stats())
	}
	p.mu.Unlock()
	sortByID(out)
	return out
}

// Stats are totals over the proxy's lifetime.
type Stats struct {
	Mode     Mode
	Accepted int64 // connections accepted
	Open     int   // flows open now
	Resets   int64 // flows reset by ResetAll
}

// Stats returns lifetime totals.
func (p *Proxy) Stats() Stats {
	return Stats{Mode: p.Mode(), Accepted: p.accepted.Load(), Open: p.Flows(), Resets: p.resets.Load()}
}

// Close stops accepting, closes every flow (an ordinary close, not a reset)
// and waits for every goroutine the proxy started. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	fs := make([]*flow, 0, len(p.flows))
	for f := range p.flows {
		fs = append(fs, f)
	}
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	for _, f := range fs {
		f.abort(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient error (EMFILE...): back off as net/http does.
			select {
			case <-time.After(10 * time.Millisecond):
				continue
			case <-p.ctx.Done():
				return
			}
		}
		p.accepted.Add(1)
		f := p.addFlow(c)
		if f == nil {
			_ = c.Close()
			return
		}
		p.wg.Add(1)
		go p.serve(f)
	}
}

// addFlow registers a new flow; nil if the proxy is closing. A flow accepted
// while the tunnel is down starts blackholed: its SYN "never arrived".
func (p *Proxy) addFlow(c net.Conn) *flow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.nextID++
	f := newFlow(p, p.nextID, c, p.state.Load())
	if f.born.mode == Drop {
		f.blackholed.Store(true)
	}
	p.flows[f] = struct{}{}
	return f
}

func (p *Proxy) removeFlow(f *flow) {
	p.mu.Lock()
	delete(p.flows, f)
	p.mu.Unlock()
}
