package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// errConnector fails every Connect with what connect returns; it dials
// first when it has a dial func (socket control).
type errConnector struct {
	dial    DialFunc
	addr    string
	connect func(ctx context.Context, c net.Conn) error
}

func (e *errConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var c net.Conn
	if e.dial != nil {
		var err error
		if c, err = e.dial(ctx, "tcp", e.addr); err != nil {
			return nil, err
		}
		defer c.Close()
	}
	return nil, e.connect(ctx, c)
}

func (e *errConnector) Driver() driver.Driver { return nil }

type loginError struct{ code int }

func (e *loginError) Error() string { return "login refused" }

var errSentinel = errors.New("driver: sentinel")

// Connect errors reach the caller as the driver returned them: `==` and
// type assertions hold as with plain database/sql (on main they came
// wrapped in *detect.ConnectError).
func TestConnectErrorsKeepIdentity(t *testing.T) {
	typed := &loginError{code: 1045}
	for _, tc := range []struct {
		name string
		err  error
	}{{"sentinel", errSentinel}, {"typed", typed}} {
		t.Run(tc.name, func(t *testing.T) {
			p := OpenDB(&errConnector{connect: func(context.Context, net.Conn) error { return tc.err }}, quietConfig())
			defer p.Close()
			_, err := p.DB().Exec("SELECT 1")
			if err != tc.err {
				t.Fatalf("got %T %v; want the driver's error itself", err, err)
			}
		})
	}
	t.Run("caller deadline, driver honours it", func(t *testing.T) {
		// Like mysql: a watcher ends the read when ctx ends, a little
		// later, and the driver then returns ctx.Err(). The pool must not
		// close the socket first (it would turn the error into the read's).
		addr := silentListener(t)
		p, err := OpenWithDialer(func(dial DialFunc) (driver.Connector, error) {
			return &errConnector{dial: dial, addr: addr, connect: func(ctx context.Context, c net.Conn) error {
				stop := context.AfterFunc(ctx, func() {
					time.Sleep(10 * time.Millisecond)
					c.SetReadDeadline(time.Unix(1, 0))
				})
				defer stop()
				_, err := c.Read(make([]byte, 1))
				if ctx.Err() != nil && errors.Is(err, errDeadline) {
					return ctx.Err()
				}
				return errSentinel // mysql's ErrInvalidConn: the socket went away
			}}, nil
		}, quietConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err = p.DB().ExecContext(ctx, "SELECT 1")
		if err != context.DeadlineExceeded {
			t.Fatalf("got %T %v; want context.DeadlineExceeded itself", err, err)
		}
	})
	t.Run("pool's ConnectTimeout says so", func(t *testing.T) {
		cfg := quietConfig()
		cfg.ConnectTimeout = 30 * time.Millisecond
		p := OpenDB(&errConnector{connect: func(ctx context.Context, _ net.Conn) error {
			<-ctx.Done()
			return ctx.Err()
		}}, cfg)
		defer p.Close()
		_, err := p.DB().Exec("SELECT 1")
		if err == nil || !strings.Contains(err.Error(), "Config.ConnectTimeout") || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v; want the pool's ConnectTimeout named, wrapping DeadlineExceeded", err)
		}
	})
}

// A password in a driver's connect error never gets through: redaction
// wins over identity, and the chain under it stays reachable.
func TestConnectErrorRedactionWins(t *testing.T) {
	const name = "flapguard-identity-test"
	inner := &loginError{code: 1045}
	RegisterDriver(name, Driver{NewConnector: func(dsn string, dial DialFunc) (driver.Connector, error) {
		return &errConnector{connect: func(context.Context, net.Conn) error {
			return &wrapErr{msg: "login as app:s3cretpw@db refused", err: inner}
		}}, nil
	}})
	p, err := Open(name, "postgres://app:s3cretpw@db/x", quietConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.DB().Exec("SELECT 1")
	if err == nil || strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("got %v; want an error without the password", err)
	}
	var le *loginError
	if !errors.As(err, &le) || le != inner {
		t.Fatalf("errors.As to the driver's typed error failed through the redaction: %T %v", err, err)
	}
	for e := error(err); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), "s3cretpw") {
			t.Fatalf("a link of the chain carries the password: %T %q", e, e.Error())
		}
	}
}

type wrapErr struct {
	msg string
	err error
}

func (e *wrapErr) Error() string { return e.msg }
func (e *wrapErr) Unwrap() error { return e.err }

var errDeadline = os.ErrDeadlineExceeded
