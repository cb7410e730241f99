package sockopt

import (
	"net"
	"time"
)

// Peek waits until data arrives on c (or until deadline; zero means no
// bound) and copies up to len(b) bytes of it into b without consuming
// them: the next Read still returns them. It is for learning what a server
// says first (MySQL's greeting carries the connection id) without standing
// between the driver and its socket. ok is false where the platform or
// the conn does not allow it (then nothing was read). c's read deadline is
// left unset afterwards.
func Peek(c net.Conn, b []byte, deadline time.Time) (n int, ok bool) {
	raw, ok := rawOfConn(c)
	if !ok || len(b) == 0 {
		return 0, false
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		return 0, false
	}
	defer c.SetReadDeadline(time.Time{})
	return peekOf(raw, b)
}
