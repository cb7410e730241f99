package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strconv"
	"time"
)

// Observer hands a metrics exporter what Stats, which keeps totals, cannot:
// each connect with its duration, each borrow's use of a connection, and
// each timeout while a request obtains one. otelflapguard builds the
// OpenTelemetry instruments db.client.connection.create_time, use_time and
// timeouts on it. Set it as Config.Observer; every field is optional.
//
// A pool whose Observer has no func set pays nothing for it: no wrapper is
// installed, and where a hook sits on the borrow and return path it is one
// nil check. With ConnUsed set, each borrow and each return reads the
// monotonic clock once more; nothing allocates per query.
//
// The funcs are called synchronously, on the goroutine of the request (or
// of the pool's own work) that caused the event, concurrently from many
// goroutines, outside the pool's locks; ConnUsed and Timeout may run
// inside database/sql's lock of the connection concerned. So they must be
// fast, must not block, and must not call into the pool or its *sql.DB; a
// panic reaches the request, as with OnEvent. Synchronous on purpose: a
// counter or histogram records in well under a microsecond without
// blocking (OpenTelemetry's SDK does), while a hand-off to another
// goroutine costs a channel send per query and, when its buffer is full,
// either blocks the request or drops the event, and a dropped event would
// make the counts wrong. An Observer that needs slow work does it
// elsewhere.
//
// No DSN or password reaches them: an error is redacted as the pool's logs
// are.
type Observer struct {
	// ConnCreated is called after each call of the driver's Connect the
	// pool makes, whatever it was for: a request's new connection, a pooled
	// connection renewed at borrow, the checks' fresh connections (kept as
	// the next connect's spare, or closed), the background rebuild, orphan
	// reaping. d is how long the driver's Connect took (dial, TLS, login);
	// err is nil when it made a connection, or the driver's error
	// (redacted). The calls with a nil error add up to Stats.Connects, but
	// for one race: with socket control, a connect the pool cuts just as it
	// completes, because the path came back while it ran, is reported with
	// a nil error, closed and tried again, and Stats.Connects does not
	// count it.
	ConnCreated func(d time.Duration, err error)

	// ConnUsed is called when database/sql gets a borrowed connection back,
	// with the time since it was lent. database/sql tells a driver neither
	// event, so the pool takes them from the calls it does make (Go 1.26
	// database/sql/sql.go):
	//
	//   - lent: ResetSession, which DB.conn calls on a connection taken from
	//     the idle list (sql.go:1348, or :1421 for one handed to a waiting
	//     request), through driverConn.resetSession (sql.go:596-607), unless
	//     it returned driver.ErrBadConn (then database/sql closes it, and no
	//     use began);
	//   - returned: Validator.IsValid, which putConn calls on every return
	//     (sql.go:1481-1486, through driverConn.validateConnection,
	//     sql.go:611-622), or, for a connection returned with
	//     driver.ErrBadConn, where putConn skips IsValid, its Close.
	//
	// A connection database/sql has never had back gets no ResetSession
	// when it is lent (driverConn.needReset is set only by a return, and
	// resetSession does nothing without it): it is taken as lent when the
	// pool made it, which is when DB.conn lends a new connection to the
	// request that asked for it (sql.go:1429-1448). One made by
	// database/sql's background opener for a waiting request that was
	// served meanwhile sits in the idle list first (putConnDBLocked,
	// sql.go:1542-1560), and nothing tells the pool when it is borrowed:
	// its first use is measured from its creation, so it includes that idle
	// time. (Closed without having been lent, it is no use.)
	//
	// Every borrow counts, the pool's own too: the background rebuild after
	// a reset borrows the connections it readies, as DBStats.InUse shows.
	ConnUsed func(d time.Duration)

	// Timeout is called for each timeout flapguard sees while a request
	// obtains a connection (see TimeoutKind). database/sql's own wait for a
	// free connection at SetMaxOpenConns is invisible to a driver: a wait
	// that ends with the request's context (DB.conn, sql.go:1370-1396)
	// tells the driver nothing, so it is never reported here
	// (DBStats.WaitCount and WaitDuration count those waits, ended or
	// not). The pool's own connects (its checks, the background rebuild,
	// orphan reaping) are not requests and are not reported.
	Timeout func(kind TimeoutKind)
}

// TimeoutKind says what timed out (Observer.Timeout).
type TimeoutKind uint8

const (
	// TimeoutGate: a request that needed a connection while the gate was
	// shut (a check found the path down, see Config.DownWait) was refused
	// there: DownWait passed (at once when DownWait is negative), or its
	// own context ended while it waited. Its error matches ErrTunnelDown.
	// database/sql meets the gate up to three times for one request (its
	// retries of driver.ErrBadConn), and the wait is DownWait in all; it is
	// reported once, where the refusal becomes the request's error: the
	// pool's connector, or the pool's connection at an operation. Not
	// reported: a refusal that reaches the caller as driver.ErrBadConn,
	// which happens where database/sql does not retry, an operation on a
	// sql.Conn whose connection, lent without ResetSession, met the shut
	// gate at its first use, or the last of a request's retries when it
	// was handed a connection another request returned.
	TimeoutGate TimeoutKind = iota + 1

	// TimeoutConnect: a connect made for a request ended at a deadline:
	// Config.ConnectTimeout, Config.DialTimeout, the request's own
	// deadline, or the kernel's (a dial whose error is a timeout). Each
	// connect is reported, so a request that renewed a pooled connection
	// in vain and then made a new one can report two.
	TimeoutConnect
)

