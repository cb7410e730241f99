package sockopt

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestRTTOnNonTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, _, ok := RTT(a); ok {
		t.Fatal("RTT on a pipe should be unknown")
	}
}

func TestPeerSeesServerGoodbye(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Peer reads TCP_INFO and SIOCINQ, Linux-only; elsewhere it reports unknown")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if closed, n, ok := Peer(c); !ok || closed || n != 0 {
		t.Fatalf("quiet open conn: closed=%v pending=%d ok=%v; want open, 0, known", closed, n, ok)
	}
	s.Write([]byte("NOTIFY"))
	waitFor(t, func() bool { _, n, _ := Peer(c); return n == 6 })
	if closed, _, _ := Peer(c); closed {
		t.Fatal("a message without a close reported as closed")
	}
	s.Write([]byte("FATAL"))
	s.Close()
	waitFor(t, func() bool { closed, _, _ := Peer(c); return closed })
	if _, n, _ := Peer(c); n != 11 {
		t.Fatalf("pending = %d after the goodbye; want 11 (nothing read)", n)
	}
	// A reset (the server's SO_LINGER 0 close) is closed too.
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s2 := <-accepted
	s2.(*net.TCPConn).SetLinger(0)
	s2.Close()
	waitFor(t, func() bool { closed, _, _ := Peer(c2); return closed })
	if closed, _, ok := Peer(&net.TCPConn{}); ok || closed {
		t.Fatal("a conn without a socket must be unknown")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, ok := Peer(a); ok {
		t.Fatal("Peer on a pipe should be unknown")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition not met within 1s")
}

// Peek sees what the server said first and leaves it for the reader; it
// gives up at its deadline when the server says nothing.
func TestPeekLeavesTheBytes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Peek is for unix sockets")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	defer s.Close()
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Write([]byte("hello"))
	}()
	buf := make([]byte, 3)
	if n, ok := Peek(c, buf, time.Now().Add(2*time.Second)); !ok || string(buf[:n]) != "hel" {
		t.Fatalf("Peek = %q, %v; want \"hel\"", buf[:n], ok)
	}
	all := make([]byte, 5)
	if _, err := io.ReadFull(c, all); err != nil || string(all) != "hello" {
		t.Fatalf("read after Peek = %q, %v; want every byte still there", all, err)
	}
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s2 := <-accepted
	defer s2.Close()
	start := time.Now()
	if _, ok := Peek(c2, buf, time.Now().Add(50*time.Millisecond)); ok {
		t.Fatal("Peek on a silent server reported data")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Peek on a silent server took %v; want its 50ms deadline", d)
	}
	c2.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c2.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a timed-out Peek: %v; want the conn usable (its own deadline)", err)
	}
}
