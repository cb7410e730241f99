package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const bufSize = 32 << 10

// flow is one accepted client connection and, unless it was blackholed
// before it could dial, its connection to the target.
type flow struct {
	p      *Proxy
	id     uint64
	client net.Conn
	opened time.Time
	born   *modeState // the mode when the flow was accepted

	ctx    context.Context // cancelled by abort and by Proxy.Close
	cancel context.CancelFunc

	blackholed atomic.Bool
	up, down   atomic.Int64
	dropped    atomic.Int64

	mu      sync.Mutex // protects following fields
	server  net.Conn
	aborted bool
}

func newFlow(p *Proxy, id uint64, c net.Conn, born *modeState) *flow {
	ctx, cancel := context.WithCancel(p.ctx)
	return &flow{p: p, id: id, client: c, opened: time.Now(), born: born, ctx: ctx, cancel: cancel}
}

func (f *flow) stats() FlowStats {
	f.mu.Lock()
	connected := f.server != nil
	f.mu.Unlock()
	return FlowStats{
		ID:         f.id,
		Client:     f.client.RemoteAddr().String(),
		Opened:     f.opened,
		Connected:  connected,
		Blackholed: f.blackholed.Load(),
		BytesUp:    f.up.Load(),
		BytesDown:  f.down.Load(),
		Dropped:    f.dropped.Load(),
	}
}

func sortByID(s []FlowStats) {
	slices.SortFunc(s, func(a, b FlowStats) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}

// serve runs the flow to its end: dial the target (unless the flow was born
// dead), then copy both ways.
func (p *Proxy) serve(f *flow) {
	defer p.wg.Done()
	defer p.removeFlow(f)
	defer f.abort(false)

	// A new flow waits out a Stall like its SYN would; if the tunnel turns
	// to Drop meanwhile, the SYN is lost.
	sawDrop, ok := f.waitWhileStalled(f.born)
	if !ok {
		return
	}
	if sawDrop {
		f.blackholed.Store(true)
	}
	var srv net.Conn
	if !f.blackholed.Load() {
		c, err := p.dialer.DialContext(f.ctx, "tcp", p.target)
		if err != nil {
			// The target refused or is unreachable: the client sees its
			// connection reset, as with a refused connect.
			f.abort(true)
			return
		}
		if !f.setServer(c) {
			return
		}
		srv = c
	}

	var wg sync.WaitGroup
	if srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.pipe(srv, f.client, &f.down)
		}()
	}
	f.pipe(f.client, srv, &f.up)
	wg.Wait()
}

// setServer records the target connection; false (and c closed) if the flow
// was aborted while dialling.
func (f *flow) setServer(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted {
		setLinger0(c)
		_ = c.Close()
		return false
	}
	f.server = c
	return true
}

// abort closes both connections, with an RST if rst is set. Idempotent; the
// first call decides how the flow ends.
func (f *flow) abort(rst bool) {
	f.mu.Lock()
	if f.aborted {
		f.mu.Unlock()
		return
	}
	f.aborted = true
	srv := f.server
	f.mu.Unlock()
	f.cancel()
	for _, c := range []net.Conn{f.client, srv} {
		if c == nil {
			continue
		}
		if rst {
			setLinger0(c)
		}
		_ = c.Close()
	}
}

func setLinger0(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// dead reports whether bytes must be discarded right now.
func (f *flow) dead(m Mode) bool { return f.blackholed.Load() || m == Drop }

// waitWhileStalled blocks, starting from mode state st, while the proxy is
// in Stall (and the flow is not blackholed, which makes Stall irrelevant).
// sawDrop reports whether st or any mode walked through was Drop; ok is
// false if the flow was aborted.
func (f *flow) waitWhileStalled(st *modeState) (sawDrop, ok bool) {
	for {
		if st.mode == Drop {
			sawDrop = true
		}
		if st.mode != Stall || f.blackholed.Load() {
			return sawDrop, true
		}
		select {
		case <-st.changed:
			st = st.next
		case <-f.ctx.Done():
			return sawDrop, false
		}
	}
}

// pipe copies src to dst (dst nil: discard) until src ends or the flow is
// aborted, applying the proxy's mode to every chunk.
func (f *flow) pipe(src, dst net.Conn, forwarded *atomic.Int64) {
	buf := make([]byte, bufSize)
	for {
		// In Stall, do not even read: bytes stay in the kernel and the
		// sender's window fills, as behind a stalled path.
		if _, ok := f.waitWhileStalled(f.p.state.Load()); !ok {
			return
		}
		n, err := src.Read(buf)
		if n > 0 && !f.deliver(dst, buf[:n], forwarded) {
			return
		}
		if err != nil {
			f.ended(err)
			return
		}
	}
}

// deliver forwards b, discards it, or holds it through a Stall. False if the
// flow is over.
func (f *flow) deliver(dst net.Conn, b []byte, forwarded *atomic.Int64) bool {
	sawDrop, ok := f.waitWhileStalled(f.p.state.Load())
	if !ok {
		return false
	}
	if dst == nil || sawDrop || f.dead(f.p.Mode()) {
		f.dropped.Add(int64(len(b)))
		return true
	}
	if _, err := dst.Write(b); err != nil {
		// dst is gone; the pipe reading dst reports how (EOF or reset).
		// Stop here so we do not read more from src than we can deliver.
		f.ended(err)
		return false
	}
	forwarded.Add(int64(len(b)))
	return true
}

// ended handles the end of one direction. On a live flow the end is passed
// on: EOF as an ordinary close, anything else as a reset. On a dead flow it
// is lost, as a FIN or RST would be in a dead tunnel, and the flow stays
// dead: the other direction keeps discarding until its own side closes.
func (f *flow) ended(err error) {
	if f.ctx.Err() != nil {
		return // aborted: we closed the sockets ourselves
	}
	if f.dead(f.p.Mode()) {
		f.blackholed.Store(true)
		return
	}
	f.abort(!errors.Is(err, io.EOF))
}
