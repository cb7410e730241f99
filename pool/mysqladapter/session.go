package mysqladapter

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// watchSocket learns the connection id from the server's greeting, the
// first packet a MySQL server sends (protocol 10: version byte, server
// version NUL-terminated, then the connection id, 4 bytes little-endian;
// go-sql-driver/mysql reads past it at packets.go:204-206 and keeps it
// nowhere). It peeks at the socket (sockopt.Peek): the driver still reads
// every byte itself, from the socket itself, so its own CheckConnLiveness
// and its *net.TCPConn keepalive stay as with plain. The wait is the one
// the driver would make for the greeting anyway: no round trip is added.
// Where it cannot peek (Windows), the pool asks SessionQuery as before.
//
// No fingerprint comes with it: what the server calls the client (HOST)
// cannot be known without asking, since a proxy or a NAT in between
// changes it. SessionCheck then checks the id and the user (see there).
func watchSocket(ctx context.Context, c net.Conn, found func(int64, string)) net.Conn {
	deadline, _ := ctx.Deadline()
	if deadline.IsZero() {
		deadline = time.Now().Add(30 * time.Second)
	}
	var buf [128]byte
	n, ok := sockopt.Peek(c, buf[:], deadline)
	if !ok {
		return c
	}
	if id := greetingID(buf[:n]); id > 0 {
		found(id, "")
	}
	return c
}

// greetingID parses the connection id out of the start of a server
// greeting packet; 0 when b is not one (an error packet: too many
// connections, host blocked) or is cut short.
func greetingID(b []byte) int64 {
	const hdr = 4
	if len(b) < hdr+1 || b[3] != 0 || b[hdr] != 10 { // sequence 0, protocol 10
		return 0
	}
	p := b[hdr+1:]
	end := bytes.IndexByte(p, 0)
	if end < 0 || len(p) < end+1+4 {
		return 0
	}
	return int64(binary.LittleEndian.Uint32(p[end+1:]))
}

// sessionCheck counts the sessions with id and, with a fingerprint (the
// whole HOST, from SessionQuery), that HOST. Without one (the id came from
// the greeting) it checks the id and that the session is the pool's own
// user's: MySQL and MariaDB hand out connection ids from a counter, so an
// id is not reused on one server while a pool could remember it, and a
// user without the PROCESS privilege could kill no other user's session
// anyway. What it cannot tell apart is another server behind the same
// address (a failover) that happens to run a session of the same user
// with the same id; pgx's check (pid and start time) has the same limit.
func sessionCheck(id int64, fp string, _ time.Duration) string {
	if fp == "" {
		return fmt.Sprintf("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %d AND USER = SUBSTRING_INDEX(USER(), '@', 1)", id)
	}
	return fmt.Sprintf("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %d AND HOST = %s", id, fp)
}
