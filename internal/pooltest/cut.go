package pooltest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// CutProxy forwards loopback TCP to a target and, once armed, cuts the
// client's connection right after forwarding the client's next write: with
// an RST (SetLinger(0) + Close) or a FIN (Close). The server side is closed
// too. No timing decides where the cut lands, so a test gets the real error
// a driver returns for "the connection died after the request was sent".
type CutProxy struct {
	Addr   string
	target string
	mu     sync.Mutex // protects following fields
	armed  bool
	rst    bool
	cut    bool // a cut happened after forwarding a request
}

// CutDone reports whether a cut happened.
func (p *CutProxy) CutDone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// NewCutProxy starts a CutProxy to target; it stops at the test's end.
func NewCutProxy(t testing.TB, target string) *CutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{Addr: ln.Addr().String(), target: target}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range all {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cl, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				cl.Close()
				continue
			}
			mu.Lock()
			all = append(all, cl, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(cl, up); cl.Close() }()
			go func() { defer wg.Done(); p.pump(cl, up) }()
		}
	}()
	return p
}

// CutAfterNextRequest arms the proxy: the client's next write is forwarded,
// then its connection is cut (rst: with an RST, else a FIN).
func (p *CutProxy) CutAfterNextRequest(rst bool) {
	p.mu.Lock()
	p.armed, p.rst = true, rst
	p.mu.Unlock()
}

func (p *CutProxy) pump(cl, up net.Conn) {
	defer up.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := cl.Read(buf)
		if n > 0 {
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
			p.mu.Lock()
			armed, rst := p.armed, p.rst
			p.armed = false
			if armed {
				p.cut = true
			}
			p.mu.Unlock()
			if armed {
				if rst {
					cl.(*net.TCPConn).SetLinger(0)
				}
				cl.Close()
				return
			}
		}
		if err != nil {
			return
		}
	}
}
