package sockopt

import (
	"net"
	"syscall"
)

// Peer reports, without reading anything and without waiting, what the
// far end did to c while nobody read it: closed is true once its FIN or RST
// arrived, pending counts bytes that arrived unasked (a server's goodbye
// such as PostgreSQL's FATAL, or an asynchronous message such as a
// NOTIFY). The common case (nothing there) costs one non-blocking
// recv(MSG_PEEK); bytes waiting are followed by a FIN or not as TCP_INFO's
// state says (Linux; elsewhere they count as pending, not closed). ok is
// false on Windows, for a non-socket conn, or when the kernel does not say.
// A TLS conn is looked at through the conn under it.
func Peer(c net.Conn) (closed bool, pending int, ok bool) {
	raw, ok := rawOfConn(c)
	if !ok {
		return false, 0, false
	}
	return peerOf(raw)
}

// rawOfConn is rawOf through a TLS conn (NetConn).
func rawOfConn(c net.Conn) (syscall.RawConn, bool) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = tc.NetConn()
	}
	return rawOf(c)
}
