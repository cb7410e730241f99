//go:build unix

package sockopt

import "syscall"

// peerOf peeks one byte without waiting (MSG_PEEK|MSG_DONTWAIT): nothing
// there (EAGAIN) is the common case and costs this one syscall; end of
// stream means the peer's FIN with nothing left to read; a reset means
// its RST. Bytes waiting may or may not be followed by a FIN: on Linux
// TCP_INFO says (peerDetail); elsewhere they count as pending, not closed.
func peerOf(c syscall.RawConn) (closed bool, pending int, ok bool) {
	var n int
	var rerr error
	cerr := c.Control(func(fd uintptr) {
		var b [1]byte
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if rerr == nil && n > 0 {
			closed, pending = peerDetail(fd)
			pending = max(pending, n)
		}
	})
	switch {
	case cerr != nil:
		return false, 0, false
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
		return false, 0, true
	case rerr == syscall.ECONNRESET:
		return true, 0, true
	case rerr != nil:
		return false, 0, false
	case n == 0:
		return true, 0, true
	}
	return closed, pending, true
}
