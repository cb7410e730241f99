package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"
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
// reasonable tunnel id.
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

// Multi returns a Notifier that delivers each event to every n in order.
func Multi(ns ...Notifier) Notifier {
	cp := append([]Notifier(nil), ns...)
	return NotifierFunc(func(ev Event) {
		for _, n := range cp {
			if n != nil {
				n.Notify(ev)
			}
		}
	})
}
