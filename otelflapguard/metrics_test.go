package otelflapguard

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
)

// A small database/sql driver: every statement succeeds, except "lose",
// which fails as a read on a reset TCP connection does. With a fakeNet the
// path to it can fail.
type fakeConnector struct{ net *fakeNet } // nil net: the path always works
type fakeConn struct{ net *fakeNet }
type fakeRows struct{ done bool }

// fakeNet is the path to the fake server. dead: connects fail as into a
// dead tunnel, pings and statements hang until their deadline. hangNext:
// the next connect hangs until its context ends. A connect takes 1ms.
type fakeNet struct {
	dead, hangNext atomic.Bool
}

var (
	errReset    = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	errDeadPath = errors.New("dial tcp 10.0.0.1:5432: connect: connection timed out")
)

func (c fakeConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if n := c.net; n != nil {
		if n.hangNext.CompareAndSwap(true, false) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if n.dead.Load() {
			return nil, errDeadPath
		}
		time.Sleep(time.Millisecond)
	}
	return fakeConn(c), nil
}
func (fakeConnector) Driver() driver.Driver          { return nil }
func (fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake: no Prepare") }
func (fakeConn) Close() error                        { return nil }
func (fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("fake: no Begin") }

// down waits out ctx if the path is dead.
func (c fakeConn) down(ctx context.Context) error {
	if c.net != nil && c.net.dead.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (c fakeConn) Ping(ctx context.Context) error { return c.down(ctx) }
func (c fakeConn) ExecContext(ctx context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	if err := c.down(ctx); err != nil {
		return nil, err
	}
	if q == "lose" {
		return nil, errReset
	}
	return driver.RowsAffected(0), nil
}
func (c fakeConn) QueryContext(ctx context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	if err := c.down(ctx); err != nil {
		return nil, err
	}
	if q == "lose" {
		return nil, errReset
	}
	return &fakeRows{}, nil
}
func (*fakeRows) Columns() []string { return []string{"x"} }
func (*fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(1)
	return nil
}

// tally counts the events the pool emitted, by kind, beside Metrics.
type tally struct {
	mu sync.Mutex
	n  map[string]int64
}

func (t *tally) add(ev pool.Event) {
	t.mu.Lock()
	t.n[ev.Kind.String()]++
	t.mu.Unlock()
}

func (t *tally) get(kind string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[kind]
}

func (t *tally) copy() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := make(map[string]int64, len(t.n))
	for k, v := range t.n {
		c[k] = v
	}
	return c
}

// collected is one collection, indexed by instrument name.
type collected map[string]metricdata.Metrics

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	c := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			c[m.Name] = m
		}
	}
	return c
}

// value returns the int64 data point of name whose attributes are exactly
// the pool name plus kv; found is false when there is none.
func (c collected) value(t *testing.T, name string, kv ...attribute.KeyValue) (v int64, found bool) {
	t.Helper()
	want := attribute.NewSet(append([]attribute.KeyValue{PoolNameKey.String("orders")}, kv...)...)
	m, ok := c[name]
	if !ok {
		return 0, false
	}
	var points []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	default:
		t.Fatalf("%s: data %T, want int64 sum or gauge", name, m.Data)
	}
	for _, p := range points {
		if p.Attributes.Equals(&want) {
			return p.Value, true
		}
	}
	return 0, false
}

func (c collected) int(t *testing.T, name string, kv ...attribute.KeyValue) int64 {
	t.Helper()
	v, ok := c.value(t, name, kv...)
	if !ok {
		t.Fatalf("%s %v: no data point", name, kv)
	}
	return v
}

