// Package natsfeed fans tunnel-state events out to a fleet over NATS: the
// host that sees a tunnel flap (from a webhook, a syslog receiver or its own
// probes) Publishes the event, and every application instance Subscribes
// with its pools as the Notifier.
//
// Open the connection with Connect (reconnect settings for a feed, log
// lines that carry no credentials, and no printing to stderr), then
// Publish or Subscribe on it.
//
// It is a separate package so that only programs that ask for NATS compile
// the client (github.com/nats-io/nats.go); nothing else in detect imports it.
//
// Wire format (JSON, one event per message):
//
//	{"v":1,"tunnel":"aws-1","state":"down","at":"2026-11-25T19:30:52Z","source":"syslog:yamaha/tunnel-down","sent":"2026-11-25T19:30:52.123456789Z"}
//
// v is 1; tunnel "*" (detect.AllTunnels) means every tunnel; state is "down", "up" or "rekey";
// at (when the source saw the change) is omitted when unknown; sent is set
// by Publish and is what MaxAge is measured against, so publishers and
// subscribers need synchronised clocks (NTP). Unknown fields are ignored.
//
// # Settings
//
// One rule for every numeric setting of Options, as in the rest of
// flapguard: 0 means the documented default; a negative value means off /
// no limit where the field's doc says so (MaxAge), and is an error
// elsewhere.
//
// # Security
//
// A message is trusted because the broker let its publisher publish: the
// feed checks shape, state and age, not who sent it. Anyone allowed to
// publish on the subject can report a tunnel down to every instance.
//
//   - Give publish permission on the subject only to the hosts that watch
//     tunnels, and the application instances subscribe permission only
//     (NATS authorization, per user: publish: {allow: ["flapguard.tunnels"]}
//     for the monitor; subscribe: {allow: ["flapguard.tunnels"]},
//     publish: {deny: ["flapguard.tunnels"]} for the applications), or use
//     an account of its own for the subject.
//   - Connect with credentials (user and password, a token, an NKey or a
//     creds file: nats.UserInfo, nats.Token, nats.Nkey,
//     nats.UserCredentials) over TLS (a tls:// URL, nats.RootCAs,
//     nats.ClientCert), so they and the events cannot be read or forged on
//     the path.
//   - MaxAge bounds how old a message may be when it arrives, so a
//     recorded event replayed later is dropped; within MaxAge, a message
//     whose bytes the Subscription already saw (a capture published
//     again) is dropped too (Stats.Repeated; the last 4096 messages are
//     remembered).
//   - Every event goes through detect.Accept. A *pool.Pool refuses, as
//     stale, a Down whose At is before the last Up it applied for the
//     tunnel, and events older than its EventMaxAge; so publish events
//     with At set. What a publisher can still send (a fresh Down, with
//     new bytes) is only a hint to the pool, which checks the path itself
//     before it cuts any work in progress.
//   - Tunnel ids with control or Unicode format characters (bidi
//     overrides) are invalid; source names lose them.
//
// Bad messages are counted in Stats and logged at most once a second per
// reason. Credentials in a server URL never appear in Connect's errors,
// in what they wrap, nor in its log lines (see Connect).
package natsfeed

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
	"github.com/nats-io/nats.go"
)

// wireVersion is the "v" of the wire format.
const wireVersion = 1

// maxPayload bounds a message we decode; real events are ~200 bytes.
const maxPayload = 16 << 10

type wireEvent struct {
	V      int          `json:"v"`
	Tunnel string       `json:"tunnel"`
	State  detect.State `json:"state"`
	At     time.Time    `json:"at,omitzero"`
	Source string       `json:"source,omitempty"`
	Sent   time.Time    `json:"sent"`
}

