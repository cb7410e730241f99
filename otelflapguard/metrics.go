package otelflapguard

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/flapguard/flapguard/pool"
)

// ScopeName is the instrumentation scope of the meter this package uses.
const ScopeName = "github.com/flapguard/flapguard/otelflapguard"

// Attribute keys. The first two are OpenTelemetry's semantic conventions.
const (
	PoolNameKey    = attribute.Key("db.client.connection.pool.name")
	StateKey       = attribute.Key("db.client.connection.state")
	EventKindKey   = attribute.Key("flapguard.event.kind")
	HealthKey      = attribute.Key("flapguard.health")
	OutcomeKey     = attribute.Key("flapguard.outcome")
	TimeoutKindKey = attribute.Key("flapguard.timeout.kind")
)

// durationBounds are the bucket boundaries (seconds) of create_time and
// use_time: 100µs to a minute. The SDK's default boundaries are meant for
// milliseconds; a View can still set others.
var durationBounds = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Options configures New. The zero value works.
type Options struct {
	// MeterProvider makes the meter. Default (nil): the global one,
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// PoolName is db.client.connection.pool.name on every instrument; give
	// each pool of a process its own. Default (""): "default".
	PoolName string

	// MaxIdleConns is what the program gave DB().SetMaxIdleConns, reported
	// as db.client.connection.idle.max (database/sql has no getter). 0
	// means database/sql's default, 2; negative means no idle connections
	// are kept, as SetMaxIdleConns takes it (reported as 0).
	MaxIdleConns int
}

// Metrics exports one pool's statistics and events. Create it with New,
// hand OnEvent and Observer to the pool's Config, and call Observe with
// the opened pool. It is safe for concurrent use.
type Metrics struct {
	attrs  metric.MeasurementOption // the pool name
	events metric.Int64Counter
	wait   metric.Float64Histogram
	meter  metric.Meter
	opts   Options
	now    func() time.Time // time.Now; tests set it

	// Fed by Observer, on the pool's request path: recorded with options
	// made once, so that a record allocates nothing.
	created, used metric.Float64Histogram
	timeouts      metric.Int64Counter
	recordOpts    []metric.RecordOption
	timeoutOpts   map[pool.TimeoutKind][]metric.AddOption // read only after New

	mu    sync.Mutex // protects following fields
	reg   metric.Registration
	pool  *pool.Pool
	last  waitMark      // DBStats wait totals at the previous collection
	carry time.Duration // wait time not yet recorded: it ended in an interval without a new wait
}

type waitMark struct {
	at       time.Time
	count    int64
	duration time.Duration
}

// New creates the instruments. Its OnEvent can be used at once; the
// statistics are read only after Observe.
func New(opts Options) (*Metrics, error) {
	if opts.MeterProvider == nil {
		opts.MeterProvider = otel.GetMeterProvider()
	}
	if opts.PoolName == "" {
		opts.PoolName = "default"
	}
	m := &Metrics{
		attrs: metric.WithAttributeSet(attribute.NewSet(PoolNameKey.String(opts.PoolName))),
		meter: opts.MeterProvider.Meter(ScopeName),
		opts:  opts,
		now:   time.Now,
	}
	var err error
	if m.events, err = m.meter.Int64Counter("flapguard.pool.events",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events of the pool by kind (Config.OnEvent).")); err != nil {
		return nil, err
	}
	if m.wait, err = m.meter.Float64Histogram("db.client.connection.wait_time",
		metric.WithUnit("s"),
		metric.WithDescription("The time it took to obtain an open connection from the pool (each wait of a collection interval recorded as the interval's mean: database/sql keeps only totals).")); err != nil {
		return nil, err
	}
	if m.created, err = m.meter.Float64Histogram("db.client.connection.create_time",
		metric.WithUnit("s"),
		metric.WithDescription("The time it took to create a new connection."),
		metric.WithExplicitBucketBoundaries(durationBounds...)); err != nil {
		return nil, err
	}
	if m.used, err = m.meter.Float64Histogram("db.client.connection.use_time",
		metric.WithUnit("s"),
		metric.WithDescription("The time between borrowing a connection and returning it to the pool."),
		metric.WithExplicitBucketBoundaries(durationBounds...)); err != nil {
		return nil, err
	}
	if m.timeouts, err = m.meter.Int64Counter("db.client.connection.timeouts",
		metric.WithUnit("{timeout}"),
		metric.WithDescription("The number of connection timeouts that have occurred trying to obtain a connection from the pool (flapguard.timeout.kind: gate or connect).")); err != nil {
		return nil, err
	}
	m.recordOpts = []metric.RecordOption{m.attrs}
	m.timeoutOpts = make(map[pool.TimeoutKind][]metric.AddOption)
	for _, k := range []pool.TimeoutKind{pool.TimeoutGate, pool.TimeoutConnect} {
		m.timeoutOpts[k] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
			PoolNameKey.String(opts.PoolName), TimeoutKindKey.String(k.String())))}
	}
	return m, nil
}