// waitHist returns the wait-time histogram's count and sum (0, 0 before
// any wait).
func waitHist(t *testing.T, c collected) (uint64, float64) {
	t.Helper()
	m, ok := c["db.client.connection.wait_time"]
	if !ok {
		return 0, 0
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok || len(h.DataPoints) != 1 {
		t.Fatalf("wait_time data %+v", m.Data)
	}
	return h.DataPoints[0].Count, h.DataPoints[0].Sum
}

// hist returns the histogram name's data point for the pool "orders":
// count, sum and bucket boundaries (found false when it has none).
func (c collected) hist(t *testing.T, name string) (count uint64, sum float64, bounds []float64, found bool) {
	t.Helper()
	m, ok := c[name]
	if !ok {
		return 0, 0, nil, false
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: data %T, want a float64 histogram", name, m.Data)
	}
	want := attribute.NewSet(PoolNameKey.String("orders"))
	for _, dp := range h.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Count, dp.Sum, dp.Bounds, true
		}
	}
	t.Fatalf("%s: no point with exactly the pool name: %+v", name, h.DataPoints)
	return 0, 0, nil, false
}

func (c collected) histSum(t *testing.T, name string) float64 {
	t.Helper()
	_, sum, _, _ := c.hist(t, name)
	return sum
}

// hooks stands beside Metrics' Observer and keeps what the pool reported.
type hooks struct {
	mu             sync.Mutex
	created, used  []time.Duration // connects that made a connection; uses
	failed         int             // connects that failed
	gate, connects int             // timeouts by kind
}

func (h *hooks) tee(o pool.Observer) pool.Observer {
	return pool.Observer{
		ConnCreated: func(d time.Duration, err error) {
			o.ConnCreated(d, err)
			h.mu.Lock()
			defer h.mu.Unlock()
			if err != nil {
				h.failed++
			} else {
				h.created = append(h.created, d)
			}
		},
		ConnUsed: func(d time.Duration) {
			o.ConnUsed(d)
			h.mu.Lock()
			h.used = append(h.used, d)
			h.mu.Unlock()
		},
		Timeout: func(k pool.TimeoutKind) {
			o.Timeout(k)
			h.mu.Lock()
			defer h.mu.Unlock()
			switch k {
			case pool.TimeoutGate:
				h.gate++
			case pool.TimeoutConnect:
				h.connects++
			}
		},
	}
}

// totals returns how many durations ds has, and their sum in seconds.
func totals(ds []time.Duration) (uint64, float64) {
	sum := 0.0
	for _, d := range ds {
		sum += d.Seconds()
	}
	return uint64(len(ds)), sum
}

func (h *hooks) get() (created, used []time.Duration, failed, gate, connects int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.created...), append([]time.Duration(nil), h.used...), h.failed, h.gate, h.connects
}

func pendingValue(t *testing.T, c collected) float64 {
	t.Helper()
	pr, ok := c["db.client.connection.pending_requests"].Data.(metricdata.Sum[float64])
	if !ok || len(pr.DataPoints) != 1 {
		t.Fatalf("pending_requests data %+v", c["db.client.connection.pending_requests"].Data)
	}
	return pr.DataPoints[0].Value
}

// quietStats waits until two reads of the pool's statistics 20ms apart
// agree, and returns them.
func quietStats(t *testing.T, p *pool.Pool) pool.Stats {
	t.Helper()
	for range 100 {
		before := p.Stats()
		time.Sleep(20 * time.Millisecond)
		if after := p.Stats(); after == before {
			return after
		}
	}
	t.Fatal("the pool's statistics kept moving for 2s")
	return pool.Stats{}
}

