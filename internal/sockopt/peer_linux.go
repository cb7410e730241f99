package sockopt

import "golang.org/x/sys/unix"

// peerDetail is asked by peerOf (peer_unix.go) when bytes are waiting:
// whether the peer's FIN or RST also came (TCP_INFO state), and how many
// bytes (SIOCINQ).
func peerDetail(fd uintptr) (closed bool, pending int) {
	if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
		// We never shut a pooled socket down ourselves, so any state but
		// ESTABLISHED means the peer's FIN (CLOSE_WAIT) or RST (CLOSE) came.
		closed = info.State != tcpEstablished
	}
	pending, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	return closed, pending
}

const tcpEstablished = 1 // TCP_ESTABLISHED, include/net/tcp_states.h
