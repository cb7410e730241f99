//go:build !linux

package sockopt

import (
	"net"
	"testing"
	"time"
)

// Off Linux TCP_USER_TIMEOUT and TCP_INFO do not exist: the setters
// succeed without effect and every reading says "unknown".
func TestNoOpsOnRealTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
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
		t.Errorf("SetUserTimeout: %v; want a silent no-op", err)
	}
	if _, _, _, ok := RTT(c); ok {
		t.Error("RTT known off Linux")
	}
	if _, ok := Stalled(c); ok {
		t.Error("Stalled known off Linux")
	}
	if _, ok := Inq(c); ok {
		t.Error("Inq known off Linux")
	}
	if _, ok := Loss(c); ok {
		t.Error("Loss known off Linux")
	}
}
