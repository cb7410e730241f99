package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	created  []time.Duration // connects that made a connection
	failed   []error         // connects that failed
	used     []time.Duration
	timeouts []TimeoutKind
}

func (r *recorder) observer() Observer {
	return Observer{
		ConnCreated: func(d time.Duration, err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				r.failed = append(r.failed, err)
			} else {
				r.created = append(r.created, d)
			}
		},
		ConnUsed: func(d time.Duration) {
			r.mu.Lock()
			r.used = append(r.used, d)
			r.mu.Unlock()
		},
		Timeout: func(k TimeoutKind) {
			r.mu.Lock()
			r.timeouts = append(r.timeouts, k)
			r.mu.Unlock()
		},
	}
}

func (r *recorder) snapshot() (created []time.Duration, failed []error, used []time.Duration, timeouts []TimeoutKind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.created), slices.Clone(r.failed), slices.Clone(r.used), slices.Clone(r.timeouts)
}

func (r *recorder) usedNow() []time.Duration {
	_, _, u, _ := r.snapshot()
	return u
}

func (r *recorder) timeoutsNow() []TimeoutKind {
	_, _, _, k := r.snapshot()
	return k
}

// ConnUsed measures each borrow, on the injected clock: from ResetSession
// (a reused conn) or from its creation (a new conn, which database/sql
// lends without ResetSession) to IsValid, or to Close for a conn returned
// with driver.ErrBadConn. A borrow whose ResetSession failed with
// ErrBadConn is none, a conn returned invalid is reported once, and a new
// conn database/sql's opener made and closed while idle is none.
func TestObserverConnUsed(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	rec := &recorder{}
	cfg := quietConfig()
	cfg.LivenessIdle = -1
	cfg.now = clk.now
	cfg.Observer = rec.observer()
	p, d := openFake(t, cfg, false)
	d.execErrs = make(chan error, 1)
	d.resetErrs = make(chan error, 1)
	db := p.DB()
	db.SetMaxIdleConns(4)
	ctx := context.Background()
	want := []time.Duration{}
	check := func(step string) {
		t.Helper()
		if got := rec.usedNow(); !slices.Equal(got, want) {
			t.Fatalf("%s: ConnUsed %v, want %v", step, got, want)
		}
	}

	// A new conn: database/sql lends it without ResetSession; its use
	// begins when it is made.
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(5 * time.Millisecond)
	if _, err := c.ExecContext(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	clk.advance(7 * time.Millisecond)
	c.Close()
	want = append(want, 12*time.Millisecond)
	check("new conn, used")

	// Reused: lent at ResetSession, even with no operation.
	c, _ = db.Conn(ctx)
	clk.advance(3 * time.Millisecond)
	c.Close()
	want = append(want, 3*time.Millisecond)
	check("reused conn, returned unused")

	// Returned with driver.ErrBadConn: database/sql skips IsValid and
	// closes it; its Close ends the use.
	c, _ = db.Conn(ctx)
	clk.advance(4 * time.Millisecond)
	d.execErrs <- driver.ErrBadConn
	if _, err := c.ExecContext(ctx, "x"); !errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("exec: %v, want driver.ErrBadConn", err)
	}
	c.Close()
	want = append(want, 4*time.Millisecond)
	check("returned with ErrBadConn")

	// A reset while it is lent: IsValid reports it invalid, database/sql
	// closes it; one use.
	c, _ = db.Conn(ctx) // new: the pool has no idle conn now
	if _, err := c.ExecContext(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	clk.advance(6 * time.Millisecond)
	p.Reset("test")
	c.Close()
	want = append(want, 6*time.Millisecond)
	check("returned stale")

	// New conns, one returned without any operation.
	held, _ := db.Conn(ctx)
	if _, err := held.ExecContext(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	fresh, _ := db.Conn(ctx)
	clk.advance(2 * time.Millisecond)
	fresh.Close()
	want = append(want, 2*time.Millisecond)
	check("new conn returned unused")
	clk.advance(time.Millisecond)
	held.Close()
	want = append(want, 3*time.Millisecond)
	check("held conn")

	// ResetSession fails with ErrBadConn: database/sql closes that conn
	// (no use) and the statement runs on another.
	if n := db.Stats().Idle; n != 2 {
		t.Fatalf("idle %d, want 2", n)
	}
	d.resetErrs <- driver.ErrBadConn
	resets := d.resets.Load()
	if _, err := db.ExecContext(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if d.resets.Load() != resets+2 {
		t.Fatalf("ResetSession called %d times, want 2 (the failed one, then another conn)", d.resets.Load()-resets)
	}
	want = append(want, 0)
	check("ResetSession failed")
	if n := db.Stats().Idle; n != 1 {
		t.Fatalf("idle %d, want 1 (the failed conn discarded)", n)
	}

	// database/sql's opener makes a conn for a request waiting at
	// MaxOpenConns, which gives up before it is made: the new conn goes
	// to the idle list without having been lent, and closed from there it
	// is no use.
	db.SetMaxOpenConns(1)
	x, _ := db.Conn(ctx)
	slow := func() error { time.Sleep(100 * time.Millisecond); return nil }
	d.connectHook.Store(&slow)
	waits := db.Stats().WaitCount
	gaveUp := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		_, err := db.Conn(wctx)
		gaveUp <- err
	}()
	waitFor(t, func() bool { return db.Stats().WaitCount > waits })
	clk.advance(5 * time.Millisecond)
	d.execErrs <- driver.ErrBadConn
	x.ExecContext(ctx, "x") // x is discarded: the opener makes one for the waiting request
	x.Close()
	want = append(want, 5*time.Millisecond)
	if err := <-gaveUp; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting request: %v, want its deadline", err)
	}
	waitFor(t, func() bool { return db.Stats().Idle == 1 })
	d.connectHook.Store(nil)
	clk.advance(time.Hour)
	db.SetMaxIdleConns(-1) // closes it
	waitFor(t, func() bool { return db.Stats().OpenConnections == 0 })
	check("opener's conn closed idle")
}

var (
	registerObserverDriver sync.Once
	observerDriver         atomic.Pointer[fakeDriver] // what the registered driver connects with (-count > 1)
)

// ConnCreated times each of the driver's connects, the pool's own checks'
// too; its successes add up to Stats.Connects; its errors carry no
// password.
func TestObserverConnCreated(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	d := &fakeDriver{}
	hook := func() error { clk.advance(9 * time.Millisecond); return nil }
	d.connectHook.Store(&hook)
	observerDriver.Store(d)
	registerObserverDriver.Do(func() {
		RegisterDriver("flapguard-observer-test", Driver{NewConnector: func(string, DialFunc) (driver.Connector, error) { return observerDriver.Load(), nil }})
	})
	rec := &recorder{}
	cfg := quietConfig()
	cfg.now = clk.now
	cfg.Observer = rec.observer()
	p, err := Open("flapguard-observer-test", "postgres://app:hunter2secret@db.internal:5432/app", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if err := p.DB().PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	// A DOWN on a working path, with no idle conn to ping: its check makes
	// a connection of its own.
	c1, err := p.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if v, err := p.NotifyWait(ctx, detect.Event{Tunnel: "t", State: detect.Down, Source: "test"}); err != nil || !v.PathOK {
		t.Fatalf("DOWN on a working path: %+v, %v", v, err)
	}
	settle(t, p)
	created, failed, _, _ := rec.snapshot()
	if st := p.Stats(); uint64(len(created)) != st.Connects || st.Connects < 2 {
		t.Fatalf("ConnCreated reported %d connections, Stats.Connects %d; want equal, ≥ 2 (the ping's and the check's)", len(created), st.Connects)
	}
	for _, dur := range created {
		if dur != 9*time.Millisecond {
			t.Fatalf("connect times %v; want 9ms each (the fake clock's step)", created)
		}
	}
	if len(failed) != 0 {
		t.Fatalf("failed connects %v", failed)
	}

	errAuth := errors.New("password authentication failed")
	connectErr := fmt.Errorf("connect to app:hunter2secret@db.internal failed: %w", errAuth)
	d.connectErr.Store(&connectErr)
	p.DB().SetMaxIdleConns(-1) // the next ping needs a connect
	if err := p.DB().PingContext(ctx); err == nil {
		t.Fatal("ping succeeded with a failing connect")
	}
	settle(t, p) // the failed connect is a hint: a check's connect fails too
	created2, failed, _, _ := rec.snapshot()
	if len(failed) < 1 || len(created2) != len(created) {
		t.Fatalf("after a failed connect: %d failed, %d made (was %d); want ≥ 1, none new", len(failed), len(created2), len(created))
	}
	for _, err := range failed {
		if msg := err.Error(); strings.Contains(msg, "hunter2secret") || !strings.Contains(msg, "password authentication failed") {
			t.Fatalf("ConnCreated's error %q: want it redacted, with the rest of the message", msg)
		}
		if !errors.Is(err, errAuth) {
			t.Fatalf("ConnCreated's error %v: its chain lost the driver's cause", err)
		}
	}
}

// A request refused at the shut gate is one timeout, whichever way
// database/sql came to the gate (a retired idle conn renewed at borrow,
// its retries, a new connect), whether DownWait or its own deadline ended
// the wait; a request that gets through when the gate opens is none.
func TestObserverGateTimeouts(t *testing.T) {
	for _, wait := range []time.Duration{100 * time.Millisecond, -1} {
		t.Run(fmt.Sprint("DownWait=", wait), func(t *testing.T) {
			rec := &recorder{}
			cfg := quietConfig()
			cfg.DownWait = wait
			cfg.Observer = rec.observer()
			p, d := openFake(t, cfg, false)
			idleConns(t, p, 2)
			ctx := context.Background()
			d.kill()
			if v, err := p.NotifyWait(ctx, detect.Event{Tunnel: "t", State: detect.Down, Source: "test"}); err != nil || v.PathOK || !p.Stats().TunnelDown {
				t.Fatalf("DOWN on a dead path: %+v, %v; want the gate shut", v, err)
			}
			want := []TimeoutKind{}
			check := func(step string) {
				t.Helper()
				if got := rec.timeoutsNow(); !slices.Equal(got, want) {
					t.Fatalf("%s: timeouts %v, want %v", step, got, want)
				}
			}

			// Its own deadline ends first (two retired idle conns: the
			// wait starts in ResetSession, ends in the statement).
			short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
			_, err := p.DB().ExecContext(short, "x")
			cancel()
			if !errors.Is(err, ErrTunnelDown) {
				t.Fatalf("request with a deadline: %v, want ErrTunnelDown", err)
			}
			want = append(want, TimeoutGate)
			check("deadline at the gate")

			// DownWait ends it (database/sql retries: a retired conn, then a
			// new connect).
			if _, err := p.DB().ExecContext(ctx, "x"); !errors.Is(err, ErrTunnelDown) {
				t.Fatalf("request without a deadline: %v, want ErrTunnelDown", err)
			}
			want = append(want, TimeoutGate)
			check("DownWait at the gate")

			// Through a new connect only.
			if _, err := p.DB().Conn(ctx); !errors.Is(err, ErrTunnelDown) {
				t.Fatalf("Conn: %v, want ErrTunnelDown", err)
			}
			want = append(want, TimeoutGate)
			check("a new connect at the gate")

			d.revive()
			if v, err := p.NotifyWait(ctx, detect.Event{Tunnel: "t", State: detect.Up, Source: "test"}); err != nil || !v.PathOK || p.Stats().TunnelDown {
				t.Fatalf("UP: %+v, %v; want the gate open", v, err)
			}
			if _, err := p.DB().ExecContext(ctx, "x"); err != nil {
				t.Fatal(err)
			}
			settle(t, p)
			check("after UP")
		})
	}
}

// A request's connect that ends at a deadline (ConnectTimeout, or its
// own) is a timeout, each connect once: a retired conn renewed in vain,
// then a new connect, is two. The checks' own connects are not requests.
func TestObserverConnectTimeouts(t *testing.T) {
	t.Run("ConnectTimeout", func(t *testing.T) {
		rec := &recorder{}
		cfg := quietConfig()
		cfg.ConnectTimeout = 50 * time.Millisecond
		cfg.Observer = rec.observer()
		p, d := openFake(t, cfg, false)
		d.connectWait.Store(true)
		_, err := p.DB().ExecContext(context.Background(), "x")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("exec: %v, want the pool's ConnectTimeout", err)
		}
		settle(t, p) // the failed connect started a check, whose connect timed out too
		if got := rec.timeoutsNow(); !slices.Equal(got, []TimeoutKind{TimeoutConnect}) {
			t.Fatalf("timeouts %v, want [connect]", got)
		}
		_, failed, _, _ := rec.snapshot()
		if len(failed) < 2 {
			t.Fatalf("failed connects %v; want the request's and the check's", failed)
		}
	})
	t.Run("request deadline, at the renewal", func(t *testing.T) {
		rec := &recorder{}
		cfg := quietConfig()
		cfg.Observer = rec.observer()
		p, d := openFake(t, cfg, false)
		idleConns(t, p, 1)
		p.Reset("test") // the idle conn is retired: renewed at its next borrow
		d.connectWait.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := p.DB().ExecContext(ctx, "x")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("exec: %v, want its deadline", err)
		}
		settle(t, p)
		// The renewal's connect ends at the deadline; database/sql then
		// sees the context ended and stops: one.
		if got := rec.timeoutsNow(); !slices.Equal(got, []TimeoutKind{TimeoutConnect}) {
			t.Fatalf("timeouts %v, want [connect]", got)
		}
	})
	t.Run("renewed in vain, then new", func(t *testing.T) {
		rec := &recorder{}
		cfg := quietConfig()
		cfg.ConnectTimeout = 50 * time.Millisecond
		cfg.Observer = rec.observer()
		p, d := openFake(t, cfg, false)
		idleConns(t, p, 1)
		p.Reset("test")
		d.connectWait.Store(true)
		_, err := p.DB().ExecContext(context.Background(), "x")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("exec: %v, want the pool's ConnectTimeout", err)
		}
		settle(t, p)
		if got := rec.timeoutsNow(); !slices.Equal(got, []TimeoutKind{TimeoutConnect, TimeoutConnect}) {
			t.Fatalf("timeouts %v, want [connect connect]: the renewal, then database/sql's new connect", got)
		}
	})
}

