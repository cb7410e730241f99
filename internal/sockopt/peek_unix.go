//go:build unix

package sockopt

import "syscall"

func peekOf(c syscall.RawConn, b []byte) (n int, ok bool) {
	var perr error
	// Read waits (in the runtime's poller, honouring the read deadline)
	// until the callback says done; MSG_PEEK leaves the bytes queued.
	err := c.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK)
		return perr != syscall.EAGAIN && perr != syscall.EWOULDBLOCK
	})
	if err != nil || perr != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
