package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flapguard/flapguard/internal/waitfor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// silence is how long a read must stay empty for "nothing arrives".
const silence = 300 * time.Millisecond

// echoServer is a real TCP echo server on loopback. It records how each
// connection ended.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	ends  chan error // one per connection: nil for EOF, else the read error
	mu    sync.Mutex
	conns []net.Conn
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, ends: make(chan error, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_, err := io.Copy(c, c)
				select {
				case s.ends <- err:
				default: // only the first ends matter to the tests
				}
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// closeConns closes every server-side connection (an ordinary FIN).
func (s *echoServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *echoServer) close() {
	_ = s.ln.Close()
	s.closeConns()
	s.wg.Wait()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echo writes msg and expects it back within 2 s.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := tryEcho(c, msg, 2*time.Second); err != nil {
		t.Fatalf("echo %q: %v", msg, err)
	}
}

func tryEcho(c net.Conn, msg string, wait time.Duration) error {
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	return readExactly(c, msg, wait)
}

func readExactly(c net.Conn, msg string, wait time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, []byte(msg)) {
		return fmt.Errorf("got %q, want %q", got, msg)
	}
	return nil
}

// expectSilence writes msg (if any) and asserts that nothing comes back and
// the connection is not closed for `silence`.
func expectSilence(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if msg != "" {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("write: %v (a blackhole accepts writes)", err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(silence))
	defer c.SetReadDeadline(time.Time{})
	n, err := c.Read(make([]byte, 64))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %d bytes, %v; want a timeout (silence)", n, err)
	}
}

func waitFlows(t *testing.T, p *Proxy, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for p.Flows() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Flows() = %d, want %d", p.Flows(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPassEchoesAndCounts(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	echo(t, c, "hello")
	echo(t, c, "world!")
	if p.Flows() != 1 {
		t.Fatalf("Flows() = %d, want 1", p.Flows())
	}
	fs := p.FlowStats()
	if len(fs) != 1 || !fs[0].Connected || fs[0].Blackholed {
		t.Fatalf("FlowStats = %+v", fs)
	}
	// The echo can reach the client before the proxy has counted the bytes
	// it forwarded upstream (it counts after its write returns).
	waitfor.True(t, "11 bytes counted each way", 2*time.Second, func() bool {
		fs = p.FlowStats()
		return len(fs) == 1 && fs[0].BytesUp == 11 && fs[0].BytesDown == 11
	})
	if fs[0].Dropped != 0 {
		t.Fatalf("counters = %+v, want 0 dropped", fs[0])
	}
	_ = c.Close()
	waitFlows(t, p, 0)
	if st := p.Stats(); st.Accepted != 1 || st.Mode != Pass {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestDropSilencesOldAndNewFlows(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.addr())
	old := dial(t, p.Addr())
	echo(t, old, "before")

	p.Drop()
	expectSilence(t, old, "during")
	born := dial(t, p.Addr()) // the dial succeeds: the proxy accepts it
	expectSilence(t, born, "syn")
	waitFlows(t, p, 2)
	for _, f := range p.FlowStats() {
		if f.Dropped == 0 {
			t.Errorf("flow %d dropped nothing: %+v", f.ID, f)
		}
	}

	p.Pass()
	// The old flow's stream lost "during" (see package doc): the next echo
	// gets back only what was forwarded after Pass.
	echo(t, old, "after")
	// A flow born during Drop never reached the server and stays dead.
	expectSilence(t, born, "again")
	fresh := dial(t, p.Addr())
	echo(t, fresh, "fresh")
}

func TestRekeyBlackholeKillsOnlyExistingFlows(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.addr())
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	echo(t, a, "a1")
	echo(t, b, "b1")

	if n := p.RekeyBlackhole(); n != 2 {
		t.Fatalf("RekeyBlackhole hit %d flows, want 2", n)
	}
	expectSilence(t, a, "a2")
	fresh := dial(t, p.Addr())
	echo(t, fresh, "new flows work")

	p.Drop()
	p.Pass()
	expectSilence(t, b, "b2") // still dead after Pass
	echo(t, fresh, "still fine")

	// The server closing a blackholed flow is not passed on either.
	s.closeConns()
	expectSilence(t, a, "")
	// ... but on the fresh, live flow it is.
	_ = fresh.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := fresh.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("live flow after server close: %v, want EOF", err)
	}
}

