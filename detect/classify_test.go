package detect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/flapguard/flapguard/internal/nettest"
	"time"
)

// Rows marked "constructed" build the error value by hand; rows marked
// "real" come from real sockets on loopback (this file) or the real
// go-mssqldb driver (classify_mssql_test.go).

func TestDefaultConstructed(t *testing.T) {
	readReset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want Verdict
	}{
		{"constructed/nil", nil, Alive},
		{"constructed/plain error", errors.New("boom"), Alive},
		{"constructed/sql.ErrNoRows", sql.ErrNoRows, Alive},
		{"constructed/sql.ErrTxDone", sql.ErrTxDone, Alive},
		{"constructed/ErrBadConn", driver.ErrBadConn, LostUnsent},
		{"constructed/wrapped ErrBadConn", fmt.Errorf("exec: %w", driver.ErrBadConn), LostUnsent},
		{"constructed/context.Canceled", context.Canceled, Alive},
		{"constructed/context.DeadlineExceeded", context.DeadlineExceeded, Alive},
		{"constructed/wrapped DeadlineExceeded", fmt.Errorf("q: %w", context.DeadlineExceeded), Alive},
		{"constructed/io.EOF", io.EOF, Lost},
		{"constructed/io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, Lost},
		{"constructed/net.ErrClosed", net.ErrClosed, Lost},
		{"constructed/ECONNRESET errno", syscall.ECONNRESET, Lost},
		{"constructed/ECONNABORTED errno", syscall.ECONNABORTED, Lost},
		{"constructed/EPIPE errno", syscall.EPIPE, Lost},
		{"constructed/ETIMEDOUT errno", syscall.ETIMEDOUT, Lost},
		{"constructed/EHOSTUNREACH errno", syscall.EHOSTUNREACH, Lost},
		{"constructed/ENETUNREACH errno", syscall.ENETUNREACH, Lost},
		{"constructed/ECONNREFUSED errno", syscall.ECONNREFUSED, LostUnsent},
		{"constructed/EMFILE errno", syscall.EMFILE, Alive},
		{"constructed/read OpError", readReset, Lost},
		{"constructed/dial OpError refused", dialRefused, LostUnsent},
		{"constructed/dial OpError unreachable", &net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, LostUnsent},
		{"constructed/dial OpError bad address", &net.OpError{Op: "dial", Err: &net.AddrError{Err: "missing port", Addr: "x"}}, Alive},
		{"constructed/DNSError", &net.DNSError{Err: "no such host", Name: "db.internal", IsNotFound: true}, LostUnsent},
		{"constructed/AddrError", &net.AddrError{Err: "missing port"}, Alive},
		{"constructed/UnknownNetworkError", net.UnknownNetworkError("tcp9"), Alive},
		{"constructed/ConnectError wrapping EOF", &ConnectError{Err: io.EOF}, LostUnsent},
		{"constructed/ConnectError wrapping auth failure", &ConnectError{Err: errors.New("login failed")}, LostUnsent},
		{"constructed/ConnectError wrapping Canceled", &ConnectError{Err: context.Canceled}, Alive},
		{"constructed/ErrBadConn-Is wrapping a read reset", isBadConn{readReset}, LostUnsent},
		{"constructed/ErrBadConn-Is wrapping Canceled", isBadConn{context.Canceled}, Alive},
		// Chains: Lost wins over Alive and over LostUnsent.
		{"constructed/join ErrBadConn+read reset", errors.Join(driver.ErrBadConn, readReset), Lost},
		{"constructed/join Canceled+EOF", errors.Join(context.Canceled, io.EOF), Lost},
		{"constructed/join plain+ErrBadConn", errors.Join(errors.New("x"), driver.ErrBadConn), LostUnsent},
		{"constructed/multi-%w Canceled+reset", fmt.Errorf("%w; %w", context.Canceled, readReset), Lost},
		{"constructed/deep wrap", fmt.Errorf("a: %w", fmt.Errorf("b: %w", errors.Join(errors.New("c"), fmt.Errorf("d: %w", io.EOF)))), Lost},
		{"constructed/join of nils and plain", errors.Join(errors.New("a"), errors.New("b")), Alive},
		{"constructed/net.Error timeout (not context)", timeoutErr{}, Lost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := generic(tt.err); got != tt.want {
				t.Fatalf("generic(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

type isBadConn struct{ err error }

func (e isBadConn) Error() string        { return "bad conn: " + e.err.Error() }
func (e isBadConn) Unwrap() error        { return e.err }
func (e isBadConn) Is(target error) bool { return target == driver.ErrBadConn }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// cyclic unwraps to itself forever: errors.Is would never return.
type cyclic struct{}

func (c *cyclic) Error() string { return "cyclic" }
func (c *cyclic) Unwrap() error { return c }

// wide unwraps to many children, the last one lost.
type wide struct{ n int }

func (w wide) Error() string { return "wide" }
func (w wide) Unwrap() []error {
	es := make([]error, w.n)
	for i := range es {
		es[i] = errors.New("x")
	}
	es[len(es)-1] = io.EOF
	return es
}

type panicUnwrap struct{}

func (panicUnwrap) Error() string { return "p" }
func (panicUnwrap) Unwrap() error { panic("bad Unwrap") }

type panicIs struct{}

func (panicIs) Error() string     { return "p" }
func (panicIs) Is(error) bool     { panic("bad Is") }
func (panicIs) Unwrap() []error   { return nil }
func (p panicIs) String() string  { return p.Error() }
func (panicIs) Timeout() bool     { return false }
func (panicIs) Temporary() bool   { return false }
func (panicIs) SafeToRetry() bool { return false }

func TestDefaultHostileErrors(t *testing.T) {
	done := make(chan Verdict, 1)
	go func() { done <- generic(&cyclic{}) }()
	select {
	case v := <-done:
		if v != Alive {
			t.Fatalf("cyclic chain: %v, want alive", v)
		}
	case <-time.After(10 * time.Second): // a hang is the failure; this is no timing assertion
		t.Fatal("cyclic chain: Classify did not return")
	}
	if v := generic(wide{n: 10}); v != Lost {
		t.Fatalf("wide chain with EOF last: %v, want lost", v)
	}
	// Beyond the node budget the walk stops: no hang, and no Lost claimed
	// from an EOF it never saw.
	if v := generic(wide{n: 10 * maxWalkNodes}); v != Alive {
		t.Fatalf("very wide chain: %v, want alive (budget exhausted)", v)
	}
	if v := generic(panicUnwrap{}); v != Alive {
		t.Fatalf("panicking Unwrap: %v, want alive", v)
	}
	if v := generic(errors.Join(io.EOF, panicUnwrap{})); v != Lost {
		t.Fatalf("EOF then panicking Unwrap: %v, want lost (found before the panic)", v)
	}
	if v := generic(panicIs{}); v != Alive {
		t.Fatalf("panicking Is: %v, want alive", v)
	}
}

func TestClassifyOrder(t *testing.T) {
	alive := ClassifierFunc(func(error) Verdict { return Alive })
	lost := ClassifierFunc(func(error) Verdict { return Lost })
	cont := ClassifierFunc(func(error) Verdict { return Continue })
	bogus := ClassifierFunc(func(error) Verdict { return Verdict(42) })
	boom := ClassifierFunc(func(error) Verdict { panic("user classifier bug") })
	err := errors.New("x")

	if v := Classify(io.EOF); v != Lost {
		t.Fatalf("no classifiers, generic rules: %v, want lost", v)
	}
	if v := Classify(err, nil, cont, lost, alive); v != Lost {
		t.Fatalf("first non-continue: %v, want lost", v)
	}
	if v := Classify(io.EOF, bogus, alive); v != Alive {
		t.Fatalf("out-of-range verdict must count as continue: %v", v)
	}
	if v := Classify(err, boom, lost); v != Lost {
		t.Fatalf("panicking classifier must be skipped: %v", v)
	}
}

func TestClassify(t *testing.T) {
	boom := ClassifierFunc(func(error) Verdict { panic("x") })
	override := ClassifierFunc(func(err error) Verdict {
		if errors.Is(err, io.EOF) {
			return Alive // a user who knows better
		}
		return Continue
	})
	if v := Classify(io.EOF); v != Lost {
		t.Fatalf("default: %v", v)
	}
	if v := Classify(io.EOF, nil, boom, override); v != Alive {
		t.Fatalf("override asked first: %v", v)
	}
	if v := Classify(errors.New("x"), boom); v != Alive {
		t.Fatalf("never continue: %v", v)
	}
	if v := Classify(driver.ErrBadConn, override); v != LostUnsent {
		t.Fatalf("fall through to default: %v", v)
	}
}

func TestWithRules(t *testing.T) {
	type sqlErr struct{ error }
	rule := func(err error) Verdict {
		if _, ok := err.(sqlErr); ok {
			return Alive
		}
		return Continue
	}
	c := WithRules(nil, rule)
	if v := c.Classify(sqlErr{errors.New("duplicate")}); v != Alive {
		t.Fatalf("rule: %v", v)
	}
	if v := c.Classify(errors.New("unknown")); v != Continue {
		t.Fatalf("unrecognised must be continue: %v", v)
	}
	// Driver rule and generic rule combine in one walk.
	if v := c.Classify(errors.Join(sqlErr{errors.New("dup")}, io.EOF)); v != Lost {
		t.Fatalf("join: %v", v)
	}
	// A rule's LostUnsent proof overrides a Lost value inside it.
	proof := WithRules(func(err error) Verdict {
		if _, ok := err.(isBadConn); ok {
			return LostUnsent
		}
		return Continue
	})
	if v := proof.Classify(isBadConn{io.EOF}); v != LostUnsent {
		t.Fatalf("proof over EOF: %v", v)
	}
	if v := WithRules(func(error) Verdict { panic("rule bug") }).Classify(io.EOF); v != Continue {
		t.Fatalf("panicking rule: %v", v)
	}
}

// --- real socket errors on loopback ---------------------------------------

func TestDefaultRealSocketErrors(t *testing.T) {
	ctx := context.Background()
	var d net.Dialer

	t.Run("real/read after peer RST", func(t *testing.T) {
		c, err := d.DialContext(ctx, "tcp", nettest.ServeOnce(t, nettest.RSTAfterByte))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("want ECONNRESET, got %v", err)
		}
		expect(t, err, Lost)
		// The socket is dead now; a write reports EPIPE.
		_, err = c.Write([]byte("x"))
		if !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("want EPIPE, got %v", err)
		}
		expect(t, err, Lost)
	})
	t.Run("real/dial reset", func(t *testing.T) {
		// Accept-then-RST at once: the RST can beat Go's connect completion,
		// and then the dial itself fails with ECONNRESET. Either outcome is
		// real; both are judged.
		addr := nettest.ServeOnce(t, nettest.RST)
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("want ECONNRESET, got %v", err)
			}
			expect(t, err, LostUnsent)
			return
		}
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
		expect(t, err, Lost)
	})
	t.Run("real/read after peer FIN", func(t *testing.T) {
		c, err := d.DialContext(ctx, "tcp", nettest.ServeOnce(t, func(c net.Conn) { c.Close() }))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
		if err != io.EOF {
			t.Fatalf("want io.EOF, got %v", err)
		}
		expect(t, err, Lost)
	})
	t.Run("real/read on socket we closed (Sever)", func(t *testing.T) {
		c, err := d.DialContext(ctx, "tcp", nettest.ServeOnce(t, func(c net.Conn) { t.Cleanup(func() { c.Close() }) }))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		_, err = c.Read(make([]byte, 1))
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("want net.ErrClosed, got %v", err)
		}
		expect(t, err, Lost)
	})
	t.Run("real/socket deadline i/o timeout", func(t *testing.T) {
		c, err := d.DialContext(ctx, "tcp", nettest.ServeOnce(t, func(c net.Conn) { t.Cleanup(func() { c.Close() }) }))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Unix(1, 0)) // already passed: fails at once
		_, err = c.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("want os.ErrDeadlineExceeded, got %v", err)
		}
		expect(t, err, Lost)
	})
	t.Run("real/dial refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = d.DialContext(ctx, "tcp", addr)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("want ECONNREFUSED, got %v", err)
		}
		expect(t, err, LostUnsent)
	})
	t.Run("real/dial with cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := d.DialContext(cctx, "tcp", "127.0.0.1:9")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		expect(t, err, Alive)
	})
	t.Run("real/dial with expired deadline", func(t *testing.T) {
		cctx, cancel := context.WithDeadline(ctx, time.Unix(1, 0))
		defer cancel()
		_, err := d.DialContext(cctx, "tcp", "127.0.0.1:9")
		if err == nil {
			t.Fatal("dial succeeded")
		}
		// A dial that timed out (the dialer's Timeout works the same way)
		// says nothing reached a server: LostUnsent.
		expect(t, err, LostUnsent)
	})
	t.Run("real/dial missing port", func(t *testing.T) {
		_, err := d.DialContext(ctx, "tcp", "127.0.0.1")
		var ae *net.AddrError
		if !errors.As(err, &ae) {
			t.Fatalf("want *net.AddrError, got %v", err)
		}
		expect(t, err, Alive)
	})
}

func expect(t *testing.T, err error, want Verdict) {
	t.Helper()
	if got := Classify(err); got != want {
		t.Fatalf("Classify(%T %v) = %v, want %v", err, err, got, want)
	}
}

func TestClassifyConcurrent(t *testing.T) {
	var asked atomic.Int64
	c := ClassifierFunc(func(err error) Verdict {
		asked.Add(1)
		if err == io.ErrShortBuffer {
			panic("x")
		}
		return Continue
	})
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 200; i++ {
				if Classify(io.ErrShortBuffer, c) != Alive || Classify(io.EOF, c) != Lost {
					t.Error("wrong verdict")
					return
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if n := asked.Load(); n != 1600 {
		t.Fatalf("classifier asked %d times, want 1600", n)
	}
}
