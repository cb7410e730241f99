package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"time"
)

// checkLiveness pings a conn that sat idle, with a deadline the pool
// chooses from the measured round-trip time — not the caller's: pgx pings
// with the caller's context (stdlib/sql.go ResetSession), so a blackholed
// conn would burn the caller's whole deadline. With socket control the
// socket is closed the moment the deadline passes, because go-mssqldb would
// otherwise wait 5s more for its ATTENTION to be confirmed.
func (c *conn) checkLiveness(ctx context.Context) error {
	l := c.l()
	pg, ok := l.inner.(driver.Pinger)
	if !ok {
		return nil
	}
	var sock net.Conn
	if l.socks != nil {
		sock = l.socks.current()
	}
	d := c.p.livenessTimeout(sock)
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stop := func() bool { return false }
	if l.socks != nil {
		stop = context.AfterFunc(pctx, func() {
			if errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
				l.bad.Store(true)
				l.socks.closeAll()
			}
		})
	}
	start := time.Now()
	err := pg.Ping(pctx)
	stop()
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

// observePing keeps an exponentially weighted mean of ping round trips, the
// RTT estimate for conns whose sockets the pool cannot see.
func (p *Pool) observePing(d time.Duration) {
	for {
		old := p.pingEWMA.Load()
		nv := int64(d)
		if old != 0 {
			nv = old + (int64(d)-old)/8
		}
		if p.pingEWMA.CompareAndSwap(old, nv) {
			return
		}
	}
}
