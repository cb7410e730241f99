package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// State is what a tunnel-state event says about the path.
type State int

const (
	// Down: the tunnel is down. Pools sever their connections and gate new work.
	Down State = iota + 1
	// Up: the tunnel is up again. Pools discard every old connection (a new
	// generation), check one fresh connection, and release waiters.
	Up
	// Rekey: the tunnel's security associations were renegotiated. Old flows
	// may be dead; pools discard idle connections without gating new work.
	Rekey
)

// String returns "down", "up" or "rekey".
func (s State) String() string {
	switch s {
	case Down:
		return "down"
	case Up:
		return "up"
	case Rekey:
		return "rekey"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState parses "down", "up" or "rekey" (case-insensitive).
func ParseState(s string) (State, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "down":
		return Down, nil
	case "up":
		return Up, nil
	case "rekey":
		return Rekey, nil
	}
	return 0, fmt.Errorf("detect: unknown tunnel state %q (want down, up or rekey)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("detect: invalid state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func (s State) valid() bool { return s >= Down && s <= Rekey }

// Event is a tunnel-state change reported by a monitoring source (a router's
// syslog, a webhook, a fleet broker) or by the application itself.
type Event struct {
	Tunnel string    // tunnel id; AllTunnels ("*") means every tunnel
	State  State     // Down, Up or Rekey
	At     time.Time // when the source saw the change; zero means "now"
	Source string    // where the event came from, for logs ("syslog:rtx", "webhook")
}

// AllTunnels is the tunnel id of an event about every tunnel (a router
// restart, an operator's "everything is down"). It is spelled the same in
// Event.Tunnel and on every wire format.
const AllTunnels = "*"

// ErrInvalidEvent is returned (wrapped) by Validate for an event that must
// not be acted on.
var ErrInvalidEvent = errors.New("detect: invalid event")

// maxTunnelLen bounds a tunnel id taken from outside input.
const maxTunnelLen = 256

// Validate reports whether e can be acted on: a known State and a
// reasonable tunnel id (1 to 256 bytes, no control character, no Unicode
// format character: a bidi override such as U+202E in an id would
// reorder the log lines it is printed in, and a zero-width one would make
// two ids that look the same differ).
func (e Event) Validate() error {
	if !e.State.valid() {
		return fmt.Errorf("%w: state %d is not down, up or rekey", ErrInvalidEvent, int(e.State))
	}
	if e.Tunnel == "" {
		return fmt.Errorf("%w: tunnel id is empty (use %q for every tunnel)", ErrInvalidEvent, AllTunnels)
	}
	if len(e.Tunnel) > maxTunnelLen {
		return fmt.Errorf("%w: tunnel id longer than %d bytes", ErrInvalidEvent, maxTunnelLen)
	}
	for _, r := range e.Tunnel {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: tunnel id has a control character", ErrInvalidEvent)
		}
		if unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: tunnel id has a Unicode format character (U+%04X)", ErrInvalidEvent, r)
		}
	}
	return nil
}

func (e Event) String() string {
	return fmt.Sprintf("tunnel %s %s (source %s)", e.Tunnel, e.State, e.Source)
}

// Notifier receives events. *pool.Pool implements it; feeds deliver to one
// or more Notifiers. Notify must not block for long: feeds call it from
// their receive loop.
type Notifier interface {
	Notify(Event)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(Event)

// Notify calls f(ev).
func (f NotifierFunc) Notify(ev Event) { f(ev) }

// Acceptor is a Notifier that can say at once, without blocking, whether
// it took an event: Accept returns nil when the event was queued for the
// receiver's judgement, or an error, matching ErrIgnored, that says why it
// was not (invalid, older than the receiver's maximum age, stale against
// what it already applied, not one of its tunnels, after Close). A feed
// whose Notifier is an Acceptor answers its sender with that verdict, so
// it never answers "taken" for an event the receiver drops. *pool.Pool
// implements it.
type Acceptor interface {
	Notifier
	Accept(Event) error
}

// ErrIgnored is matched (errors.Is) by every error an Acceptor returns for
// an event it did not take.
var ErrIgnored = errors.New("detect: event ignored")

// Accept delivers ev to n and reports whether it was taken: n's own
// verdict when n is an Acceptor, nil (taken) for a plain Notifier, and an
// error matching ErrIgnored for a nil n.
func Accept(n Notifier, ev Event) error {
	switch a := n.(type) {
	case nil:
		return fmt.Errorf("%w: no notifier", ErrIgnored)
	case Acceptor:
		return a.Accept(ev)
	}
	n.Notify(ev)
	return nil
}

// Multi returns a Notifier that delivers each event to every n in order.
// It is an Acceptor: an event is taken when at least one of ns took it;
// when none did, the error joins their reasons.
func Multi(ns ...Notifier) Notifier {
	cp := make([]Notifier, 0, len(ns))
	for _, n := range ns {
		if n != nil {
			cp = append(cp, n)
		}
	}
	return multi(cp)
}

type multi []Notifier

func (m multi) Notify(ev Event) { _ = m.Accept(ev) }

func (m multi) Accept(ev Event) error {
	var errs []error
	taken := false
	for _, n := range m {
		if err := Accept(n, ev); err != nil {
			errs = append(errs, err)
		} else {
			taken = true
		}
	}
	if taken {
		return nil
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: no notifier", ErrIgnored)
	}
	return errors.Join(errs...)
}
