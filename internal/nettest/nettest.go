// Package nettest holds loopback helpers that tests in several packages use
// to provoke real socket errors (resets, silent peers) without a lab.
package nettest

import (
	"io"
	"net"
	"testing"
)

// ServeOnce accepts one connection on a fresh loopback listener and hands it
// to fn on a goroutine of its own; it returns the listener's address. The
// listener is closed when the test ends.
func ServeOnce(t testing.TB, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fn(c)
	}()
	return ln.Addr().String()
}

// RST closes c with SO_LINGER 0, so the peer gets a reset instead of a FIN.
func RST(c net.Conn) {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

// RSTAfterByte resets the connection once the client has sent a byte, so
// the client's dial has surely completed (an RST racing the handshake makes
// connect itself fail with ECONNRESET).
func RSTAfterByte(c net.Conn) {
	io.ReadFull(c, make([]byte, 1))
	RST(c)
}