// Observer returns the hooks that feed db.client.connection.create_time,
// use_time and timeouts; set it as the pool's Config.Observer before it
// opens. They record at once, on the goroutine the pool calls them on,
// and allocate nothing; they keep recording after Close, as OnEvent does.
func (m *Metrics) Observer() pool.Observer {
	return pool.Observer{
		ConnCreated: m.connCreated,
		ConnUsed:    m.connUsed,
		Timeout:     m.timeout,
	}
}

// connCreated records a connection made; a failed connect created none
// (see the package doc).
func (m *Metrics) connCreated(d time.Duration, err error) {
	if err == nil {
		m.created.Record(context.Background(), d.Seconds(), m.recordOpts...)
	}
}

func (m *Metrics) connUsed(d time.Duration) {
	m.used.Record(context.Background(), d.Seconds(), m.recordOpts...)
}

func (m *Metrics) timeout(k pool.TimeoutKind) {
	opts, ok := m.timeoutOpts[k]
	if !ok { // a kind added to the pool later
		opts = []metric.AddOption{m.attrs, metric.WithAttributes(TimeoutKindKey.String(k.String()))}
	}
	m.timeouts.Add(context.Background(), 1, opts...)
}

// OnEvent counts ev under its kind. Set it as (or call it from) the pool's
// Config.OnEvent; it does not block.
func (m *Metrics) OnEvent(ev pool.Event) {
	m.events.Add(context.Background(), 1, m.attrs, metric.WithAttributes(EventKindKey.String(ev.Kind.String())))
}

// Observe reads p's statistics at every collection from now on, until
// Close. A Metrics observes one pool, once.
func (m *Metrics) Observe(p *pool.Pool) error {
	if p == nil {
		return errors.New("otelflapguard: Observe: nil pool")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool != nil {
		return errors.New("otelflapguard: Observe called twice; use one Metrics per pool")
	}
	obs, err := m.observables()
	if err != nil {
		return err
	}
	st := p.Stats()
	m.last = waitMark{m.now(), st.WaitCount, st.WaitDuration}
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		m.observe(ctx, o, obs, p.Stats())
		return nil
	}, obs.all()...)
	if err != nil {
		return err
	}
	m.pool, m.reg = p, reg
	return nil
}

// Close stops reading the pool's statistics; events already counted stay.
// It may be called more than once.
func (m *Metrics) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reg == nil {
		return nil
	}
	err := m.reg.Unregister()
	m.reg = nil
	return err
}

type observables struct {
	count, max, idleMax, idleMin  metric.Int64ObservableUpDownCounter
	pending                       metric.Float64ObservableUpDownCounter
	resets, severs, severed       metric.Int64ObservableCounter
	connects, lost                metric.Int64ObservableCounter
	livenessChecks, livenessFails metric.Int64ObservableCounter
	probes, probeFails            metric.Int64ObservableCounter
	tunnelEvents, orphans         metric.Int64ObservableCounter
	rebuilt                       metric.Int64ObservableCounter
	generation, health, down      metric.Int64ObservableGauge
}

func (o *observables) all() []metric.Observable {
	return []metric.Observable{o.count, o.max, o.idleMax, o.idleMin, o.pending,
		o.resets, o.severs, o.severed, o.connects, o.lost, o.livenessChecks, o.livenessFails,
		o.probes, o.probeFails, o.tunnelEvents, o.orphans, o.rebuilt,
		o.generation, o.health, o.down}
}

func (m *Metrics) observables() (*observables, error) {
	var o observables
	var errs []error
	udc := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		i, err := m.meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return i
	}
	ctr := func(name, unit, desc string) metric.Int64ObservableCounter {
		i, err := m.meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return i
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		i, err := m.meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return i
	}
	o.count = udc("db.client.connection.count", "{connection}", "The number of connections that are currently in state described by the `state` attribute.")
	o.max = udc("db.client.connection.max", "{connection}", "The maximum number of open connections allowed.")
	o.idleMax = udc("db.client.connection.idle.max", "{connection}", "The maximum number of idle open connections allowed.")
	o.idleMin = udc("db.client.connection.idle.min", "{connection}", "The minimum number of idle open connections allowed (database/sql keeps none).")
	var err error
	o.pending, err = m.meter.Float64ObservableUpDownCounter("db.client.connection.pending_requests",
		metric.WithUnit("{request}"),
		metric.WithDescription("The mean number of requests waiting for an open connection since the previous collection (from database/sql's total wait time)."))
	errs = append(errs, err)
	o.resets = ctr("flapguard.pool.resets", "{reset}", "Resets of the pool (new generations), including severs.")
	o.severs = ctr("flapguard.pool.severs", "{sever}", "Resets that also closed the sockets of old connections.")
	o.severed = ctr("flapguard.pool.severed_sockets", "{socket}", "Sockets closed by severs and cancel guards.")
	o.connects = ctr("flapguard.pool.connects", "{connection}", "Connections made.")
	o.lost = ctr("flapguard.pool.connections_lost", "{operation}", "Operations that failed with a lost connection.")
	o.livenessChecks = ctr("flapguard.pool.liveness.checks", "{check}", "Liveness pings at borrow.")
	o.livenessFails = ctr("flapguard.pool.liveness.failures", "{check}", "Liveness pings at borrow that failed.")
	o.probes = ctr("flapguard.pool.probes", "{probe}", "Fresh-connection probes of the path.")
	o.probeFails = ctr("flapguard.pool.probe.failures", "{probe}", "Probes that failed.")
	o.tunnelEvents = ctr("flapguard.pool.tunnel_events", "{event}", "Tunnel events received, by outcome (applied or ignored).")
	o.orphans = ctr("flapguard.pool.orphans_reaped", "{session}", "Server sessions of dead connections killed after recovery.")
	o.rebuilt = ctr("flapguard.pool.rebuilt", "{connection}", "Connections reopened in the background after a reset.")
	o.generation = gauge("flapguard.pool.generation", "{generation}", "The pool's current generation (starts at 1).")
	o.health = gauge("flapguard.pool.health", "1", "1 for the pool's current judgement of the path (flapguard.health), 0 for the others.")
	o.down = gauge("flapguard.pool.tunnel_down", "1", "1 while a tunnel event gates new connections.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &o, nil
}