func TestTimeoutIn(t *testing.T) {
	dead, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	live := context.Background()
	sysTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		kind TimeoutKind
		ok   bool
	}{
		{"gate", live, fmt.Errorf("%w: still down after waiting 5s", ErrTunnelDown), TimeoutGate, true},
		{"gate, deadline", dead, fmt.Errorf("%w: %w", ErrTunnelDown, context.DeadlineExceeded), TimeoutGate, true},
		{"ConnectTimeout", live, &detect.ConnectError{Err: fmt.Errorf("pool: connecting took longer: %w", &ctxEnded{ctx: context.DeadlineExceeded, err: io.EOF})}, TimeoutConnect, true},
		{"request deadline, driver's own error", dead, io.ErrUnexpectedEOF, TimeoutConnect, true},
		{"dial timeout", live, sysTimeout, TimeoutConnect, true},
		{"refused", live, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 0, false},
		{"cancelled", live, context.Canceled, 0, false},
		{"closed", dead, ErrClosed, 0, false},
	} {
		if k, ok := timeoutIn(tc.ctx, tc.err); k != tc.kind || ok != tc.ok {
			t.Errorf("%s: timeoutIn = %v, %v; want %v, %v", tc.name, k, ok, tc.kind, tc.ok)
		}
	}
	if !rebuilding(context.WithValue(live, rebuildKey{}, false)) || rebuilding(live) {
		t.Error("rebuilding: the rebuild's context not told apart")
	}
	if TimeoutGate.String() != "gate" || TimeoutConnect.String() != "connect" || TimeoutKind(7).String() != "TimeoutKind(7)" {
		t.Errorf("TimeoutKind names: %v %v %v", TimeoutGate, TimeoutConnect, TimeoutKind(7))
	}
}

