package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flapguard/flapguard/pool"
)

// collector exports a Pool's Stats as Prometheus metrics. It reads Stats()
// once per scrape, so the numbers of one scrape are one snapshot, and
// keeps no state of its own: the pool's counters are already monotonic.
//
// Metric names follow the Prometheus conventions: a flapguard_ prefix,
// base units, _total on counters. The connection gauges mirror the names
// of client_golang's own database/sql collector (go_sql_*).
type collector struct {
	p *pool.Pool

	open, inUse, idle, generation, state, tunnelDown *prometheus.Desc

	counters []counterDesc
}

type counterDesc struct {
	desc  *prometheus.Desc
	value func(pool.Stats) uint64
}

var _ prometheus.Collector = (*collector)(nil)

// states lists every pool.Health, for the one-hot flapguard_state gauge.
var states = []pool.Health{pool.Healthy, pool.Suspect, pool.Unreachable, pool.Recovering}

// newCollector describes p's metrics. constLabels (nil for none) tell
// several pools of one process apart, e.g. {"pool": "orders"}.
func newCollector(p *pool.Pool, constLabels prometheus.Labels) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("flapguard_"+name, help, labels, constLabels)
	}
	c := &collector{
		p:          p,
		open:       d("open_connections", "Connections open (in use plus idle)."),
		inUse:      d("in_use_connections", "Connections currently in use."),
		idle:       d("idle_connections", "Idle connections."),
		generation: d("generation", "Current pool generation; each reset starts a new one (starts at 1)."),
		state:      d("state", "The pool's judgement of the path: 1 for the current state, 0 for the others.", "state"),
		tunnelDown: d("tunnel_down", "1 while a tunnel DOWN event gates new connections."),
	}
	for _, k := range []struct {
		name, help string
		value      func(pool.Stats) uint64
	}{
		{"resets_total", "Pool resets of any kind, severs included.", func(s pool.Stats) uint64 { return s.Resets }},
		{"severs_total", "Resets that also closed the sockets of old connections.", func(s pool.Stats) uint64 { return s.Severs }},
		{"severed_sockets_total", "Sockets closed by severs and cancel guards.", func(s pool.Stats) uint64 { return s.SeveredSockets }},
		{"reset_closed_connections_total", "Idle connections a reset closed at once.", func(s pool.Stats) uint64 { return s.ResetClosed }},
		{"connections_opened_total", "Driver connections made.", func(s pool.Stats) uint64 { return s.Connects }},
		{"connections_renewed_total", "Pooled connections given a new driver connection at borrow.", func(s pool.Stats) uint64 { return s.Renewed }},
		{"connections_lost_total", "Operations that failed with a lost connection.", func(s pool.Stats) uint64 { return s.ConnsLost }},
		{"liveness_checks_total", "Pings of idle connections at borrow.", func(s pool.Stats) uint64 { return s.LivenessChecks }},
		{"liveness_failures_total", "Pings at borrow that got no answer within the pool's deadline.", func(s pool.Stats) uint64 { return s.LivenessFailures }},
		{"probes_total", "Fresh-connection probes of the path.", func(s pool.Stats) uint64 { return s.Probes }},
		{"probe_failures_total", "Fresh-connection probes that failed.", func(s pool.Stats) uint64 { return s.ProbeFailures }},
		{"tunnel_events_total", "Tunnel events applied.", func(s pool.Stats) uint64 { return s.Events }},
		{"tunnel_events_ignored_total", "Tunnel events ignored (other tunnel, invalid, stale, queue full).", func(s pool.Stats) uint64 { return s.EventsIgnored }},
		{"orphans_reaped_total", "Server sessions of lost connections ended after recovery.", func(s pool.Stats) uint64 { return s.OrphansReaped }},
	} {
		c.counters = append(c.counters, counterDesc{d(k.name, k.help), k.value})
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.inUse, c.idle, c.generation, c.state, c.tunnelDown} {
		ch <- d
	}
	for _, k := range c.counters {
		ch <- k.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.open, float64(s.OpenConnections))
	gauge(c.inUse, float64(s.InUse))
	gauge(c.idle, float64(s.Idle))
	gauge(c.generation, float64(s.Generation))
	for _, st := range states {
		gauge(c.state, boolFloat(s.Health == st), st.String())
	}
	gauge(c.tunnelDown, boolFloat(s.TunnelDown))
	for _, k := range c.counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.value(s)))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// eventCounter counts the pool's events by kind; its observe method is the
// pool's Config.OnEvent. Stats already counts most of what happens; this
// adds the kinds it has no counter for (state changes, liveness failures
// by event) and is the pattern for hooking any other sink to OnEvent.
type eventCounter struct {
	vec *prometheus.CounterVec
}

// eventKinds lists every pool.EventKind, so each series exists (at 0)
// before its first event.
var eventKinds = []pool.EventKind{
	pool.EventReset, pool.EventSever, pool.EventConnLost, pool.EventLivenessFailed, pool.EventHealthChange,
	pool.EventTunnel, pool.EventTunnelIgnored, pool.EventProbe, pool.EventOrphansReaped,
}

func newEventCounter(constLabels prometheus.Labels) *eventCounter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "flapguard_events_total",
		Help:        "Pool events seen by Config.OnEvent, by kind.",
		ConstLabels: constLabels,
	}, []string{"kind"})
	for _, k := range eventKinds {
		vec.WithLabelValues(k.String())
	}
	return &eventCounter{vec: vec}
}

// observe is safe for concurrent use: the pool calls OnEvent from
// whichever goroutine caused the event.
func (e *eventCounter) observe(ev pool.Event) { e.vec.WithLabelValues(ev.Kind.String()).Inc() }

// newRegistry returns a registry with p's collector and the event counter.
func newRegistry(p *pool.Pool, ev *eventCounter, constLabels prometheus.Labels) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{newCollector(p, constLabels), ev.vec} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