// Connect dials url with reconnect settings suited to a feed that must
// survive the very network trouble it reports: reconnect forever every
// 250 ms (plus up to 100 ms jitter), detect a dead server within ~20 s
// (ping every 10 s, 2 outstanding), 2 s dial timeout, and a 1 MiB
// reconnect buffer (events published while disconnected are sent on
// reconnect; subscribers drop them if older than MaxAge). Disconnects and
// reconnects are logged to logger (nil = discard). Options in opts are
// applied after these and override them. Connect fails if the first dial
// fails; add nats.RetryOnFailedConnect(true) to start disconnected instead.
//
// Credentials in url (user:password@, token@) never appear in its errors,
// in anything they wrap, nor in what it logs: when url holds a '@', the
// client's error texts (which quote URLs, whole or in pieces) are withheld
// and replaced by constants (the client's sentinel errors, which
// errors.Is still matches, an errno, "timeout"), and the URL list is
// shown with everything from "://" to its last '@' as "xxxxx". Pass
// credentials with nats.UserInfo or nats.Token instead to keep the
// client's full error texts.
//
// Use Connect rather than a plain nats.Connect: without an ErrorHandler,
// the client prints every asynchronous error to stderr (a flood of bad
// messages made it print 3423 lines in 2 s). With a connection of your
// own, install nats.ErrorHandler, nats.DisconnectErrHandler and
// nats.ReconnectHandler that log through a rate-limited logger, or do
// nothing.
func Connect(url string, logger *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	asyncLog := feedkit.NewRateLog(logger, time.Second, nil) // a slow consumer repeats itself
	red := newRedactor(url)
	base := []nats.Option{
		nats.Name("flapguard"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.Timeout(2 * time.Second),
		nats.ReconnectBufSize(1 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("natsfeed: disconnected", "err", red.err(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// Not ConnectedUrlRedacted: it hides a password but shows a
			// token (the URL's user name) whole.
			logger.Info("natsfeed: reconnected", "server", nc.ConnectedAddr())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			asyncLog.Log(slog.LevelWarn, "async error", "natsfeed: async error", "subject", subj, "err", red.err(err))
		}),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("natsfeed: connect: %w", red.err(err))
	}
	return nc, nil
}

// Publish sends ev on subject, stamped with the current time. An event
// that fails ev.Validate() is not sent. Publish returns once the message is
// in the client's buffer; call nc.FlushTimeout to wait for the server.
func Publish(nc *nats.Conn, subject string, ev detect.Event) error {
	return publishAt(nc, subject, ev, time.Now())
}

func publishAt(nc *nats.Conn, subject string, ev detect.Event, now time.Time) error {
	if nc == nil {
		return errors.New("natsfeed: Publish: nil *nats.Conn")
	}
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("natsfeed: Publish: %w", err)
	}
	b, err := json.Marshal(wireEvent{V: wireVersion, Tunnel: ev.Tunnel, State: ev.State, At: ev.At, Source: ev.Source, Sent: now})
	if err != nil {
		return fmt.Errorf("natsfeed: Publish: %w", err)
	}
	if err := nc.Publish(subject, b); err != nil {
		return fmt.Errorf("natsfeed: Publish %s: %w", subject, err)
	}
	return nil
}

// Options configures Subscribe. The zero value works.
type Options struct {
	// MaxAge drops events whose sent time is further than this from now
	// (in the past, or in the future: clock skew). 0 = 30 s; negative =
	// no limit.
	MaxAge time.Duration
	// Queue, when set, joins a queue group: each event goes to one member.
	// "" (the default) delivers every event to every subscriber, which is
	// what a fleet of pools wants.
	Queue string
	// Logger gets dropped messages (invalid, stale), at most one line a
	// second for each reason. nil = discard.
	Logger *slog.Logger
	// Now is the clock for MaxAge. nil = time.Now.
	Now func() time.Time
}

// Stats are a Subscription's counters.
type Stats struct {
	Received uint64 // messages handed to us by the client
	Events   uint64 // events the Notifier took
	Refused  uint64 // events the Notifier refused (detect.Accept: too old, stale, not its tunnel)
	Stale    uint64 // older (or newer) than MaxAge
	Repeated uint64 // the same bytes again within MaxAge: a replay, dropped
	Invalid  uint64 // not JSON, wrong version, bad state or tunnel, too big
	// SlowConsumerDropped counts messages the nats client dropped because
	// the Notifier did not keep up (pending limit 4096 messages / 4 MiB).
	SlowConsumerDropped uint64
}

// Subscription delivers events received on a subject to a Notifier,
// through detect.Accept (an Acceptor's refusals are counted in
// Stats.Refused). The Notifier is called from the nats client's goroutine
// for this subscription, one event at a time, in publish order per
// publisher.
type Subscription struct {
	sub      *nats.Subscription
	notifier detect.Notifier
	maxAge   time.Duration
	now      func() time.Time
	log      *feedkit.RateLog

	received, events, refused, stale, repeated, invalid atomic.Uint64
	seen                                                *seenSet // touched only by handle, under the client's one goroutine per subscription

	mu     sync.RWMutex // protects closed; held (read) while a message is handled
	closed bool
}

// Subscribe starts delivering events on subject to n. Call Unsubscribe to
// stop; reconnects are handled by the nats client (see Connect), which
// re-subscribes by itself.
func Subscribe(nc *nats.Conn, subject string, n detect.Notifier, opts Options) (*Subscription, error) {
	if nc == nil {
		return nil, errors.New("natsfeed: Subscribe: nil *nats.Conn")
	}
	if n == nil {
		return nil, errors.New("natsfeed: Subscribe: nil Notifier")
	}
	if feedkit.IsNil(n) {
		return nil, fmt.Errorf("natsfeed: Subscribe: nil Notifier (%T)", n)
	}
	s := &Subscription{notifier: n, maxAge: opts.MaxAge, now: opts.Now, seen: newSeenSet(maxSeen)}
	if s.maxAge == 0 {
		s.maxAge = 30 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	// A flood of bad messages is counted in full and logged once a second
	// per reason, with the number of lines held back.
	s.log = feedkit.NewRateLog(opts.Logger, time.Second, s.now)
	var err error
	if opts.Queue != "" {
		s.sub, err = nc.QueueSubscribe(subject, opts.Queue, s.handle)
	} else {
		s.sub, err = nc.Subscribe(subject, s.handle)
	}
	if err != nil {
		return nil, fmt.Errorf("natsfeed: subscribe %s: %w", subject, err)
	}
	if err := s.sub.SetPendingLimits(4096, 4<<20); err != nil {
		s.sub.Unsubscribe()
		return nil, fmt.Errorf("natsfeed: subscribe %s: %w", subject, err)
	}
	return s, nil
}

func (s *Subscription) handle(m *nats.Msg) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	s.received.Add(1)
	ev, err := decode(m.Data)
	if err != nil {
		s.invalid.Add(1)
		s.log.Log(slog.LevelWarn, "invalid", "natsfeed: invalid message ignored", "subject", m.Subject, "err", err)
		return
	}
	if s.maxAge > 0 {
		age := s.now().Sub(ev.sent)
		if age > s.maxAge || age < -s.maxAge {
			s.stale.Add(1)
			s.log.Log(slog.LevelWarn, "stale", "natsfeed: stale event ignored", "subject", m.Subject, "event", ev.Event.String(), "age", age)
			return
		}
	}
	// A captured message published again carries the same bytes (its
	// "sent" included): within MaxAge, it is dropped here. Beyond MaxAge
	// it is stale. A replay with fresh bytes needs publish permission.
	if !s.seen.add(m.Data, s.now(), ev.sent, s.maxAge) {
		s.repeated.Add(1)
		s.log.Log(slog.LevelWarn, "repeated", "natsfeed: repeated message ignored", "subject", m.Subject, "event", ev.Event.String())
		return
	}
	if _, ok := s.notifier.(detect.Acceptor); !ok {
		// A plain Notifier takes everything: counted before the call,
		// so Stats already shows the event when the Notifier sees it.
		s.events.Add(1)
		s.notifier.Notify(ev.Event)
		return
	}
	if err := detect.Accept(s.notifier, ev.Event); err != nil {
		s.refused.Add(1)
		s.log.Log(slog.LevelInfo, "refused", "natsfeed: event not taken by the receiver", "subject", m.Subject, "event", ev.Event.String(), "err", err)
		return
	}
	s.events.Add(1)
}

type decoded struct {
	detect.Event
	sent time.Time
}

func decode(data []byte) (decoded, error) {
	if len(data) > maxPayload {
		return decoded{}, fmt.Errorf("payload of %d bytes, limit %d", len(data), maxPayload)
	}
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return decoded{}, fmt.Errorf("bad JSON: %w", err)
	}
	if w.V != wireVersion {
		return decoded{}, fmt.Errorf("wire version %d, want %d", w.V, wireVersion)
	}
	if w.Sent.IsZero() {
		return decoded{}, errors.New(`missing "sent"`)
	}
	ev := detect.Event{Tunnel: w.Tunnel, State: w.State, At: w.At, Source: "nats"}
	if src := feedkit.CleanSource(w.Source); src != "" {
		ev.Source += ":" + src
	}
	if err := ev.Validate(); err != nil {
		return decoded{}, err
	}
	return decoded{Event: ev, sent: w.Sent}, nil
}

// Stats returns the counters.
func (s *Subscription) Stats() Stats {
	st := Stats{
		Received: s.received.Load(), Events: s.events.Load(), Refused: s.refused.Load(),
		Stale: s.stale.Load(), Repeated: s.repeated.Load(), Invalid: s.invalid.Load(),
	}
	if d, err := s.sub.Dropped(); err == nil && d > 0 {
		st.SlowConsumerDropped = uint64(d)
	}
	return st
}

// Unsubscribe stops the subscription. When it returns, the Notifier is
// not running and will not be called again. It is idempotent.
func (s *Subscription) Unsubscribe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.sub.Unsubscribe()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("natsfeed: unsubscribe: %w", err)
	}
	return nil
}
