package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// A line directive cannot reach the condition of an "else if", so this one
// covers the file: conn falls back to driver.Conn.Begin, driver.Execer and
// driver.Queryer on purpose, for drivers that have nothing newer.
//
//lint:file-ignore SA1019 deliberate fallbacks to the pre-Go 1.8 driver interfaces

// Connection states. database/sql never tells a driver when a connection
// goes back to its idle list or leaves it, so the wrapper infers it:
// Validator.IsValid runs when a connection is returned (→ idle),
// SessionResetter.ResetSession when an idle one is borrowed (→ busy), and a
// connection the background opener made goes idle without either (fresh).
const (
	stateFresh   int32 = iota // made, never used
	stateBusy                 // lent out by database/sql
	stateIdle                 // back in database/sql's idle list
	stateProbing              // idle, being pinged by the prober
	stateRetired              // idle when a reset closed its driver conn; reconnects when next borrowed
	stateClosed               // closed by database/sql
)

// conn wraps a driver.Conn. database/sql uses a conn from one goroutine at a
// time; the pool's reset and prober reach it from others, through state.
//
// The driver conn under it can be replaced: a conn whose driver conn a reset
// closed while it sat idle (or that is stale or dead when borrowed) gets a
// new one in ResetSession, before anything of the caller's is sent. So a
// reset never costs a caller one of database/sql's two bad-connection
// retries, and no query fails because of a reset by itself.
type conn struct {
	p    *Pool
	id   uint64 // the checks name conns by it (decide.go)
	link atomic.Pointer[rawConn]

	state atomic.Int32
	// usedAt is borrowNow when the conn was last lent out (monoNow when it
	// was made). The idle time at
	// the next borrow is measured from it, so it includes the time the conn
	// was busy: an overestimate that can only cause an extra liveness ping,
	// never a missed one, and saves a clock read per query.
	usedAt atomic.Int64
	// probedAt is monoNow when the supervisor's idle probe last found the
	// conn alive (probeIdle).
	probedAt atomic.Int64
	ops      atomic.Uint64
	// lentAt is monoNow when database/sql lent the conn, 0 when it has it
	// back; kept only for Config.Observer.ConnUsed (observe.go).
	lentAt atomic.Int64

	probeMu   sync.Mutex    // protects probeDone
	probeDone chan struct{} // closed when a probe of this conn ends
}

var (
	_ driver.Conn                    = (*conn)(nil)
	_ driver.Pinger                  = (*conn)(nil)
	_ driver.ExecerContext           = (*conn)(nil)
	_ driver.QueryerContext          = (*conn)(nil)
	_ driver.ConnPrepareContext      = (*conn)(nil)
	_ driver.ConnBeginTx             = (*conn)(nil)
	_ driver.NamedValueChecker       = (*conn)(nil)
	_ driver.SessionResetter         = (*conn)(nil)
	_ driver.Validator               = (*conn)(nil)
	_ interface{ Raw() driver.Conn } = (*conn)(nil)
)

func newConn(p *Pool, rc *rawConn) *conn {
	c := &conn{p: p, id: p.nextID.Add(1)}
	c.link.Store(rc)
	now := p.monoNow()
	c.usedAt.Store(now)
	if p.cfg.Observer.ConnUsed != nil {
		c.lentAt.Store(now) // observe.go: lent as it is made, without ResetSession
	}
	return c
}

// l returns the current driver conn and its sockets.
func (c *conn) l() *rawConn { return c.link.Load() }

// stale reports whether the conn must not be reused as it is.
func (c *conn) stale() bool {
	l := c.l()
	return l.bad.Load() || l.gen != c.p.gen.Load()
}

// retire closes the driver conn of a conn that database/sql still holds.
// The caller must own the conn (it moved state away from idle or busy).
func (c *conn) retire(sever bool) int {
	l := c.l()
	c.markIfServerClosed() // borrowcheck.go: before its socket is closed
	n := 0
	if sever && l.socks != nil {
		// Closed without a goodbye on a path that may be dead: the server
		// may keep the session (an orphan to reap).
		l.bad.Store(true)
		n = l.socks.closeAll()
	}
	l.close()
	return n
}

// renew replaces a retired or stale driver conn with a new one. Nothing of
// the caller's has been sent. On failure the conn stays retired and the
// caller gets driver.ErrBadConn (database/sql then retries, and a new
// connection attempt reports the real error).
func (c *conn) renew(ctx context.Context) error {
	rc, err := c.p.conn.dialGated(ctx)
	if err != nil {
		if c.p.cfg.Observer.Timeout != nil {
			c.p.connectTimedOut(ctx, err) // observe.go
		}
		c.state.Store(stateRetired)
		if errors.Is(err, ErrTunnelDown) && ctx.Err() != nil {
			// The caller's deadline ended at the gate: say so. database/sql
			// would turn driver.ErrBadConn into a bare context error at its
			// retry (sql.go, DB.conn checks ctx.Done first), and it ignores
			// any other error from ResetSession (sql.go:1348), so the
			// statement meets the gate again in enter and returns this.
			return err
		}
		return driver.ErrBadConn
	}
	c.link.Store(rc)
	c.usedAt.Store(c.p.monoNow()) // a new connection: no liveness ping at its next borrow
	c.state.Store(stateBusy)
	c.p.stats.renewed.Add(1)
	return nil
}

