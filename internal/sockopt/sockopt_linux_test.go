//go:build linux

package sockopt

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUserTimeoutAndRTTOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 16)
		n, _ := c.Read(buf)
		c.Write(buf[:n])
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := SetUserTimeout(raw, 7*time.Second); err != nil {
		t.Fatal(err)
	}
	var got int
	raw.Control(func(fd uintptr) {
		got, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	})
	if err != nil || got != 7000 {
		t.Fatalf("TCP_USER_TIMEOUT = %d, %v; want 7000", got, err)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	rtt, rttvar, rto, ok := RTT(c)
	if !ok || rtt <= 0 || rtt > time.Second || rto < 200*time.Millisecond {
		t.Fatalf("RTT = %v ±%v ok=%v; want a positive loopback RTT", rtt, rttvar, ok)
	}
	t.Logf("loopback RTT %v ±%v, RTO %v", rtt, rttvar, rto)
	if loss, ok := Loss(c); !ok || loss != 0 {
		t.Fatalf("Loss on loopback = %v ok=%v; want 0, known", loss, ok)
	}
}
