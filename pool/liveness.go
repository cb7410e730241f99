package pool

import (
	"context"
	"database/sql/driver"
	"net"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// pinged marks the context a borrower's ResetSession runs under after the
// pool checked the connection's liveness itself.
type pingedKey struct{}

// Pinged reports whether the pool vouches for the liveness of the
// connection whose SessionResetter.ResetSession is called with ctx: it has
// just pinged it with its own deadline, or the connection was connected,
// lent out or probed within Config.LivenessIdle (the pool's rule for when
// to ping). An adapter whose driver pings in ResetSession (pgx) uses it to
// skip that ping, so a borrow makes at most one round trip, and never more
// than with the plain driver.
func Pinged(ctx context.Context) bool {
	v, _ := ctx.Value(pingedKey{}).(bool)
	return v
}

// checkLiveness pings a conn that sat idle, with a deadline the pool
// chooses from the measured round-trip time — not the caller's: pgx pings
// with the caller's context in ResetSession (docs/drivers.md), so a
// blackholed conn would burn the caller's whole deadline.
func (c *conn) checkLiveness(ctx context.Context) error {
	l := c.l()
	if _, ok := l.inner.(driver.Pinger); !ok {
		return nil
	}
	var sock net.Conn
	if l.socks != nil {
		sock = l.socks.current()
	}
	d := c.p.livenessTimeout(sock)
	start := time.Now()
	err := l.pingWithin(ctx, d)
	c.p.stats.livenessChecks.Add(1)
	if err == nil {
		c.p.observePing(time.Since(start))
		return nil
	}
	l.bad.Store(true)
	if ctx.Err() != nil {
		// The caller gave up; that says nothing about the path.
		return err
	}
	c.p.stats.livenessFailures.Add(1)
	c.p.livenessFailed(c, d, err)
	return err
}

// pingWithin pings the driver conn under ctx, bounded by d. With socket
// control the socket is closed the moment the bound passes (unless ctx
// itself ended), because go-mssqldb would otherwise wait 5s more for its
// ATTENTION to be confirmed (docs/drivers.md).
//
// If at that moment an answer has arrived that the driver has not read yet
// (sockopt.Inq: bytes waiting on the socket), the far end did answer: the
// reader is late, because this process is starved of CPU. The bound is
// extended once, by d. Nothing weaker counts: a TCP acknowledgement can
// come from a proxy in front of the server (a sidecar pgbouncer, a
// userspace TCP proxy) while the path behind it is dead.
func (l *rawConn) pingWithin(ctx context.Context, d time.Duration) error {
	pg, ok := l.inner.(driver.Pinger)
	if !ok {
		return nil
	}
	if l.socks == nil {
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return pg.Ping(pctx)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sock := l.socks.current()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		extended := false
		for {
			select {
			case <-stop:
				return
			case <-pctx.Done():
				if ctx.Err() == nil {
					return // the bound below cancelled it
				}
				// The caller gave up, or the pool is closing: a driver that
				// drains its cancel (go-mssqldb waits 5s for ATTENTION to
				// be confirmed) gets CancelGrace, as a statement does.
				grace := l.p.cfg.CancelGrace
				if grace == off {
					return
				}
				g := time.NewTimer(grace)
				defer g.Stop()
				select {
				case <-stop:
				case <-g.C:
					l.bad.Store(true)
					l.socks.closeAll()
				}
				return
			case <-t.C:
			}
			if n, ok := sockopt.Inq(sock); ok && n > 0 && !extended {
				extended = true
				t.Reset(d)
				continue
			}
			if ctx.Err() == nil {
				l.bad.Store(true)
				l.socks.closeAll()
			}
			cancel()
			return
		}
	}()
	return pg.Ping(pctx)
}

// observeConnect keeps an exponentially weighted mean of connect times,
// which bounds the probe that verifies a tunnel's DOWN.
func (p *Pool) observeConnect(d time.Duration) { ewma(&p.connectEWMA, d) }

// observePing keeps an exponentially weighted mean of ping round trips, the
// RTT estimate for conns whose sockets the pool cannot see.
func (p *Pool) observePing(d time.Duration) { ewma(&p.pingEWMA, d) }

func ewma(v *atomic.Int64, d time.Duration) {
	for {
		old := v.Load()
		nv := int64(d)
		if old != 0 {
			nv = old + (int64(d)-old)/8
		}
		if v.CompareAndSwap(old, nv) {
			return
		}
	}
}
