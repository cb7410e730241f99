package pool

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDriver is a small database/sql driver for the pool's own logic, in
// the spirit of database/sql's fakedb_test.go. A fakeConn can be given a
// real socket (dialed through the pool's DialFunc to a loopback listener
// that never answers) so that "hung in the driver" means blocked in a real
// read, and severing means closing a real socket.
type fakeDriver struct {
	dial DialFunc // nil: no socket
	addr string

	opened, closed atomic.Int64
	blocked        atomic.Int64 // conns blocked in a socket read right now
	pings          atomic.Int64
	queries        atomic.Int64

	mu    sync.Mutex // protects conns
	conns []*fakeConn

	connectErr  atomic.Pointer[error]
	dead        atomic.Bool                  // the path is dead: pings hang until their deadline, connects fail
	connectHang atomic.Bool                  // the login hangs in a socket read (a dead path)
	connectHook atomic.Pointer[func() error] // if set, called first by Connect (tests that hold a probe)
	connectWait atomic.Bool                  // Connect waits for its context to end, and returns its error

	// execErrs and commitErrs, when they hold an error, make the next Exec
	// or Commit fail with it.
	execErrs   chan error
	commitErrs chan error
	execs      atomic.Int64

	// resets counts ResetSession calls; vouched those where the pool
	// vouched for the conn (Pinged), so a pgx-like driver would not ping.
	resets, vouched atomic.Int64
	// resetErrs, when it holds an error, makes the next ResetSession fail
	// with it.
	resetErrs chan error
}

func (d *fakeDriver) nextErr(ch chan error) error {
	if ch == nil {
		return nil
	}
	select {
	case err := <-ch:
		return err
	default:
		return nil
	}
}

// readLate is how long ping mode 4 leaves the answer unread.
const readLate = 150 * time.Millisecond

// ResetSession records whether the pool vouched for the conn (Pinged).
func (c *fakeConn) ResetSession(ctx context.Context) error {
	c.d.resets.Add(1)
	if Pinged(ctx) {
		c.d.vouched.Add(1)
	}
	return c.d.nextErr(c.d.resetErrs)
}

type fakeConn struct {
	d      *fakeDriver
	sock   net.Conn
	closed atomic.Bool
	bad    atomic.Bool
	// pingMode: 0 answers; 1 hangs until ctx ends (a driver that honours
	// ctx); 2 hangs in a socket read, ignoring ctx (go-mssqldb waiting for
	// ATTENTION confirmation).
	pingMode atomic.Int32
	gone     chan struct{}
}

func (d *fakeDriver) Connect(ctx context.Context) (driver.Conn, error) {
	if h := d.connectHook.Load(); h != nil {
		if err := (*h)(); err != nil {
			return nil, err
		}
	}
	if p := d.connectErr.Load(); p != nil {
		return nil, *p
	}
	if d.dead.Load() {
		return nil, errDeadPath
	}
	if d.connectWait.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c := &fakeConn{d: d, gone: make(chan struct{})}
	if d.dial != nil {
		s, err := d.dial(ctx, "tcp", d.addr)
		if err != nil {
			return nil, err
		}
		c.sock = s
		if d.connectHang.Load() {
			_, err := s.Read(make([]byte, 1)) // until the socket is closed
			return nil, err
		}
	}
	d.opened.Add(1)
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c, nil
}

func (d *fakeDriver) Driver() driver.Driver { return nil }

func (d *fakeDriver) all() []*fakeConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*fakeConn(nil), d.conns...)
}

func (c *fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake: no prepare") }
func (c *fakeConn) Begin() (driver.Tx, error)           { return fakeTx{c.d}, nil }

func (c *fakeConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.d.closed.Add(1)
		close(c.gone)
		if c.sock != nil {
			c.sock.Close()
		}
	}
	return nil
}

func (c *fakeConn) Ping(ctx context.Context) error {
	c.d.pings.Add(1)
	if c.closed.Load() {
		return driver.ErrBadConn
	}
	if c.d.dead.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	switch c.pingMode.Load() {
	case 1:
		<-ctx.Done()
		return ctx.Err()
	case 2:
		return c.blockInRead()
	case 3:
		// The ping reaches the server, whose kernel acknowledges it, but
		// no answer comes (a stopped server, or a proxy in front of a
		// dead path).
		if c.sock != nil {
			if _, err := c.sock.Write([]byte{0}); err != nil {
				return err
			}
		}
		return c.blockInRead()
	case 4:
		// The server answers at once, but this driver reads the answer
		// only after readLate (a process starved of CPU).
		if _, err := c.sock.Write([]byte{'E'}); err != nil {
			return err
		}
		time.Sleep(readLate)
		return c.blockInRead()
	}
	return nil
}

// blockInRead waits in a real socket read until the socket is closed.
func (c *fakeConn) blockInRead() error {
	if c.sock == nil {
		<-c.gone
		return io.EOF
	}
	c.d.blocked.Add(1)
	defer c.d.blocked.Add(-1)
	_, err := c.sock.Read(make([]byte, 1))
	return err
}

// QueryContext: "hang" blocks in the socket (ignoring ctx); anything else
// returns one row.
func (c *fakeConn) QueryContext(ctx context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	c.d.queries.Add(1)
	if c.closed.Load() || c.bad.Load() {
		return nil, driver.ErrBadConn
	}
	if q == "hang" {
		return nil, c.blockInRead()
	}
	return &fakeRows{}, nil
}

func (c *fakeConn) ExecContext(ctx context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	c.d.queries.Add(1)
	if c.closed.Load() || c.bad.Load() {
		return nil, driver.ErrBadConn
	}
	if q == "hang" {
		return nil, c.blockInRead()
	}
	if err := c.d.nextErr(c.d.execErrs); err != nil {
		return nil, err
	}
	c.d.execs.Add(1)
	return driver.RowsAffected(1), nil
}

type fakeTx struct{ d *fakeDriver }

func (t fakeTx) Commit() error { return t.d.nextErr(t.d.commitErrs) }
func (fakeTx) Rollback() error { return nil }

type fakeRows struct{ done bool }

func (r *fakeRows) Columns() []string { return []string{"x"} }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(1)
	return nil
}

// silentListener accepts connections and never answers: reads on the
// client side block until the client closes its socket.
func silentListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			go func() {
				// It answers one thing: a byte 'E' gets a byte back.
				b := make([]byte, 64)
				for {
					n, err := c.Read(b)
					if err != nil {
						return
					}
					if bytes.IndexByte(b[:n], 'E') >= 0 {
						c.Write([]byte{'R'})
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// quietConfig turns off the prober so tests control every step.
func quietConfig() Config {
	return Config{ProbeInterval: -1}
}

// openFake opens a pool over a fakeDriver, with socket control when
// withSockets.
func openFake(t testing.TB, cfg Config, withSockets bool) (*Pool, *fakeDriver) {
	t.Helper()
	d := &fakeDriver{}
	var p *Pool
	if withSockets {
		d.addr = silentListener(t)
		var err error
		p, err = OpenWithDialer(func(dial DialFunc) (driver.Connector, error) {
			d.dial = dial
			return d, nil
		}, cfg)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		p = OpenDB(d, cfg)
	}
	t.Cleanup(func() { p.Close() })
	return p, d
}

var errDeadPath = errors.New("dial tcp 10.0.0.1:1433: connect: connection timed out")

// kill makes the fake path dead (a tunnel down): connects fail and pings
// hang until their deadline; revive brings it back.
func (d *fakeDriver) kill()   { d.dead.Store(true) }
func (d *fakeDriver) revive() { d.dead.Store(false) }
