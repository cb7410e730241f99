package pool

import (
	"context"
	"database/sql/driver"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// The free check at borrow: before anything of the borrower's is sent, the
// pool looks at the socket under the conn, for free: one
// getsockopt(TCP_INFO) and one ioctl(SIOCINQ), no round trip
// (sockopt.Peer). It is the idea of go-sql-driver/mysql's own check in
// ResetSession (conncheck.go:22-54, a non-blocking one-byte read), but it
// reads nothing, so the driver still sees every byte.
//
// A conn whose server already ended the session (its FIN or RST arrived:
// pg_terminate_backend, a failover, a pooler restart, an idle timeout) is
// not sent on. At a ResetSession it is reported as driver.ErrBadConn
// before anything else is done with it (serverClosed, called first; or
// marked gone when the pool retired it, markIfServerClosed):
// database/sql discards it and retries on another conn, exactly as with a
// plain driver that checks (mysql) or pings (pgx at a conn's first reuse,
// stdlib/sql.go:577-580), so a second dead idle conn is discarded in turn
// rather than renewed in place. Where database/sql lent a conn without
// ResetSession (one its opener made) it gets a new driver conn in place
// (borrowCheck), as ready does for a stale one.
//
// The pool's vouching (vouchRecent: no ping because the conn was used or
// connected within LivenessIdle) is safe only because of this look: a
// server's goodbye is already in the socket when the borrower comes. Where
// the pool cannot look (no socket control, a socket that is not TCP, a
// platform without TCP_INFO) it does not vouch, and the driver's own rule
// applies, as with plain database/sql. Bytes that arrived unasked without
// a close (a NOTIFY, a ParameterStatus, or a goodbye whose FIN is still on
// its way) are the driver's to read: the pool does not vouch either, so
// pgx pings by its own rule and mysql's own check fails the conn.

// peer looks at the conn's socket: closed by the server, bytes waiting,
// and whether it could look at all.
func (c *conn) peer() (closed bool, pending int, ok bool) {
	if sock := c.l().socks.current(); sock != nil {
		return sockopt.Peer(sock)
	}
	return false, 0, false
}

// serverClosed reports whether the server already ended the conn's
// session, and marks it gone if so.
func (c *conn) serverClosed() bool {
	if closed, _, ok := c.peer(); !ok || !closed {
		return false
	}
	c.l().gone.Store(true)
	c.p.stats.goneAtBorrow.Add(1)
	return true
}

// knownDead reports, at a ResetSession of a conn taken from the idle list
// in state prev, whether its session is known to be dead: the server
// closed it (serverClosed), or the pool retired it while it sat idle
// because it was lost or severed (bad: a failed idle probe, a sever) or
// found closed by the server (gone). database/sql then discards it and
// tries another conn, as it does when a plain driver's ResetSession finds
// its conn dead, so it keeps no conn whose session is gone (upstream pgx
// TestCheckIdleConn). A conn a soft reset retired (its session closed
// politely, nothing wrong with it) is still renewed in place (ready).
// database/sql's budget makes this safe: two cached conns, then a new one.
func (c *conn) knownDead(prev int32) bool {
	if l := c.l(); prev == stateRetired && (l.gone.Load() || l.bad.Load()) {
		return true
	}
	return c.serverClosed()
}

// markIfServerClosed marks the conn gone if its server already ended the
// session; retire calls it before closing the socket. A conn the pool
// retires while it sits idle (the prober's ping failed, a reset) is then
// discarded at its next ResetSession like one the borrower finds closed,
// instead of being renewed in place: database/sql drops every dead idle
// conn as it does with a plain driver, and a session the server ended is
// not taken for an orphan to reap.
func (c *conn) markIfServerClosed() {
	if closed, _, ok := c.peer(); ok && closed {
		c.l().gone.Store(true)
	}
}

// borrowCheck runs after ready has made the conn fit for use: it takes
// back a vouch the pool cannot back with a look at the socket, and handles
// a server's goodbye that came in the meantime (or, without ResetSession,
// at all): reset says whether database/sql is in ResetSession.
func (c *conn) borrowCheck(ctx context.Context, v vouch, reset bool) (vouch, error) {
	closed, pending, ok := c.peer()
	if !ok || !closed {
		if (!ok || pending > 0) && v == vouchRecent {
			return vouchNone, nil
		}
		return v, nil
	}
	c.l().gone.Store(true)
	c.p.stats.goneAtBorrow.Add(1)
	if reset {
		return vouchNone, driver.ErrBadConn
	}
	c.retire(false)
	return vouchChecked, c.renew(ctx)
}
