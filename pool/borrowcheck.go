package pool

import (
	"context"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// The free check at borrow: before anything of the borrower's is sent, the
// pool looks at the socket under the conn, for free: one non-blocking
// recv(MSG_PEEK) in the common case (nothing there), plus TCP_INFO and
// SIOCINQ on Linux when bytes wait; no round trip (sockopt.Peer). It is the
// idea of go-sql-driver/mysql's own check in ResetSession
// (conncheck.go:22-54, a non-blocking one-byte read), but it consumes
// nothing, so the driver still sees every byte. It runs where a decision
// depends on it (see look), not on every borrow.
//
// A conn whose server already ended the session (its FIN or RST arrived:
// pg_terminate_backend, a failover, a pooler restart, an idle timeout) is
// not sent on. At a ResetSession it is reported as driver.ErrBadConn
// before anything else is done with it (look, called first; or marked gone
// when the pool retired it, markIfServerClosed):
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
// the pool cannot look (no socket control, a socket that is not TCP,
// Windows) it does not vouch, and the driver's own rule
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

// look is the free check at a ResetSession of a conn taken from the idle
// list in state prev, before ready. dead: its session is known to be dead,
// so database/sql is to discard it (driver.ErrBadConn) and try another
// conn, as it does when a plain driver's ResetSession finds its conn dead;
// it then keeps no conn whose session is gone (upstream pgx
// TestCheckIdleConn). That is a conn the server closed, or one the pool
// retired while it sat idle because it was lost or severed (bad: a failed
// idle probe, a sever) or found closed by the server (gone). A conn a soft
// reset retired (its session closed politely) is still renewed in place
// by ready. database/sql's budget makes discarding safe: two cached conns,
// then a new one.
//
// blind: the pool did not see that the socket is quiet, so it must not
// vouch for the conn (vouchRecent) and let the driver skip its own ping.
//
// The socket is looked at only where a decision depends on it: at the
// conn's first reset (pgx pings then whatever the conn's age; the pool
// vouches instead) and after LivenessIdle (ready would ping it, and a
// conn the server closed is discarded rather than pinged and renewed).
// A conn lent out again within LivenessIdle is not looked at: neither
// the pool nor the driver would check it, as with plain database/sql, and
// the hot path makes no syscall.
func (c *conn) look(prev int32, now int64) (dead, blind bool) {
	l := c.l()
	if prev == stateRetired {
		return l.gone.Load() || l.bad.Load(), false
	}
	if l.socks == nil {
		return false, true
	}
	if l.resetOnce {
		lv := c.p.cfg.LivenessIdle
		if lv == off || time.Duration(now-c.usedAt.Load()) <= lv {
			return false, false
		}
	}
	closed, pending, ok := c.peer()
	if ok && closed {
		l.gone.Store(true)
		c.p.stats.goneAtBorrow.Add(1)
		return true, false
	}
	return false, !ok || pending > 0
}

// markIfServerClosed marks the conn gone if its server already ended the
// session; retire calls it before closing the socket, so that a conn the
// pool retires while it sits idle (a reset) is discarded at its next
// ResetSession (look) like one the borrower finds closed, and a session
// the server ended is not taken for an orphan to reap.
func (c *conn) markIfServerClosed() {
	if closed, _, ok := c.peer(); ok && closed {
		c.l().gone.Store(true)
	}
}

// borrowCheck runs where database/sql lent a conn without ResetSession
// (one its opener made, at its first use), after ready: a conn whose
// server already ended the session gets a new driver conn in place, as
// ready does for a stale one. Once per conn, not on the hot path.
func (c *conn) borrowCheck(ctx context.Context) error {
	if closed, _, ok := c.peer(); !ok || !closed {
		return nil
	}
	c.l().gone.Store(true)
	c.p.stats.goneAtBorrow.Add(1)
	c.retire(false)
	return c.renew(ctx)
}
