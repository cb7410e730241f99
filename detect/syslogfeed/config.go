package syslogfeed

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// Config configures a Receiver. Only Notifier and Rules are required; for
// every numeric field 0 picks the documented default, and a negative value
// is an error except where the field says what it means
// (MaxConnsPerSource).
type Config struct {
	// Notifier receives the events, one at a time, from the receiver's
	// single delivery goroutine. Required.
	Notifier detect.Notifier
	// Rules turn lines into events, e.g. StrongSwan().Rules or
	// YamahaRTX().WithTunnelMap(m).Rules. Required.
	Rules []Rule
	// MaxLine is the longest message accepted; longer ones are dropped and
	// counted. 0 = DefaultMaxLine (8 KiB).
	MaxLine int
	// MaxConns bounds concurrent TCP connections. A connection over the
	// limit is admitted and the connection idle longest (never a message
	// first, then the oldest last message) is closed and counted as
	// Evicted. 0 = 64.
	MaxConns int
	// MaxConnsPerSource bounds concurrent TCP connections from one IP
	// address the same way, so that one sender cannot hold every slot.
	// 0 = 8; negative = no per-source limit (behind a NAT that merges
	// many routers into one address).
	MaxConnsPerSource int
	// QueueLen bounds events waiting for the Notifier; when full, new
	// events are dropped and counted rather than blocking the read loops.
	// 0 = 256.
	QueueLen int
	// IdleTimeout closes a TCP connection that delivers no complete
	// message (a non-empty line or frame) for this long, whatever else it
	// sends: bare newlines or a line dribbled a byte at a time do not keep
	// it open. 0 = 5 minutes.
	IdleTimeout time.Duration
	// AllowFrom, when set, accepts messages only from these source
	// networks (UDP datagrams and TCP connections from elsewhere are
	// dropped and counted). nil = accept all. It is not authentication:
	// a UDP source address can be forged by anyone on the path (see the
	// package doc, Security); prefer TLS with client certificates, and
	// bind to an address only the routers reach, or firewall it.
	AllowFrom []netip.Prefix
	// Logger gets rejections and drops, at most one line a second for
	// each reason; a line after a burst says how many were held back
	// ("suppressed"). nil = discard.
	Logger *slog.Logger
	// Now stamps Event.At at receive time. nil = time.Now.
	Now func() time.Time
}

// Defaults of Config's zero fields.
const (
	defaultMaxConns    = 64
	defaultPerSource   = 8
	defaultQueueLen    = 256
	defaultIdleTimeout = 5 * time.Minute
)

// check validates c and fills in the defaults.
func (c Config) check() (Config, error) {
	if feedkit.IsNil(c.Notifier) { // a (*pool.Pool)(nil) too: it would panic on the first event
		return c, fmt.Errorf("syslogfeed: Config.Notifier is nil (%T)", c.Notifier)
	}
	if len(c.Rules) == 0 {
		return c, errors.New("syslogfeed: Config.Rules is empty (use packs, e.g. syslogfeed.StrongSwan().Rules)")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxLine", int64(c.MaxLine)}, {"MaxConns", int64(c.MaxConns)},
		{"QueueLen", int64(c.QueueLen)}, {"IdleTimeout", int64(c.IdleTimeout)},
	} {
		if f.v < 0 {
			return c, fmt.Errorf("syslogfeed: Config.%s is negative", f.name)
		}
	}
	if c.MaxLine == 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.MaxConnsPerSource == 0 {
		c.MaxConnsPerSource = defaultPerSource
	}
	if c.QueueLen == 0 {
		c.QueueLen = defaultQueueLen
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Stats are a Receiver's counters since New.
type Stats struct {
	Received  uint64 // messages read (UDP datagram lines, TCP frames)
	Events    uint64 // events the Notifier took
	Refused   uint64 // events the Notifier refused (detect.Accept: too old, stale, not its tunnel)
	Ignored   uint64 // messages no rule turned into an event
	Dropped   uint64 // too long, queue full, source not in AllowFrom, TLS handshake failed or found no slot
	Malformed uint64 // bad syslog header, bad framing, invalid event

	Conns      uint64 // TCP connections admitted
	OpenConns  uint64 // TCP connections open now
	Evicted    uint64 // TCP connections closed to make room for a new one
	IdleClosed uint64 // TCP connections closed after IdleTimeout without a message

	// AcceptErrors counts temporary accept errors (EMFILE, ENFILE,
	// ECONNABORTED…) that ServeTCP survived by backing off.
	AcceptErrors uint64
}
