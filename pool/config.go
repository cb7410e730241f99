package pool

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// DialFunc dials a network connection. It has the shape of
// net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config configures a Pool. The zero value works and is the recommended
// setting: every duration field documents its default, used when the field
// is 0. A negative duration turns the feature off where the field says so,
// and is an error elsewhere.
//
// The defaults are chosen for a database reached over a site-to-site VPN
// with a round-trip time of a few to a few hundred milliseconds.
type Config struct {
	// Dial is the dialer under the pool's own dialer, which tracks and
	// hardens every socket it makes. nil means a plain net.Dialer. Only used
	// for drivers with socket control (see Open).
	Dial DialFunc

	// DialTimeout bounds each TCP dial the pool makes, so a request with no
	// deadline of its own cannot hang on a SYN into a dead tunnel.
	// Default 3s. Negative: no bound beyond the caller's context.
	DialTimeout time.Duration

	// ConnectTimeout bounds each whole connection attempt (dial, TLS and
	// login) the pool makes, whatever the caller's context, so a request
	// with no deadline cannot hang in a login whose packets a dead tunnel
	// swallows. Default 10s. Negative: only the caller's context.
	ConnectTimeout time.Duration

	// KeepAliveIdle, KeepAliveInterval and KeepAliveCount set TCP keepalive
	// on every socket the pool dials: an idle connection through a dead
	// tunnel is noticed after Idle + Interval*Count. Defaults 15s, 5s and 3
	// (30s in all). A negative value keeps the operating system's value.
	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int

	// UserTimeout sets TCP_USER_TIMEOUT (Linux): how long sent data may stay
	// unacknowledged before the kernel drops the connection. It bounds a
	// query written into a dead tunnel (where keepalive never fires) and does
	// not affect a long query on a live server. Default 15s. Negative: off.
	UserTimeout time.Duration

	// LivenessIdle: a pooled connection idle for longer than this is pinged
	// when it is borrowed, with a deadline the pool chooses (see
	// LivenessTimeoutMin/Max), never the caller's whole deadline. Default 1s.
	// Negative: no liveness check at borrow. Idle time is read from a coarse
	// clock the pool ticks every LivenessIdle/20 (1ms to 50ms), so a borrow
	// reads no clock: a connection idle within a tick of LivenessIdle may be
	// pinged or not.
	LivenessIdle time.Duration

	// LivenessTimeoutMin and LivenessTimeoutMax bound the deadline of a
	// liveness ping. The pool derives it from the connection's measured
	// round-trip time (the kernel's TCP_INFO for sockets it dialed, observed
	// ping times otherwise); if the answer has arrived by then but was not
	// read yet (this process is starved of CPU), it gets that long once
	// more. A connection connected, lent out or probed within LivenessIdle
	// is not pinged, by the pool nor by a driver that asks Pinged (pgx).
	// Defaults 200ms and 2s.
	LivenessTimeoutMin time.Duration
	LivenessTimeoutMax time.Duration

	// CancelGrace: when a caller's context ends while a driver that waits
	// long for a cancel acknowledgement (go-mssqldb waits 5s for ATTENTION)
	// is still busy, the pool closes that connection's socket after this
	// grace. Default 50ms. Negative: never (leave it to the driver).
	CancelGrace time.Duration

	// ProbeInterval: how often the supervisor looks at an idle pool when no
	// traffic proves the path (one idle connection's ping), and how often a
	// path found down is checked again after its first 30s (before that, a
	// new connect every 25ms). Default 1s (with ±20% jitter). Negative: no timed checks
	// at all; hints (tunnel events, failures, a request waiting at the
	// gate) still start checks, so a dead path is found again only when
	// something asks.
	ProbeInterval time.Duration

	// ProbeTimeout is the longest a check's fresh connection (dial and
	// login) may take; its deadline is three measured connect times, at
	// least 50ms, at most this. It also bounds the background rebuild.
	// Default 2s.
	ProbeTimeout time.Duration

	// ResetCooldown is the one limiter of automatic resets: at least this
	// long between two, whatever found them necessary; one asked for
	// inside it is owed and made at its end. A flapping path cannot make
	// the pool churn connections. Explicit Reset and Sever calls are not
	// limited. Default 1s.
	ResetCooldown time.Duration

	// Tunnels lists the tunnel ids whose events (Notify) this pool obeys,
	// and says they are redundant paths to the server (an AWS Site-to-Site
	// VPN connection's two tunnels): the path is down only when every one
	// of them is down. Empty: every tunnel id is obeyed and learned from
	// the events (see Notify for how a DOWN is judged then). An event for
	// detect.AllTunnels applies to every pool.
	Tunnels []string

	// RequireAllTunnels: the tunnels in Tunnels are not redundant, each
	// carries part of the traffic, so any one's DOWN takes the path down.
	RequireAllTunnels bool

	// RefuseAllTunnels: ignore events for detect.AllTunnels, so no single
	// event can take down every pool that hears it.
	RefuseAllTunnels bool

	// EventMaxAge: a tunnel event whose At is older than this when it
	// arrives is ignored (a stale DOWN replayed by a relay must not sever a
	// working pool). Events are otherwise ordered by when the pool receives
	// them, never by At, and an At in the future is taken as now. Default
	// 2m. Negative: no age limit.
	EventMaxAge time.Duration

	// DownWait: while the gate is shut (a check found the path down, or a
	// check started by a DOWN runs), a request that needs a new connection
	// waits up to this long in all (across database/sql's retries) for it
	// to open, then fails with an error matching ErrTunnelDown, and also
	// the context's error when its own deadline ended first. Default 5s.
	// Negative: fail at once.
	DownWait time.Duration

	// AllowSoftMode lets Open use a database/sql driver that no flapguard
	// adapter registered, with soft reset and liveness only (no sever, no
	// TCP hardening, no cancel guard); Open logs that once at Warn. Without
	// it Open returns an error naming the adapter import to add.
	AllowSoftMode bool

	// Orphans: after recovering from a dead path, end the server sessions
	// the pool's abandoned connections left behind. The server does not
	// know they are dead and keeps them (holding their locks) until its own
	// TCP keepalive fires, often hours later. A session is ended only if
	// its id and fingerprint (client port and start time, as the server
	// saw them at connect) still match, so a reused id is never hit.
	// OrphansAuto, the default, reaps where no extra permission is needed:
	// PostgreSQL (same role) and MySQL/MariaDB (own threads); not SQL
	// Server, where KILL needs ALTER ANY CONNECTION (use OrphansOn).
	Orphans OrphanMode

	// Classifier is asked first whether an error means a lost connection;
	// it can overrule the built-in rules (like HikariCP's
	// SQLExceptionOverride). A panicking classifier is treated as having no
	// opinion.
	Classifier detect.Classifier

	// Logger receives the pool's log lines. nil: no logging. No line
	// contains a DSN password.
	Logger *slog.Logger

	// OnEvent, if set, is called for every reset, sever, lost connection,
	// liveness failure, state change and tunnel event. It is called outside
	// the pool's locks, on the goroutine that caused the event; it must not
	// block for long. It may call Pool.Close: Close then returns without
	// waiting for the callbacks in progress (its own included), which end
	// when they return.
	OnEvent func(Event)

	// Observer, for metrics: each connect's duration, each borrow's use of
	// a connection, each timeout obtaining one (see Observer). Zero: none,
	// at no cost.
	Observer Observer

	// now is injected by tests.
	now           func() time.Time
	clockInjected bool
}