// quiet waits until the pool's statistics stop moving between two reads
// around a collection, and returns that collection with its statistics.
func quiet(t *testing.T, p *pool.Pool, r *sdkmetric.ManualReader) (collected, pool.Stats) {
	t.Helper()
	for range 200 {
		before := p.Stats()
		c := collect(t, r)
		if after := p.Stats(); after == before {
			return c, before
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the pool's statistics kept moving for 2s")
	return nil, pool.Stats{}
}

func TestInstrumentsAfterResetNotifyAndLostConnection(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	m, err := New(Options{MeterProvider: mp, PoolName: "orders", MaxIdleConns: 5})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	m.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }

	seen := &tally{n: map[string]int64{}}
	hk := &hooks{}
	path := &fakeNet{}
	start := time.Now()
	p := pool.OpenDB(fakeConnector{path}, pool.Config{
		ProbeInterval: -1, // no background probes: the script alone moves the pool
		DownWait:      100 * time.Millisecond,
		OnEvent:       func(ev pool.Event) { m.OnEvent(ev); seen.add(ev) },
		Observer:      hk.tee(m.Observer()),
	})
	defer p.Close()
	db := p.DB()
	db.SetMaxOpenConns(3)
	db.SetMaxIdleConns(5)
	if err := m.Observe(p); err != nil {
		t.Fatal(err)
	}
	if err := m.Observe(p); err == nil {
		t.Error("a second Observe succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Script: a request whose connect hangs past its deadline, a query, a
	// Reset, a tunnel going down and up, a lost connection, the path dying
	// under a DOWN (two requests refused at the gate) and coming back with
	// an UP, and one request that waits for a connection while all three
	// are held.
	path.hangNext.Store(true)
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := db.ExecContext(short, "ok"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a connect hung past the request's deadline: %v", err)
	}
	cancelShort()
	if _, err := db.ExecContext(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	p.Reset("test: scripted reset")
	p.Notify(detect.Event{Tunnel: "aws-1", State: detect.Down, Source: "test"})
	p.Notify(detect.Event{Tunnel: "aws-1", State: detect.Up, Source: "test"})
	if _, err := db.ExecContext(ctx, "lose"); err == nil {
		t.Fatal(`"lose" succeeded`)
	}
	for seen.get("conn-lost") == 0 {
		if ctx.Err() != nil {
			t.Fatal("no conn-lost event")
		}
		time.Sleep(time.Millisecond)
	}
	// The pool handles tunnel events on its own goroutine: wait for both,
	// then for the pool to settle.
	for s := p.Stats(); s.Events+s.EventsIgnored < 2; s = p.Stats() {
		if ctx.Err() != nil {
			t.Fatal("the tunnel events were never handled")
		}
		time.Sleep(time.Millisecond)
	}
	quietStats(t, p)

	// The path dies; a DOWN's check finds it dead and shuts the gate. A
	// request without a deadline is refused after DownWait, one with a
	// shorter deadline when it ends: two timeouts at the gate.
	path.dead.Store(true)
	if v, err := p.NotifyWait(ctx, detect.Event{Tunnel: "aws-1", State: detect.Down, Source: "test"}); err != nil || v.PathOK || !p.Stats().TunnelDown {
		t.Fatalf("DOWN on a dead path: %+v, %v; want the gate shut", v, err)
	}
	if _, err := db.ExecContext(ctx, "ok"); !errors.Is(err, pool.ErrTunnelDown) {
		t.Fatalf("request at the shut gate: %v, want ErrTunnelDown", err)
	}
	short, cancelShort = context.WithTimeout(ctx, 30*time.Millisecond)
	if _, err := db.ExecContext(short, "ok"); !errors.Is(err, pool.ErrTunnelDown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request with a deadline at the shut gate: %v, want ErrTunnelDown and its deadline", err)
	}
	cancelShort()
	path.dead.Store(false)
	if v, err := p.NotifyWait(ctx, detect.Event{Tunnel: "aws-1", State: detect.Up, Source: "test"}); err != nil || !v.PathOK || p.Stats().TunnelDown {
		t.Fatalf("UP on a path back: %+v, %v; want the gate open", v, err)
	}
	quietStats(t, p)

	held := make([]interface{ Close() error }, 0, 3)
	hold := func() {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	hold()
	hold()
	quietStats(t, p)

	// Two conns still held: count{used} is 2.
	c, st := quiet(t, p, reader)
	if st.InUse != 2 {
		t.Fatalf("InUse = %d, want 2 held", st.InUse)
	}
	for _, w := range []struct {
		name string
		kv   []attribute.KeyValue
		want int64
	}{
		{"db.client.connection.count", []attribute.KeyValue{StateKey.String("used")}, 2},
		{"db.client.connection.count", []attribute.KeyValue{StateKey.String("idle")}, int64(st.Idle)},
		{"db.client.connection.max", nil, 3},
		{"db.client.connection.idle.max", nil, 5},
		{"db.client.connection.idle.min", nil, 0},
		{"flapguard.pool.resets", nil, int64(st.Resets)},
		{"flapguard.pool.severs", nil, int64(st.Severs)},
		{"flapguard.pool.severed_sockets", nil, int64(st.SeveredSockets)},
		{"flapguard.pool.connects", nil, int64(st.Connects)},
		{"flapguard.pool.connections_lost", nil, int64(st.ConnsLost)},
		{"flapguard.pool.liveness.checks", nil, int64(st.LivenessChecks)},
		{"flapguard.pool.liveness.failures", nil, int64(st.LivenessFailures)},
		{"flapguard.pool.probes", nil, int64(st.Probes)},
		{"flapguard.pool.probe.failures", nil, int64(st.ProbeFailures)},
		{"flapguard.pool.tunnel_events", []attribute.KeyValue{OutcomeKey.String("applied")}, int64(st.Events)},
		{"flapguard.pool.tunnel_events", []attribute.KeyValue{OutcomeKey.String("ignored")}, int64(st.EventsIgnored)},
		{"flapguard.pool.orphans_reaped", nil, int64(st.OrphansReaped)},
		{"flapguard.pool.rebuilt", nil, int64(st.Rebuilt)},
		{"flapguard.pool.generation", nil, int64(st.Generation)},
		{"flapguard.pool.health", []attribute.KeyValue{HealthKey.String(st.Health.String())}, 1},
	} {
		if got := c.int(t, w.name, w.kv...); got != w.want {
			t.Errorf("%s %v = %d, want %d", w.name, w.kv, got, w.want)
		}
	}
	// What the script guarantees, whatever the pool decides on the way:
	// Reset made a new generation, the lost connection was counted, the
	// four tunnel events were received (applied or ignored), connections
	// were made.
	if st.Resets < 1 || st.Generation < 2 {
		t.Errorf("after Reset: resets %d, generation %d", st.Resets, st.Generation)
	}
	if st.ConnsLost < 1 {
		t.Errorf("after the lost connection: ConnsLost = %d", st.ConnsLost)
	}
	if st.Events+st.EventsIgnored != 4 {
		t.Errorf("tunnel events applied %d + ignored %d, want the 4 notified", st.Events, st.EventsIgnored)
	}
	if st.Connects < 2 {
		t.Errorf("connects %d, want ≥ 2", st.Connects)
	}
	// Every other health state reads 0.
	for _, h := range healthStates() {
		if h == st.Health {
			continue
		}
		if got := c.int(t, "flapguard.pool.health", HealthKey.String(h.String())); got != 0 {
			t.Errorf("health %s = %d, want 0 (current %s)", h, got, st.Health)
		}
	}
	if len(healthStates()) != 4 {
		t.Errorf("health states %v; want healthy, suspect, unreachable, recovering", healthStates())
	}
	down := int64(0)
	if st.TunnelDown {
		down = 1
	}
	if got := c.int(t, "flapguard.pool.tunnel_down", nil...); got != down {
		t.Errorf("tunnel_down = %d, want %d", got, down)
	}

	// Events: the counter matches the pool's own stream, kind by kind, and
	// the script's kinds are there.
	kinds := seen.copy()
	for _, k := range []string{"reset", "conn-lost"} {
		if kinds[k] == 0 {
			t.Errorf("no %s event in %v", k, kinds)
		}
	}
	if kinds["tunnel"]+kinds["tunnel-ignored"] != 4 {
		t.Errorf("tunnel events %v; want the 4 notified", kinds)
	}
	for k, n := range kinds {
		if got := c.int(t, "flapguard.pool.events", EventKindKey.String(k)); got != n {
			t.Errorf("events{kind=%s} = %d, want %d", k, got, n)
		}
	}
	if sum, ok := c["flapguard.pool.events"].Data.(metricdata.Sum[int64]); !ok || len(sum.DataPoints) != len(kinds) {
		t.Errorf("events data %+v; want one point per kind of %v", c["flapguard.pool.events"].Data, kinds)
	}

	// The instruments fed by Observer.
	elapsed := time.Since(start).Seconds()
	created, used, failed, gate, connect := hk.get()
	// Timeouts, exactly the script's: one connect past its request's
	// deadline, two requests refused at the shut gate.
	if got := c.int(t, "db.client.connection.timeouts", TimeoutKindKey.String("connect")); got != 1 || connect != 1 {
		t.Errorf("timeouts{connect} = %d (hook %d), want 1", got, connect)
	}
	if got := c.int(t, "db.client.connection.timeouts", TimeoutKindKey.String("gate")); got != 2 || gate != 2 {
		t.Errorf("timeouts{gate} = %d (hook %d), want 2", got, gate)
	}
	if d, ok := c["db.client.connection.timeouts"].Data.(metricdata.Sum[int64]); !ok || len(d.DataPoints) != 2 || !d.IsMonotonic {
		t.Errorf("timeouts data %+v; want a monotonic sum, one point per kind", c["db.client.connection.timeouts"].Data)
	}
	if u := c["db.client.connection.timeouts"].Unit; u != "{timeout}" {
		t.Errorf("timeouts unit %q", u)
	}
	// create_time: one point per connection made, as many as
	// Stats.Connects (the request's connect that timed out and the
	// check's connects into the dead path made none); each took the fake
	// driver's 1ms at least.
	n, sum, bounds, ok := c.hist(t, "db.client.connection.create_time")
	hn, hsum := totals(created)
	if !ok || n != st.Connects || n != hn || math.Abs(sum-hsum) > 1e-9 {
		t.Errorf("create_time: %d connections, %vs; want Stats.Connects %d, the hook's %d, %vs", n, sum, st.Connects, hn, hsum)
	}
	if sum < float64(n)*0.001 || sum > float64(n)*elapsed {
		t.Errorf("create_time sum %vs for %d connects in %.3fs; want ≥ 1ms each, ≤ the run", sum, n, elapsed)
	}
	if failed < 2 {
		t.Errorf("%d failed connects reported; want the hung one and the DOWN's check's at least, none recorded in create_time", failed)
	}
	if !slices.Equal(bounds, durationBounds) {
		t.Errorf("create_time bounds %v, want %v", bounds, durationBounds)
	}
	// use_time: one point per borrow returned: the query's and the lost
	// connection's at least (and any of the pool's rebuild after the UP);
	// none for the two still held, nor for the requests refused at the
	// gate, which never got a conn.
	n, sum, bounds, ok = c.hist(t, "db.client.connection.use_time")
	hn, hsum = totals(used)
	if !ok || n != hn || math.Abs(sum-hsum) > 1e-9 || n < 2 {
		t.Errorf("use_time: %d uses, %vs; want the hook's %d, %vs, and ≥ 2", n, sum, hn, hsum)
	}
	if sum < 0 || sum > float64(n)*elapsed {
		t.Errorf("use_time sum %vs for %d uses in %.3fs", sum, n, elapsed)
	}
	if !slices.Equal(bounds, durationBounds) {
		t.Errorf("use_time bounds %v, want %v", bounds, durationBounds)
	}
	for _, name := range []string{"db.client.connection.create_time", "db.client.connection.use_time"} {
		if u := c[name].Unit; u != "s" {
			t.Errorf("%s unit %q", name, u)
		}
	}
	useCount, useSum := n, sum
	t.Logf("after the script: %d connects made (Stats.Connects %d) in %.4fs, %d failed; %d uses in %.4fs; timeouts gate %d connect %d", len(created), st.Connects, c.histSum(t, "db.client.connection.create_time"), failed, useCount, useSum, gate, connect)

	// A request waits for a connection while all three are held; the
	// clock moves 10 s by the next collection. The histogram gains the
	// waits database/sql counted and their time; pending requests is that
	// time over the 10 s.
	baseCount, baseSum := waitHist(t, c)
	hold()
	waited := make(chan error, 1)
	go func() {
		c, err := db.Conn(ctx)
		if err == nil {
			err = c.Close()
		}
		waited <- err
	}()
	for db.Stats().WaitCount == st.WaitCount {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a wait long enough to see
	held[len(held)-1].Close()
	held = held[:len(held)-1]
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	st2 := quietStats(t, p)
	advance(10 * time.Second)
	c = collect(t, reader)
	if after := p.Stats(); after != st2 {
		t.Fatalf("the pool moved during the collection: %+v then %+v", st2, after)
	}
	count, sum := waitHist(t, c)
	waits, waitedFor := st2.WaitCount-st.WaitCount, st2.WaitDuration-st.WaitDuration
	if waits < 1 || waitedFor < 20*time.Millisecond {
		t.Fatalf("DBStats: %d waits for %v; want the scripted one of ≥ 20ms", waits, waitedFor)
	}
	if count-baseCount != uint64(waits) || math.Abs(sum-baseSum-waitedFor.Seconds()) > 1e-9 {
		t.Errorf("wait_time gained %d waits, %vs; DBStats %d waits, %v", count-baseCount, sum-baseSum, waits, waitedFor)
	}
	if got, want := pendingValue(t, c), waitedFor.Seconds()/10; math.Abs(got-want) > 1e-12 {
		t.Errorf("pending_requests = %v, want %v (waited %v over 10s)", got, want, waitedFor)
	}
	// use_time gained the two borrows returned: the held conn, after its
	// ≥ 20ms while the request waited, and the waiter's, each measured
	// since the collection above at most.
	n, sum, _, _ = c.hist(t, "db.client.connection.use_time")
	_, used, _, _, _ = hk.get()
	hn, hsum = totals(used)
	if n != hn || math.Abs(sum-hsum) > 1e-9 || n-useCount != 2 {
		t.Errorf("use_time after the wait: %d uses, %vs; want the hook's %d, %vs, 2 more than %d", n, sum, hn, hsum, useCount)
	}
	if gain := sum - useSum; gain < 0.020 || gain > 2*time.Since(start).Seconds() {
		t.Errorf("use_time gained %vs for the held conn and the waiter's; want ≥ 20ms", gain)
	}
	if got := c.int(t, "db.client.connection.timeouts", TimeoutKindKey.String("gate")); got != 2 {
		t.Errorf("timeouts{gate} after the wait = %d, want still 2 (database/sql's wait is not flapguard's to count)", got)
	}

	// A second collection with no new wait: the histogram keeps its one
	// wait, pending falls to 0; after Close the statistics are no longer
	// read, the counted events stay.
	advance(time.Second)
	c = collect(t, reader)
	if n, _ := waitHist(t, c); n != count {
		t.Errorf("wait_time count after a quiet interval = %d, want %d", n, count)
	}
	if got := pendingValue(t, c); got != 0 {
		t.Errorf("pending_requests after a quiet interval = %v, want 0", got)
	}
	for _, h := range held {
		h.Close()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	c = collect(t, reader)
	if _, ok := c.value(t, "flapguard.pool.resets"); ok {
		t.Error("statistics still read after Close")
	}
	if got, want := c.int(t, "flapguard.pool.events", EventKindKey.String("reset")), seen.get("reset"); got != want {
		t.Errorf("events{reset} after Close = %d, want %d", got, want)
	}
}

func TestDefaults(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	for _, tc := range []struct {
		maxIdle int
		want    int64
	}{{0, 2}, {-1, 0}, {7, 7}} {
		m, err := New(Options{MeterProvider: mp, MaxIdleConns: tc.maxIdle})
		if err != nil {
			t.Fatal(err)
		}
		p := pool.OpenDB(fakeConnector{}, pool.Config{ProbeInterval: -1})
		if err := m.Observe(p); err != nil {
			t.Fatal(err)
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		want := attribute.NewSet(PoolNameKey.String("default"))
		found := false
		for _, sm := range rm.ScopeMetrics {
			for _, mt := range sm.Metrics {
				switch mt.Name {
				case "db.client.connection.idle.max":
					for _, dp := range mt.Data.(metricdata.Sum[int64]).DataPoints {
						if dp.Attributes.Equals(&want) {
							found = true
							if dp.Value != tc.want {
								t.Errorf("MaxIdleConns %d: idle.max = %d, want %d", tc.maxIdle, dp.Value, tc.want)
							}
						}
					}
				case "db.client.connection.max":
					t.Errorf("db.client.connection.max reported for an unlimited pool: %+v", mt.Data)
				}
			}
		}
		if !found {
			t.Errorf("MaxIdleConns %d: no idle.max point for pool name \"default\"", tc.maxIdle)
		}
		m.Close()
		p.Close()
	}
	if _, err := New(Options{}); err != nil {
		t.Errorf("New with zero Options (global provider): %v", err)
	}
	var m Metrics
	if err := (&m).Observe(nil); err == nil {
		t.Error("Observe(nil) succeeded")
	}
}

// database/sql counts a wait when it starts and adds its time when it
// ends. A wait still in progress at a collection is counted then with no
// time; its time, ending in an interval without a new wait, is carried to
// the next interval that has one, so the sum catches up.
func TestWaitTimeCarriedAcrossCollections(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m, err := New(Options{MeterProvider: mp, PoolName: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	p := pool.OpenDB(fakeConnector{}, pool.Config{ProbeInterval: -1, OnEvent: m.OnEvent})
	defer p.Close()
	db := p.DB()
	db.SetMaxOpenConns(1)
	if err := m.Observe(p); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// wait borrows the only conn in a goroutine while it is held, and
	// returns once database/sql has counted the wait; release lets it
	// through.
	held, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wait := func() chan error {
		done := make(chan error, 1)
		n := db.Stats().WaitCount
		go func() {
			c, err := db.Conn(ctx)
			if err == nil {
				held = c
			}
			done <- err
		}()
		for db.Stats().WaitCount == n {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		return done
	}
	release := func(done chan error) {
		held.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	first := wait()
	count, sum := waitHist(t, collect(t, reader)) // the first wait in progress
	if count != 1 || sum != 0 {
		t.Errorf("during the first wait: count %d sum %v; want 1, 0", count, sum)
	}
	release(first)
	d1 := db.Stats().WaitDuration
	count, sum = waitHist(t, collect(t, reader)) // it ended; no new wait
	if count != 1 || sum != 0 {
		t.Errorf("after the first wait: count %d sum %v; want 1, 0 (its %v carried)", count, sum, d1)
	}
	release(wait())
	st := db.Stats()
	count, sum = waitHist(t, collect(t, reader))
	if count != 2 || st.WaitCount != 2 || math.Abs(sum-st.WaitDuration.Seconds()) > 1e-9 || st.WaitDuration <= d1 {
		t.Errorf("after the second wait: count %d sum %vs; DBStats %d waits, %v (first %v)", count, sum, st.WaitCount, st.WaitDuration, d1)
	}
	held.Close()
}

// The hooks record on the pool's request path: they allocate nothing.
func TestObserverAllocatesNothing(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m, err := New(Options{MeterProvider: mp, PoolName: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	o := m.Observer()
	o.ConnUsed(time.Millisecond) // the first record of a series allocates it
	o.ConnCreated(time.Millisecond, nil)
	o.Timeout(pool.TimeoutGate)
	if n := testing.AllocsPerRun(1000, func() { o.ConnUsed(time.Millisecond) }); n != 0 {
		t.Errorf("ConnUsed: %v allocations per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() { o.ConnCreated(time.Millisecond, nil) }); n != 0 {
		t.Errorf("ConnCreated: %v allocations per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() { o.Timeout(pool.TimeoutGate) }); n != 0 {
		t.Errorf("Timeout: %v allocations per call", n)
	}
	c := collect(t, reader)
	// One before, and AllocsPerRun's warm-up run and its 1000.
	if n, _, _, _ := c.hist(t, "db.client.connection.use_time"); n != 1002 {
		t.Errorf("use_time count %d, want 1002", n)
	}
	if got := c.int(t, "db.client.connection.timeouts", TimeoutKindKey.String("gate")); got != 1002 {
		t.Errorf("timeouts{gate} = %d, want 1002", got)
	}
	if _, ok := c.value(t, "db.client.connection.timeouts", TimeoutKindKey.String("connect")); ok {
		t.Error("timeouts{connect} reported with none")
	}
}

// BenchmarkObserver is what ConnUsed adds to each query, the SDK recording
// into a ManualReader, from every CPU at once.
func BenchmarkObserver(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	m, err := New(Options{MeterProvider: mp, PoolName: "orders"})
	if err != nil {
		b.Fatal(err)
	}
	o := m.Observer()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.ConnUsed(time.Millisecond)
		}
	})
}
