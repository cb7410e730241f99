package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// connector wraps the driver's connector: every connection it makes is
// stamped with the pool's current generation, and (with socket control) is
// dialed through the pool's dialer into a socketSet of its own.
type connector struct {
	p     *Pool
	inner driver.Connector
}

var (
	_ driver.Connector = (*connector)(nil)
	_ io.Closer        = (*connector)(nil)
)

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	p := c.p
	if p.cfgErr != nil {
		return nil, p.cfgErr
	}
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if err := p.passGate(ctx); err != nil {
		return nil, err
	}
	cn, err := c.connect(ctx)
	if err != nil {
		return nil, callerError(err, p.secrets)
	}
	return cn, nil
}

// probeKey marks the context of a check's fresh connection: its failure is
// the check's verdict, not a hint for another check.
type probeKey struct{}

// rebuildKey marks the context of the supervisor's rebuild: its connects
// are no request's demand (see rebuild).
type rebuildKey struct{}

// passGate waits at the gate, unless ctx is a rebuild allowed past it. It
// is where every connect database/sql asks for begins (a new conn, or a
// retired one renewed at borrow); one asked for by anything but the
// rebuild is a request that found no conn ready (p.demand, see rebuild).
func (p *Pool) passGate(ctx context.Context) error {
	past, rebuilding := ctx.Value(rebuildKey{}).(bool)
	if !rebuilding {
		p.demand.Add(1)
	}
	if past {
		return nil
	}
	return p.gate.wait(ctx, p.cfg.DownWait)
}

// dialGated is dial behind the gate, for renewing a conn: a spare a check
// made (the rebuild waits for those still connecting) before a connect of
// its own. (Renewing retired conns is most of what the rebuild does: without
// the spares it paid a second connect each, and the first requests after an
// UP waited for them: V8 on the WAN, MariaDB, 7 of 8 requests 2 RTT.)
func (c *connector) dialGated(ctx context.Context) (*rawConn, error) {
	p := c.p
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if err := p.passGate(ctx); err != nil {
		return nil, err
	}
	if rc := p.waitSpare(ctx); rc != nil {
		return rc, nil
	}
	return c.dial(ctx)
}

// connect makes a pooled connection without waiting at the gate.
func (c *connector) connect(ctx context.Context) (driver.Conn, error) {
	p := c.p
	if rc := p.waitSpare(ctx); rc != nil {
		cn := newConn(p, rc)
		p.register(cn)
		return cn, nil
	}
	rc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	cn := newConn(p, rc)
	p.register(cn)
	return cn, nil
}

// takeSpare returns a connection the check that found the path back made
// (freshProbe), if one is of the current generation and younger than
// LivenessIdle; stale ones are closed.
func (p *Pool) takeSpare() *rawConn {
	p.mu.Lock()
	var rc *rawConn
	var stale []*rawConn
	for len(p.spares) > 0 && rc == nil {
		c := p.spares[len(p.spares)-1]
		p.spares = p.spares[:len(p.spares)-1]
		if c.gen != p.gen.Load() || p.cfg.LivenessIdle != off && p.cfg.now().Sub(c.connectedAt) > p.cfg.LivenessIdle {
			stale = append(stale, c)
			continue
		}
		rc = c
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
	return rc
}

// waitSpare is takeSpare; for the rebuild (ctx carries rebuildKey) it
// waits, up to ctx's end, for the spares an UP's check is still connecting
// rather than dial more connections beside them.
func (p *Pool) waitSpare(ctx context.Context) *rawConn {
	_, rebuilding := ctx.Value(rebuildKey{}).(bool)
	for {
		p.mu.Lock()
		sig := p.spareSig
		if sig == nil {
			sig = make(chan struct{})
			p.spareSig = sig
		}
		p.mu.Unlock()
		if rc := p.takeSpare(); rc != nil || !rebuilding || p.sparesPending.Load() == 0 {
			return rc
		}
		select {
		case <-sig:
		case <-ctx.Done():
			return nil
		}
	}
}

// signalSpare wakes the rebuild's waitSpare.
func (p *Pool) signalSpare() {
	p.mu.Lock()
	if p.spareSig != nil {
		close(p.spareSig)
		p.spareSig = nil
	}
	p.mu.Unlock()
}

// addSpare keeps rc for the next connect (at most maxSpares; the oldest go).
func (p *Pool) addSpare(rc *rawConn) {
	p.mu.Lock()
	p.spares = append(p.spares, rc)
	var drop []*rawConn
	if n := len(p.spares) - maxSpares; n > 0 {
		drop = append(drop, p.spares[:n]...)
		p.spares = append([]*rawConn(nil), p.spares[n:]...)
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.close()
	}
	p.signalSpare()
}

// maxSpares bounds the connections a check keeps for the rebuild.
const maxSpares = 64

var errAbandoned = errors.New("pool: connect cut because the path came back while it ran")

// claim takes a finished connect's sockets out of the pending set, so no
// later abandonPending can cut them; it reports false if one already did.
func (p *Pool) claim(set *socketSet) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if set.abandoned.Load() {
		return false
	}
	delete(p.pending, set)
	return true
}