// Without an Observer nothing is wrapped; with one, a query allocates
// nothing more, and closing the *sql.DB still closes the driver's
// connector.
func TestObserverCost(t *testing.T) {
	p := OpenDB(nullConnector{}, Config{ProbeInterval: -1})
	defer p.Close()
	if _, ok := p.conn.inner.(timedConnector); ok {
		t.Error("the driver's connector is wrapped without an Observer")
	}
	if _, ok := p.watchConnects(p.conn).(*connector); !ok {
		t.Error("database/sql's connector is wrapped without an Observer")
	}
	var used, created int
	var mu sync.Mutex
	po := OpenDB(nullConnector{}, Config{ProbeInterval: -1, Observer: Observer{
		ConnCreated: func(time.Duration, error) { mu.Lock(); created++; mu.Unlock() },
		ConnUsed:    func(time.Duration) { mu.Lock(); used++; mu.Unlock() },
		Timeout:     func(TimeoutKind) {},
	}})
	defer po.Close()
	ctx := context.Background()
	allocs := func(p *Pool) float64 {
		db := p.DB()
		db.SetMaxIdleConns(1)
		if _, err := db.ExecContext(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(1000, func() {
			if _, err := db.ExecContext(ctx, "x"); err != nil {
				t.Fatal(err)
			}
		})
	}
	plain, observed := allocs(p), allocs(po)
	if observed != plain {
		t.Errorf("allocations per Exec: %v with an Observer, %v without", observed, plain)
	}
	mu.Lock()
	if created != 1 || used < 1000 {
		t.Errorf("observed %d connects, %d uses; want 1 and every Exec's", created, used)
	}
	mu.Unlock()

	cc := &closingConnector{}
	pc := OpenDB(cc, Config{ProbeInterval: -1, Observer: Observer{ConnCreated: func(time.Duration, error) {}, Timeout: func(TimeoutKind) {}}})
	if err := pc.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	pc.DB().Close()
	if !pc.closed.Load() || !cc.closed {
		t.Errorf("after DB().Close with an Observer: pool closed %v, driver's connector closed %v", pc.closed.Load(), cc.closed)
	}
}

type closingConnector struct {
	nullConnector
	closed bool
}

func (c *closingConnector) Close() error { c.closed = true; return nil }

// BenchmarkNullExecObserved is BenchmarkNullExec's flapguard case with an
// Observer whose funcs do nothing: the cost of the hooks themselves.
func BenchmarkNullExecObserved(b *testing.B) {
	p := OpenDB(nullConnector{}, Config{Observer: Observer{
		ConnCreated: func(time.Duration, error) {},
		ConnUsed:    func(time.Duration) {},
		Timeout:     func(TimeoutKind) {},
	}})
	defer p.Close()
	benchExec(b, p.DB())
}