// enter marks the conn busy before an operation. database/sql lends a conn
// its background opener made without calling ResetSession, so enter does
// what ResetSession would have (renew, liveness), minus the driver's own
// session reset, which database/sql did not ask for.
func (c *conn) enter(ctx context.Context) error {
	for {
		switch s := c.state.Load(); s {
		case stateBusy:
			return nil
		case stateClosed:
			return driver.ErrBadConn
		case stateProbing:
			c.awaitProbe()
		default: // fresh, retired, or idle without a ResetSession
			if c.state.CompareAndSwap(s, stateBusy) {
				_, err := c.ready(ctx, s, c.p.borrowNow())
				if err == nil {
					err = c.borrowCheck(ctx) // borrowcheck.go
				}
				c.entered(ctx, err) // observe.go: lent without ResetSession
				return err
			}
		}
	}
}

func (c *conn) awaitProbe() {
	c.probeMu.Lock()
	ch := c.probeDone
	c.probeMu.Unlock()
	if ch != nil {
		<-ch
	}
}

// observe classifies an operation's error. A lost connection is marked bad
// (so database/sql discards it on return), reported to the pool, and
// wrapped in a *LostError that says whether the statement may have run.
func (c *conn) observe(ctx context.Context, err error) error {
	return c.observeOp(ctx, err, true)
}

// trustUnsent is taken before an operation: may a "nothing was sent" error
// from it be believed? See Driver.ClosedAtStart.
func (c *conn) trustUnsent() bool {
	f := c.p.drv.ClosedAtStart
	return f == nil || f(c.l().inner)
}

// closedAtStart is taken before an operation: was the driver conn already
// closed (by the driver, after an earlier error or the caller's own
// cancel)? Then nothing of this operation can have reached the server and
// its error says nothing new about the path.
func (c *conn) closedAtStart() bool {
	f := c.p.drv.ClosedAtStart
	return f != nil && f(c.l().inner)
}

// observeOp is observe for an operation that may have sent a statement;
// trust says whether the driver's "unsent" verdict can be believed.
func (c *conn) observeOp(ctx context.Context, err error, trust bool) error {
	if err == nil {
		c.ops.Add(1)
		return nil
	}
	// The caller's own cancellation is not evidence about the path.
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		c.l().orphanable.Store(true)
		return err
	}
	v := c.p.classify(err)
	if !v.IsLost() {
		c.ops.Add(1) // the server answered: the path works
		return err
	}
	if v == detect.LostUnsent && !trust {
		v = detect.Lost
	}
	c.l().bad.Store(true)
	c.p.connLost(c, err)
	if errors.Is(err, driver.ErrBadConn) && v == detect.LostUnsent {
		return err
	}
	return &LostError{Err: redactErr(err, c.p.secrets), Unsent: v == detect.LostUnsent}
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	g := c.guard(ctx)
	var st driver.Stmt
	var err error
	if pc, ok := c.l().inner.(driver.ConnPrepareContext); ok {
		st, err = pc.PrepareContext(ctx, query)
	} else {
		st, err = c.l().inner.Prepare(query)
		if err == nil && ctx.Err() != nil {
			st.Close()
			st, err = nil, ctx.Err()
		}
	}
	g.done()
	if err = c.observe(ctx, err); err != nil {
		return nil, err
	}
	return wrapStmt(c, st), nil
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	g := c.guard(ctx)
	var tx driver.Tx
	var err error
	if bt, ok := c.l().inner.(driver.ConnBeginTx); ok {
		tx, err = bt.BeginTx(ctx, opts)
	} else if opts.Isolation != 0 || opts.ReadOnly {
		err = errors.New("pool: driver does not support non-default isolation or read-only transactions")
	} else {
		tx, err = c.l().inner.Begin() // the driver has nothing newer
	}
	g.done()
	if err = c.observe(ctx, err); err != nil {
		return nil, err
	}
	return &txConn{Tx: tx, c: c}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	var res driver.Result
	var err error
	trust := c.trustUnsent()
	l := c.l()
	if l.execer != nil {
		g := c.guard(ctx)
		res, err = l.execer.ExecContext(ctx, query, args)
		g.done()
	} else if ic, ok := l.inner.(driver.Execer); ok {
		var vals []driver.Value
		if vals, err = namedToValues(args); err == nil {
			g := c.guard(ctx)
			res, err = ic.Exec(query, vals)
			g.done()
		}
	} else {
		return nil, driver.ErrSkip
	}
	if err == driver.ErrSkip {
		return nil, err
	}
	return res, c.observeOp(ctx, err, trust)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	var rows driver.Rows
	var err error
	trust := c.trustUnsent()
	g := c.guard(ctx)
	l := c.l()
	if l.queryer != nil {
		rows, err = l.queryer.QueryContext(ctx, query, args)
	} else if ic, ok := l.inner.(driver.Queryer); ok {
		var vals []driver.Value
		if vals, err = namedToValues(args); err == nil {
			rows, err = ic.Query(query, vals)
		}
	} else {
		g.done()
		return nil, driver.ErrSkip
	}
	return c.queried(ctx, g, rows, err, trust)
}