// rawConn is a driver conn with the sockets it was dialed with and the
// generation it belongs to. A pooled conn wraps one at a time; the prober
// and the checks use one bare.
type rawConn struct {
	inner driver.Conn
	socks *socketSet // nil without socket control
	gen   uint64
	bad   atomic.Bool // lost: must not be reused
	// The server session, for orphan reaping (orphans.go): its id (0
	// unknown), fingerprint, and when the connection was made.
	sessionID   int64
	sessionFP   string
	connectedAt time.Time
	// orphanable: an operation was cut by its caller's deadline; the driver
	// may close the conn with a goodbye a dead path swallows, so the
	// session is checked for (and ended) after recovery.
	orphanable atomic.Bool
	// gone: the server ended the session (its FIN or RST was seen on the
	// socket, borrowcheck.go); nothing to reap.
	gone atomic.Bool
	// resetOnce: the driver conn has had a ResetSession (only the borrower
	// touches it, in ResetSession). pgx pings a conn at its first reset
	// whatever its age.
	resetOnce bool
	p         *Pool

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool // close ran (Stats: sessionCounts)

	// The driver conn's optional interfaces, asserted once: the borrow and
	// return path runs on every query.
	execer    driver.ExecerContext
	queryer   driver.QueryerContext
	validator driver.Validator
	resetter  driver.SessionResetter
}

func newRawConn(p *Pool, ic driver.Conn, set *socketSet, gen uint64) *rawConn {
	rc := &rawConn{inner: ic, socks: set, gen: gen, p: p}
	rc.execer, _ = ic.(driver.ExecerContext)
	rc.queryer, _ = ic.(driver.QueryerContext)
	rc.validator, _ = ic.(driver.Validator)
	rc.resetter, _ = ic.(driver.SessionResetter)
	return rc
}

func (r *rawConn) close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		if r.p != nil {
			r.p.stats.rawOpen.Add(-1)
		}
		if r.p != nil && r.sessionID != 0 {
			switch {
			case r.gone.Load():
				// The server ended the session itself: nothing to reap.
			case r.bad.Load():
				// Lost or severed: the server may not know; remember to reap.
				r.p.addOrphan(r.orphan())
			case r.orphanable.Load():
				// Cut by its caller's deadline: reaped only if a dead path
				// is found soon (promoteOrphanCandidates).
				r.p.addOrphanCandidate(r.orphan())
			}
		}
		r.closeErr = r.inner.Close()
		if r.socks != nil {
			r.socks.closeAll()
		}
	})
	return r.closeErr
}

// dial asks the driver's connector for a connection, stamped with the
// generation current when it started. A connect the pool cut because it
// had started into a dead path that has since come back is tried once
// more: nothing of the caller's was sent.
func (c *connector) dial(ctx context.Context) (*rawConn, error) {
	rc, set, err := c.dialOnce(ctx)
	if err != nil && set != nil && set.abandoned.Load() && ctx.Err() == nil {
		c.p.log.Debug("flapguard: retrying a connect started before the path came back")
		rc, _, err = c.dialOnce(ctx)
	}
	return rc, err
}

