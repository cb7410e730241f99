// Package sockopt sets the TCP options flapguard relies on and reads the
// kernel's view of a socket's round-trip time.
//
// TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged before
// the kernel gives up on the connection. That is exactly the state of a
// query written into a dead tunnel, where keepalive never fires (keepalive
// only runs on an idle socket). It does not fire for a slow but live server
// that acknowledges the request and takes its time to answer, so unlike a
// per-read deadline it does not kill long queries.
package sockopt

import (
	"net"
	"syscall"
	"time"
)

// SetUserTimeout sets TCP_USER_TIMEOUT on c (Linux); elsewhere it is a
// no-op that returns nil. d <= 0 leaves the kernel default.
func SetUserTimeout(c syscall.RawConn, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	return setUserTimeout(c, d)
}

// RTT returns the kernel's smoothed round-trip time and its variance for a
// TCP connection (TCP_INFO on Linux). ok is false when unknown: another
// platform, a non-TCP conn, or no sample yet.
func RTT(c net.Conn) (rtt, rttvar, rto time.Duration, ok bool) {
	raw, ok := rawOf(c)
	if !ok {
		return 0, 0, 0, false
	}
	return rttOf(raw)
}

// Stalled reports how many retransmission timeouts in a row have expired
// for data on c that the peer has not acknowledged (or how many keepalive
// probes went unanswered): 0 for a healthy flow, 1 after a single lost
// packet (recovered at the next retransmission on a working path), and
// growing while the flow goes into a black hole. A long query on a live
// server is not stalled (its request was acknowledged). ok is false when
// unknown.
func Stalled(c net.Conn) (timeouts int, ok bool) {
	raw, ok := rawOf(c)
	if !ok {
		return 0, false
	}
	return stalledOf(raw)
}

// Inq reports how many bytes have arrived on c that nobody has read yet
// (SIOCINQ): an answer from the far end waiting for a slow reader. ok is
// false when unknown.
func Inq(c net.Conn) (n int, ok bool) {
	raw, ok := rawOf(c)
	if !ok {
		return 0, false
	}
	return inqOf(raw)
}

// Loss reports the share of c's data segments the kernel had to send again
// (tcpi_total_retrans / tcpi_data_segs_out over the connection's life): a
// measure of how lossy the path has been. ok is false when unknown.
func Loss(c net.Conn) (rate float64, ok bool) {
	raw, ok := rawOf(c)
	if !ok {
		return 0, false
	}
	return lossOf(raw)
}

// rawOf is c's raw socket, if it has one (nil and non-socket conns do not).
func rawOf(c net.Conn) (syscall.RawConn, bool) {
	sc, isSC := c.(syscall.Conn)
	if !isSC {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	return raw, err == nil
}

// Heard reports how long ago c last received anything from its peer (data
// or an acknowledgement: tcpi_last_data_recv and tcpi_last_ack_recv, the
// more recent). ok is false when unknown. An acknowledgement proves only
// the next TCP endpoint, which may be a proxy in front of a dead path.
func Heard(c net.Conn) (ago time.Duration, ok bool) {
	raw, ok := rawOf(c)
	if !ok {
		return 0, false
	}
	return heardOf(raw, false)
}

// HeardData reports how long ago c last received data (tcpi_last_data_recv):
// an answer from the far end's application.
func HeardData(c net.Conn) (ago time.Duration, ok bool) {
	raw, ok := rawOf(c)
	if !ok {
		return 0, false
	}
	return heardOf(raw, true)
}

// KeepAliveProbe asks the kernel to send a TCP keepalive probe on c now,
// without a byte of the application's protocol: it sets TCP_KEEPIDLE to
// one second on the live socket, and Linux re-arms the keepalive timer
// from the time the socket has already been idle
// (net/ipv4/tcp.c, tcp_sock_set_keepidle_locked), so on a flow silent for
// a second or more the probe goes out at once, on one silent for less
// when it has been silent for a second. The peer's acknowledgement shows
// in Heard. restore puts the socket's keepalive settings back; call it
// when the answer is in or the deadline has passed.
//
// sent is false (and restore a no-op) when no probe can go out: the flow
// has data the peer has not acknowledged (the kernel sends no keepalive
// then: tcp_keepalive_timer), or the platform has no such control.
func KeepAliveProbe(c net.Conn) (restore func(), sent bool) {
	raw, ok := rawOf(c)
	if !ok {
		return func() {}, false
	}
	return keepAliveProbeOf(raw)
}

// Flight reports what c has in flight: segments sent and not yet
// acknowledged (tcpi_unacked), and how many segments the connection has
// retransmitted in all (tcpi_total_retrans). A retransmission that went
// out while the path was known to answer, and stays unacknowledged, is the
// flow's own proof that it is dead. ok is false when unknown.
func Flight(c net.Conn) (unacked int, retrans uint32, ok bool) {
	raw, ok := rawOf(c)
	if !ok {
		return 0, 0, false
	}
	return flightOf(raw)
}
