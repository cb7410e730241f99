package pool

import (
	"context"
	"database/sql/driver"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// borrowCheck looks, for free, at the socket under a conn that ready has
// just made fit for use, before anything of the borrower's is sent: one
// getsockopt(TCP_INFO) and one ioctl(SIOCINQ), no round trip
// (sockopt.Peer). It is the same idea as go-sql-driver/mysql's own check
// in ResetSession (conncheck.go:22-54, a non-blocking one-byte read), but
// it reads nothing, so the driver still sees every byte.
//
// A conn whose server already ended the session (its FIN or RST arrived:
// pg_terminate_backend, a failover, a pooler restart, an idle timeout) is
// not sent on. At a ResetSession (reset true) it is reported as
// driver.ErrBadConn: database/sql discards it and retries on another conn,
// exactly as with a plain driver that checks (mysql) or pings (pgx at a
// conn's first reuse, stdlib/sql.go:577-580). Elsewhere (database/sql lent
// a conn its opener made, without ResetSession) it gets a new driver conn
// in place, as ready does for a stale one.
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
func (c *conn) borrowCheck(ctx context.Context, v vouch, reset bool) (vouch, error) {
	l := c.l()
	var closed bool
	var pending int
	ok := false
	if sock := l.socks.current(); sock != nil {
		closed, pending, ok = sockopt.Peer(sock)
	}
	if !ok || !closed {
		if (!ok || pending > 0) && v == vouchRecent {
			return vouchNone, nil
		}
		return v, nil
	}
	l.gone.Store(true)
	c.p.stats.goneAtBorrow.Add(1)
	if reset {
		return vouchNone, driver.ErrBadConn
	}
	c.retire(false)
	return vouchChecked, c.renew(ctx)
}