func (c *connector) dialOnce(parent context.Context) (*rawConn, *socketSet, error) {
	p := c.p
	ctx := parent
	if p.cfg.ConnectTimeout != off {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, p.cfg.ConnectTimeout)
		defer cancel()
	}
	gen := p.gen.Load()
	var set *socketSet
	if p.dialer != nil {
		set = &socketSet{}
		ctx = context.WithValue(ctx, socketSetKey{}, set)
		p.addPending(set, gen)
		defer p.removePending(set)
		// go-mssqldb ignores the context during PRELOGIN (upstream issue
		// #254): a server that accepts TCP and never answers blocks Connect
		// forever. Closing the dialed socket when ctx ends unblocks it. It
		// waits Config.CancelGrace first, so that a driver that honours
		// the context (pgx, mysql) returns its own error, as with plain,
		// not a read on a socket closed under it ("use of closed network
		// connection", mysql's "invalid connection").
		returned := make(chan struct{})
		defer close(returned)
		dialed := set // set itself may be cleared below, while this runs
		stop := context.AfterFunc(ctx, func() {
			if g := p.cfg.CancelGrace; g > 0 {
				t := time.NewTimer(g)
				defer t.Stop()
				select {
				case <-returned:
					return
				case <-t.C:
				}
			}
			dialed.closeAll()
		})
		defer stop()
	}
	if c.inner == nil {
		return nil, nil, errors.New("pool: OpenDB: connector is nil")
	}
	started := time.Now()
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		// go-mssqldb returns a non-nil driver.Conn wrapping a nil *Conn on
		// error (docs/drivers.md): look at err, never at ic.
		if set != nil {
			set.closeAll()
		}
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			// For the pool's judgement: the context ended it (Alive), not
			// the path. The caller gets the driver's error (Connect).
			err = &ctxEnded{ctx: ctx.Err(), err: err}
		}
		if ctx.Err() != nil && parent.Err() == nil {
			// The pool's own bound ended a connect plain database/sql would
			// have let run: a meaning flapguard gave, so it says so.
			err = fmt.Errorf("pool: connecting took longer than Config.ConnectTimeout (%v): %w", p.cfg.ConnectTimeout, err)
		}
		// A hint for the supervisor (unless the caller gave up): a path
		// dying under a quiet pool shows first as failed connects.
		if _, probing := parent.Value(probeKey{}).(bool); !probing && parent.Err() == nil && !p.closed.Load() {
			p.connectFailed.Store(true)
			p.sup.kick()
		}
		// Marked as a connect error: whatever broke, no statement of the
		// caller's was sent on a connection that never opened.
		return nil, set, &detect.ConnectError{Err: redactErr(err, p.secrets)}
	}
	if set != nil && !p.claim(set) {
		// The pool cut this connect (it had started before the path came
		// back) just as the driver finished it: the socket is closed under
		// a conn that looks open. Nothing of the caller's was sent; dial
		// tries again.
		ic.Close()
		return nil, set, &detect.ConnectError{Err: errAbandoned}
	}
	wireID, wireFP := set.session()
	if set != nil && set.current() == nil {
		// The driver dialed without the pool's dialer (a pgx config or a
		// MySQL network registered with the driver itself). Ask the
		// adapter for the socket; without one this conn has none the pool
		// could sever or look at.
		if f := p.drv.SocketOf; f != nil {
			if s := f(ic); s != nil {
				p.dialer.harden(s)
				set.add(s)
			}
		}
		if set.current() == nil {
			set = nil
		}
	}
	rc := newRawConn(p, ic, set, gen)
	p.stats.rawOpen.Add(1)
	rc.connectedAt = p.cfg.now()
	if p.reaping() {
		if wireID > 0 && safeLiteral(wireFP) || wireID > 0 && wireFP == "" {
			// Read off the wire (Driver.WatchSocket): no round trip.
			rc.sessionID, rc.sessionFP = wireID, wireFP
		} else {
			rc.sessionID, rc.sessionFP = p.sessionOf(ctx, ic)
		}
	}
	p.observeConnect(time.Since(started))
	p.stats.connects.Add(1)
	return rc, set, nil
}

func (c *connector) Driver() driver.Driver { return connectorDriver{c} }

// Close stops the pool, then closes the inner connector if it is an
// io.Closer. database/sql calls it from DB.Close (sql.go, DB.Close), so a
// framework that closes the *sql.DB stops the pool as Pool.Close does.
func (c *connector) Close() error {
	c.p.shutdown()
	if cl, ok := c.inner.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// connectorDriver is what sql.DB.Driver() returns. Its Open opens the DSN
// it is given with the driver's own driver.Driver, as a plain database/sql
// driver would: a connection outside the pool, never one to the pool's
// server in disguise.
type connectorDriver struct{ c *connector }

func (d connectorDriver) Open(dsn string) (driver.Conn, error) {
	if d.c.inner == nil {
		return nil, errors.New("pool: Driver().Open: the pool has no connector")
	}
	drv := d.c.inner.Driver()
	if drv == nil {
		return nil, errors.New("pool: Driver().Open: the connector has no driver.Driver to open a DSN with")
	}
	return drv.Open(dsn)
}