// observe reports st. It runs at each collection, from the reader's
// goroutine; the wait totals' growth since the previous collection (by any
// reader) feeds the wait-time histogram and the pending-requests mean.
func (m *Metrics) observe(ctx context.Context, o metric.Observer, obs *observables, st pool.Stats) {
	a := m.attrs
	o.ObserveInt64(obs.count, int64(st.Idle), a, metric.WithAttributes(StateKey.String("idle")))
	o.ObserveInt64(obs.count, int64(st.InUse), a, metric.WithAttributes(StateKey.String("used")))
	if st.MaxOpenConnections > 0 {
		o.ObserveInt64(obs.max, int64(st.MaxOpenConnections), a)
	}
	o.ObserveInt64(obs.idleMax, int64(m.maxIdle()), a)
	o.ObserveInt64(obs.idleMin, 0, a)

	// database/sql counts a wait when it starts and adds its duration when
	// it ends: time that ended in an interval without a new wait is
	// carried to the next interval that has one.
	m.mu.Lock()
	now, prev := m.now(), m.last
	waits, waited := st.WaitCount-prev.count, st.WaitDuration-prev.duration
	m.last = waitMark{now, st.WaitCount, st.WaitDuration}
	carried := m.carry + waited
	m.carry = 0
	if waits <= 0 {
		m.carry = max(carried, 0)
	}
	m.mu.Unlock()
	pending := 0.0
	if dt := now.Sub(prev.at); dt > 0 && waited > 0 {
		pending = float64(waited) / float64(dt)
	}
	o.ObserveFloat64(obs.pending, pending, a)
	if waits > 0 {
		mean := max(carried, 0).Seconds() / float64(waits)
		for range waits {
			m.wait.Record(ctx, mean, a)
		}
	}

	for _, c := range []struct {
		i metric.Int64ObservableCounter
		v uint64
	}{
		{obs.resets, st.Resets}, {obs.severs, st.Severs}, {obs.severed, st.SeveredSockets},
		{obs.connects, st.Connects}, {obs.lost, st.ConnsLost},
		{obs.livenessChecks, st.LivenessChecks}, {obs.livenessFails, st.LivenessFailures},
		{obs.probes, st.Probes}, {obs.probeFails, st.ProbeFailures},
		{obs.orphans, st.OrphansReaped}, {obs.rebuilt, st.Rebuilt},
	} {
		o.ObserveInt64(c.i, int64(c.v), a)
	}
	o.ObserveInt64(obs.tunnelEvents, int64(st.Events), a, metric.WithAttributes(OutcomeKey.String("applied")))
	o.ObserveInt64(obs.tunnelEvents, int64(st.EventsIgnored), a, metric.WithAttributes(OutcomeKey.String("ignored")))

	o.ObserveInt64(obs.generation, int64(st.Generation), a)
	for _, h := range healthStates() {
		v := int64(0)
		if h == st.Health {
			v = 1
		}
		o.ObserveInt64(obs.health, v, a, metric.WithAttributes(HealthKey.String(h.String())))
	}
	down := int64(0)
	if st.TunnelDown {
		down = 1
	}
	o.ObserveInt64(obs.down, down, a)
}

func (m *Metrics) maxIdle() int {
	switch n := m.opts.MaxIdleConns; {
	case n == 0:
		return 2 // database/sql's defaultMaxIdleConns
	case n < 0:
		return 0
	default:
		return n
	}
}

// healthStates lists the pool's health states by their names: every
// value from 0 up to the first without one, so a state the pool adds is
// reported without a change here.
func healthStates() []pool.Health {
	var hs []pool.Health
	for h := pool.Health(0); h < 64; h++ {
		if strings.HasPrefix(h.String(), "Health(") {
			break
		}
		hs = append(hs, h)
	}
	return hs
}