func TestResetAllSendsRSTBothWays(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	echo(t, c, "x")
	if n := p.ResetAll(); n != 1 {
		t.Fatalf("ResetAll = %d, want 1", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after ResetAll: %v, want ECONNRESET", err)
	}
	select {
	case err := <-s.ends:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server saw %v, want ECONNRESET", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("server never saw the reset")
	}
	waitFlows(t, p, 0)
	if p.Stats().Resets != 1 {
		t.Fatalf("Stats.Resets = %d", p.Stats().Resets)
	}
	echo(t, dial(t, p.Addr()), "new flows work")
}

func TestStallDelaysWithoutLoss(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	echo(t, c, "warm")

	p.Stall()
	expectSilence(t, c, "held")
	born := dial(t, p.Addr())
	expectSilence(t, born, "queued")
	p.Pass()
	if err := readExactly(c, "held", 2*time.Second); err != nil {
		t.Fatalf("stalled bytes after Pass: %v", err)
	}
	if err := readExactly(born, "queued", 2*time.Second); err != nil {
		t.Fatalf("flow born in Stall after Pass: %v", err)
	}
}

func TestStallThenDropLosesNewFlow(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.addr())
	p.Stall()
	born := dial(t, p.Addr())
	waitFlows(t, p, 1)
	p.Drop()
	p.Pass()
	expectSilence(t, born, "lost")
	if fs := p.FlowStats(); len(fs) != 1 || !fs[0].Blackholed || fs[0].Connected {
		t.Fatalf("FlowStats = %+v, want one blackholed unconnected flow", fs)
	}
}

func TestUnreachableTargetResetsClient(t *testing.T) {
	// A port with nothing listening: take one and free it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	_ = ln.Close()

	p := newProxy(t, target)
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err == nil {
		// The RST usually comes after the client's dial returned; if it
		// is quick enough, the dial itself reports it.
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read through proxy to a closed port: %v, want ECONNRESET", err)
	}
}

func TestBadTarget(t *testing.T) {
	for _, target := range []string{"", "nocolon", "127.0.0.1"} {
		if p, err := New(target); err == nil {
			_ = p.Close()
			t.Errorf("New(%q) succeeded", target)
		}
	}
	if _, err := Listen("256.0.0.1:0", "127.0.0.1:1"); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
}

// TestCloseStopsEverything leaves flows in every state (live, dropped,
// blackholed, stalled mid-dial) and checks Close returns and leaks nothing
// (goleak in TestMain).
func TestCloseStopsEverything(t *testing.T) {
	s := newEchoServer(t)
	p, err := New(s.addr())
	if err != nil {
		t.Fatal(err)
	}
	live := dial(t, p.Addr())
	echo(t, live, "x")
	p.RekeyBlackhole()
	echo(t, dial(t, p.Addr()), "y")
	p.Drop()
	dial(t, p.Addr())
	p.Stall()
	dial(t, p.Addr())
	waitFlows(t, p, 4)

	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if p.Flows() != 0 {
		t.Fatalf("Flows after Close = %d", p.Flows())
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("proxy still accepting after Close")
	}
	// Calls after Close must not panic.
	p.Pass()
	p.RekeyBlackhole()
	p.ResetAll()
}

// TestConcurrentModeChanges runs echo clients while another goroutine flips
// modes; under -race this checks the mode and flow bookkeeping. Clients may
// fail (that is the point of the faults); the proxy must not deadlock, and
// after Pass new flows must work.
func TestConcurrentModeChanges(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.addr())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
				if err != nil {
					continue
				}
				_ = tryEcho(c, fmt.Sprintf("w%d-%d", i, j), 20*time.Millisecond)
				_ = c.Close()
			}
		}()
	}
	flips := []func(){p.Drop, p.Pass, p.Stall, p.Pass, func() { p.RekeyBlackhole() }, func() { p.ResetAll() }}
	for i := range 300 {
		flips[i%len(flips)]()
		_ = p.FlowStats()
		_ = p.Stats()
		time.Sleep(time.Millisecond) // let clients run in each mode
	}
	close(stop)
	wg.Wait()
	if n := p.Stats().Accepted; n < 10 {
		t.Fatalf("only %d connections accepted: the storm exercised nothing", n)
	}
	p.Pass()
	echo(t, dial(t, p.Addr()), "after the storm")
}