// String returns "gate" or "connect".
func (k TimeoutKind) String() string {
	switch k {
	case TimeoutGate:
		return "gate"
	case TimeoutConnect:
		return "connect"
	}
	return "TimeoutKind(" + strconv.Itoa(int(k)) + ")"
}

// lent marks the conn borrowed now: ConnUsed measures from here. Called
// only when ConnUsed is set.
func (c *conn) lent() { c.lentAt.Store(c.p.monoNow()) }

// returned reports the use that ends now, if one began (lent). Called
// only when ConnUsed is set.
func (c *conn) returned() {
	if t := c.lentAt.Swap(0); t != 0 {
		c.p.cfg.Observer.ConnUsed(time.Duration(c.p.monoNow() - t))
	}
}

// closed ends the conn's use at its Close, which database/sql calls on a
// conn it had back with driver.ErrBadConn (putConn skipped IsValid), and
// on idle conns it discards: only a conn in use (busy) was lent; a fresh
// one stamped when it was made, closed from the idle list, never was.
// Called only when ConnUsed is set.
func (c *conn) closed(prev int32) {
	if prev == stateBusy {
		c.returned()
	} else {
		c.lentAt.Store(0)
	}
}

// watchedConnector is what database/sql holds when Observer.Timeout is
// set: the pool's connector, whose failed connects it looks at.
type watchedConnector struct{ *connector }

// Connect is database/sql's connect: a request's (or its opener's, for a
// waiting request), or the rebuild's. Its error is the request's own
// (database/sql does not retry it), so a gate refusal in it is reported
// here, as well as a connect timeout.
func (w watchedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := w.connector.Connect(ctx)
	if err != nil {
		w.p.refusedAtGate(ctx, err)
		w.p.connectTimedOut(ctx, err)
	}
	return cn, err
}

// timedConnector wraps the driver's connector when Observer.ConnCreated
// is set: it times each Connect.
type timedConnector struct {
	driver.Connector
	p *Pool
}

func (t timedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	start := t.p.monoNow()
	ic, err := t.Connector.Connect(ctx)
	t.p.cfg.Observer.ConnCreated(time.Duration(t.p.monoNow()-start), redactErr(err, t.p.secrets))
	return ic, err
}

// Close closes the driver's connector if it is an io.Closer, as
// connector.Close would without the wrapper.
func (t timedConnector) Close() error {
	if cl, ok := t.Connector.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// timeConnects wraps the driver's connector if ConnCreated is set.
func (p *Pool) timeConnects(inner driver.Connector) driver.Connector {
	if p.cfg.Observer.ConnCreated == nil || inner == nil {
		return inner
	}
	return timedConnector{Connector: inner, p: p}
}

// watchConnects is the connector database/sql gets: c, watched if Timeout
// is set.
func (p *Pool) watchConnects(c *connector) driver.Connector {
	if p.cfg.Observer.Timeout == nil {
		return c
	}
	return watchedConnector{c}
}

// refusedAtGate reports a gate refusal in err, the error a request gets
// for its operation or connect (not one database/sql retries: the retries
// end in one that is reported). Called only when Timeout is set; not on
// the hot path.
func (p *Pool) refusedAtGate(ctx context.Context, err error) {
	if k, ok := timeoutIn(ctx, err); ok && k == TimeoutGate && !rebuilding(ctx) {
		p.cfg.Observer.Timeout(TimeoutGate)
	}
}

// connectTimedOut reports err, a request's failed connect (or its refusal
// at the gate, not reported here), if the connect ended at a deadline.
// Called only when Timeout is set.
func (p *Pool) connectTimedOut(ctx context.Context, err error) {
	if k, ok := timeoutIn(ctx, err); ok && k == TimeoutConnect && !rebuilding(ctx) {
		p.cfg.Observer.Timeout(TimeoutConnect)
	}
}

// rebuilding: ctx is the background rebuild's (rebuild.go), a borrow of
// the pool's own, not a request.
func rebuilding(ctx context.Context) bool {
	_, ok := ctx.Value(rebuildKey{}).(bool)
	return ok
}

// timeoutIn tells the timeout err is, if any: a refusal at the gate, or a
// connect that ended at a deadline (ctx's, or the pool's own bounds, or a
// dial's).
func timeoutIn(ctx context.Context, err error) (TimeoutKind, bool) {
	switch {
	case errors.Is(err, ErrTunnelDown):
		return TimeoutGate, true
	case errors.Is(err, ErrClosed):
		return 0, false
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() == context.DeadlineExceeded:
		return TimeoutConnect, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return TimeoutConnect, true
	}
	return 0, false
}

// entered follows enter's readying of a conn database/sql lent without
// ResetSession: a conn not lent as far as ConnUsed knows is lent now, or
// the request's error is a refusal at the gate. Not on the hot path (once
// per such borrow).
func (c *conn) entered(ctx context.Context, err error) {
	o := &c.p.cfg.Observer
	switch {
	case err == nil && o.ConnUsed != nil:
		// Lent when it was made, unless database/sql had it back since
		// (returned unused by a request that stopped waiting for it, so
		// with no ResetSession at its next borrow): lent now.
		c.lentAt.CompareAndSwap(0, c.p.monoNow())
	case err != nil && o.Timeout != nil:
		c.p.refusedAtGate(ctx, err)
	}
}