// queried finishes a query (the conn's or a statement's): an error is
// classified; rows keep the cancel guard armed until they are closed,
// since they are read after QueryContext returns.
func (c *conn) queried(ctx context.Context, g *cancelGuard, rows driver.Rows, err error, trust bool) (driver.Rows, error) {
	if err != nil {
		g.done()
		if err == driver.ErrSkip {
			return nil, err
		}
		return nil, c.observeOp(ctx, err, trust)
	}
	c.ops.Add(1)
	if g != nil {
		return &guardedRows{Rows: rows, g: g}, nil
	}
	return rows, nil
}

func (c *conn) Ping(ctx context.Context) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	pg, ok := c.l().inner.(driver.Pinger)
	if !ok {
		return nil
	}
	g := c.guard(ctx)
	err := pg.Ping(ctx)
	g.done()
	return c.observe(ctx, err)
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if nc, ok := c.l().inner.(driver.NamedValueChecker); ok {
		return nc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// IsValid runs when database/sql returns the conn to its pool. A conn of an
// old generation, or one that was lost, is discarded.
func (c *conn) IsValid() bool {
	if c.p.cfg.Observer.ConnUsed != nil {
		c.returned() // observe.go
	}
	if c.stale() {
		return false
	}
	if v := c.l().validator; v != nil && !v.IsValid() {
		return false
	}
	// A fresh conn that was borrowed and returned unused (db.Conn, then
	// Close) stays fresh, and pooled.
	if c.state.CompareAndSwap(stateBusy, stateIdle) {
		return true
	}
	s := c.state.Load()
	return s == stateIdle || s == stateFresh
}

// ResetSession runs when database/sql lends out a reused conn. Nothing of
// the caller's has been sent yet, so a stale, retired or dead driver conn
// is replaced here with a new one, invisibly.
func (c *conn) ResetSession(ctx context.Context) error {
	err := c.resetSession(ctx)
	if c.p.cfg.Observer.ConnUsed != nil && !errors.Is(err, driver.ErrBadConn) {
		c.lent() // observe.go: database/sql lends it unless ErrBadConn
	}
	return err
}

func (c *conn) resetSession(ctx context.Context) error {
	var s int32
	for {
		s = c.state.Load()
		if s == stateProbing {
			c.awaitProbe()
			continue
		}
		if s == stateClosed {
			return driver.ErrBadConn
		}
		if s == stateBusy || c.state.CompareAndSwap(s, stateBusy) {
			break
		}
	}
	now := c.p.borrowNow()        // the coarse clock: no clock read on the hot path
	dead, blind := c.look(s, now) // borrowcheck.go: the free check
	if dead {
		return driver.ErrBadConn // discarded, as plain does
	}
	v, err := c.ready(ctx, s, now)
	if err != nil {
		return err
	}
	if blind && v == vouchRecent {
		v = vouchNone
	}
	l := c.l()
	if sr := l.resetter; sr != nil {
		// Tell the driver when the pool just checked the conn, or vouches
		// for a recent one at its first reset (pgx would ping it: see
		// ready). Otherwise the driver's own rule agrees with the pool's,
		// and the hot path allocates no context.
		if v == vouchChecked || v == vouchRecent && !l.resetOnce {
			ctx = context.WithValue(ctx, pingedKey{}, true)
		}
		l.resetOnce = true
		return sr.ResetSession(ctx)
	}
	return nil
}

// What ready knows of a conn's liveness.
type vouch int

const (
	vouchNone    vouch = iota // nothing: the driver's own rule applies
	vouchChecked              // pinged, probed or renewed just now
	vouchRecent               // connected or lent out within LivenessIdle
)

// ready makes a conn just taken from the idle list (it was in state
// prev) fit for use: renewed if retired or stale, pinged with the pool's
// own deadline if it sat idle for longer than LivenessIdle, and renewed if
// that ping failed. Only driver.ErrBadConn comes out of it: nothing has
// been sent. It reports what the pool knows of the conn it leaves (so the
// driver's own reset need not ping it): just checked, or recent.
func (c *conn) ready(ctx context.Context, prev int32, now int64) (vouch, error) {
	if prev == stateRetired {
		return vouchChecked, c.renew(ctx)
	}
	if c.stale() {
		c.retire(false)
		return vouchChecked, c.renew(ctx)
	}
	if c.p.gate.blocked() {
		// The path is checked down, or a DOWN's check runs: no new work
		// goes into it, on a pooled conn either. The borrower waits at the
		// gate (DownWait in all) and goes on with this conn when it opens.
		if err := c.p.gate.wait(ctx, c.p.cfg.DownWait); err != nil {
			// Retired, so that database/sql, which ignores a ResetSession
			// error other than driver.ErrBadConn, cannot send the statement
			// on it: the statement meets the gate again (renew).
			c.retire(false)
			c.state.Store(stateRetired)
			if ctx.Err() != nil {
				return vouchNone, err
			}
			return vouchNone, driver.ErrBadConn
		}
		now = c.p.monoNow() // after the wait
	}
	if c.p.cfg.LivenessIdle != off {
		used := c.usedAt.Swap(now)
		probed := c.probedAt.Load()
		if probed > used && time.Duration(now-probed) <= c.p.cfg.LivenessIdle {
			// The supervisor pinged it since it was last lent out, and not
			// long ago: that was this borrow's check, and the driver's (a
			// ping now would be a second round trip, one more chance to
			// meet a lost packet on a lossy path).
			return vouchChecked, nil
		}
		if time.Duration(now-used) > c.p.cfg.LivenessIdle {
			if err := c.checkLiveness(ctx); err != nil {
				c.retire(true)
				if ctx.Err() != nil {
					c.state.Store(stateRetired)
					return vouchNone, driver.ErrBadConn
				}
				return vouchChecked, c.renew(ctx)
			}
			return vouchChecked, nil
		}
		// Connected or lent out within LivenessIdle: the pool's rule says
		// no ping, and the driver's must not add one. pgx pings a conn on
		// its first reset whatever its age (stdlib/sql.go:577-580: idle is
		// measured from a zero time), so a conn the pool rebuilt after an
		// outage would pay a round trip on its first real use.
		return vouchRecent, nil
	}
	return vouchNone, nil
}

// Raw returns the driver's own conn under the wrapper, the convention of
// wrapping drivers (otelsql, sqlmw): code that unwraps through several
// wrappers keeps working. See DriverConn. A conn whose driver conn a reset
// closed gets a new one first (bounded by Config.ConnectTimeout).
func (c *conn) Raw() driver.Conn {
	c.enter(context.Background()) // on failure the closed driver conn is returned and its use fails
	return c.l().inner
}

// Close is database/sql's final close of the conn.
func (c *conn) Close() error {
	prev := c.state.Swap(stateClosed)
	if prev == stateClosed {
		return nil
	}
	if c.p.cfg.Observer.ConnUsed != nil {
		c.closed(prev) // observe.go
	}
	var err error
	// A conn the supervisor is pinging (DB.Close closes idle conns before
	// it stops the pool, so while a probe can run) is closed by the probe
	// when its ping ends (probeIdle): closing it here would race with the
	// driver's ping.
	if prev != stateRetired && prev != stateProbing {
		err = c.l().close()
	}
	c.p.unregister(c)
	return err
}

// txConn watches Commit and Rollback: a connection lost during Commit leaves
// the transaction's outcome unknown.
type txConn struct {
	driver.Tx
	c *conn
}

func (t *txConn) Commit() error {
	if t.c.closedAtStart() {
		// COMMIT cannot be sent on a closed conn (pgx after a cancelled
		// statement in the transaction): the driver's error, as plain
		// database/sql returns it; the transaction was not committed.
		err := t.Tx.Commit()
		if err != nil {
			t.c.l().bad.Store(true)
		}
		return err
	}
	trust := t.c.trustUnsent()
	return t.c.observeOp(context.Background(), t.Tx.Commit(), trust)
}

// Rollback's error is returned as the driver gave it: whatever happened to
// the connection, the transaction was not committed.
func (t *txConn) Rollback() error {
	err := t.Tx.Rollback()
	if err != nil && t.c.p.classify(err).IsLost() {
		t.c.l().bad.Store(true)
		t.c.p.connLost(t.c, err)
	}
	return err
}

func namedToValues(named []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(named))
	for i, nv := range named {
		if nv.Name != "" {
			return nil, errors.New("pool: driver does not support named parameters")
		}
		vals[i] = nv.Value
	}
	return vals, nil
}