const (
	defaultDialTimeout      = 3 * time.Second
	defaultConnectTimeout   = 10 * time.Second
	defaultKeepAliveIdle    = 15 * time.Second
	defaultKeepAliveIntvl   = 5 * time.Second
	defaultKeepAliveCount   = 3
	defaultUserTimeout      = 15 * time.Second
	defaultLivenessIdle     = time.Second
	defaultLivenessMin      = 200 * time.Millisecond
	defaultLivenessMax      = 2 * time.Second
	defaultCancelGrace      = 50 * time.Millisecond
	defaultProbeInterval    = time.Second
	defaultProbeTimeout     = 2 * time.Second
	defaultResetCooldown    = time.Second
	defaultDownWait         = 5 * time.Second
	defaultEventMaxAge      = 2 * time.Minute
	off                     = -1
	maxReasonableDuration   = 24 * time.Hour
	maxReasonableKeepAlives = 1000
)

// OrphanMode selects orphan reaping (Config.Orphans).
type OrphanMode int

const (
	OrphansAuto OrphanMode = iota // reap where it needs no extra permission
	OrphansOn                     // reap with every driver that supports it
	OrphansOff                    // never reap
)

// withDefaults validates c and returns a copy with every default filled in.
// Errors name the offending field.
func (c Config) withDefaults() (Config, error) {
	type dur struct {
		name      string
		v         *time.Duration
		def       time.Duration
		negIsOff  bool
		negKeepOS bool
	}
	durs := []dur{
		{"DialTimeout", &c.DialTimeout, defaultDialTimeout, true, false},
		{"ConnectTimeout", &c.ConnectTimeout, defaultConnectTimeout, true, false},
		{"KeepAliveIdle", &c.KeepAliveIdle, defaultKeepAliveIdle, false, true},
		{"KeepAliveInterval", &c.KeepAliveInterval, defaultKeepAliveIntvl, false, true},
		{"UserTimeout", &c.UserTimeout, defaultUserTimeout, true, false},
		{"LivenessIdle", &c.LivenessIdle, defaultLivenessIdle, true, false},
		{"LivenessTimeoutMin", &c.LivenessTimeoutMin, defaultLivenessMin, false, false},
		{"LivenessTimeoutMax", &c.LivenessTimeoutMax, defaultLivenessMax, false, false},
		{"CancelGrace", &c.CancelGrace, defaultCancelGrace, true, false},
		{"ProbeInterval", &c.ProbeInterval, defaultProbeInterval, true, false},
		{"ProbeTimeout", &c.ProbeTimeout, defaultProbeTimeout, false, false},
		{"ResetCooldown", &c.ResetCooldown, defaultResetCooldown, false, false},
		{"DownWait", &c.DownWait, defaultDownWait, true, false},
		{"EventMaxAge", &c.EventMaxAge, defaultEventMaxAge, true, false},
	}
	for _, d := range durs {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0 && (d.negIsOff || d.negKeepOS):
			*d.v = off
		case *d.v < 0:
			return c, fmt.Errorf("pool: Config.%s is negative (%v); use 0 for the default %v", d.name, *d.v, d.def)
		case *d.v > maxReasonableDuration:
			return c, fmt.Errorf("pool: Config.%s = %v is longer than %v", d.name, *d.v, maxReasonableDuration)
		}
	}
	switch {
	case c.KeepAliveCount == 0:
		c.KeepAliveCount = defaultKeepAliveCount
	case c.KeepAliveCount < 0:
		c.KeepAliveCount = off
	case c.KeepAliveCount > maxReasonableKeepAlives:
		return c, fmt.Errorf("pool: Config.KeepAliveCount = %d is more than %d", c.KeepAliveCount, maxReasonableKeepAlives)
	}
	if c.Orphans < OrphansAuto || c.Orphans > OrphansOff {
		return c, fmt.Errorf("pool: Config.Orphans = %d is not OrphansAuto, OrphansOn or OrphansOff", c.Orphans)
	}
	if c.LivenessTimeoutMin > c.LivenessTimeoutMax {
		return c, fmt.Errorf("pool: Config.LivenessTimeoutMin (%v) is above Config.LivenessTimeoutMax (%v)", c.LivenessTimeoutMin, c.LivenessTimeoutMax)
	}
	for i, t := range c.Tunnels {
		if err := (detect.Event{Tunnel: t, State: detect.Up}).Validate(); err != nil || t == detect.AllTunnels {
			return c, fmt.Errorf("pool: Config.Tunnels[%d] %q is not a valid tunnel id", i, t)
		}
	}
	c.Tunnels = append([]string(nil), c.Tunnels...)
	if c.now == nil {
		c.now = time.Now
	} else {
		c.clockInjected = true
	}
	return c, nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
