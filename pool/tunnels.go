package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// The tunnels. A pool's path to its server runs through the tunnels in
// Config.Tunnels, which are redundant (an AWS Site-to-Site VPN connection
// is always two tunnels, taken down one at a time for maintenance): they
// report the path down only when every one of them is down. With
// Config.RequireAllTunnels each carries part of the traffic and any DOWN
// reports the path down. With Config.Tunnels empty the pool learns the
// tunnels from the events it gets, and the path is reported down when every
// tunnel it heard of is down.
//
// What the tunnels report is a hint (decide.go): it starts a check, and
// decides only whether the gate is held while that check runs.

// maxLearnedTunnels bounds the tunnels a pool without Config.Tunnels
// remembers; the one heard from longest ago is forgotten first.
const maxLearnedTunnels = 64

// maxEventSkew: an event dated further ahead than this is treated as
// received now (a sender's clock running fast must not freeze a tunnel).
const maxEventSkew = 5 * time.Second

// inboxLen bounds the events waiting for the supervisor; it takes them as
// fast as a map write each, so only a flood faster than that fills it.
const inboxLen = 4096

// tunnelHints is what the tunnel events say. Only next touches it.
type tunnelHints struct {
	configured bool // Config.Tunnels given: events for other tunnels never reach here
	series     bool // Config.RequireAllTunnels
	state      map[string]bool
	order      []string // learned tunnels, least recently heard first
	allDown    bool     // a DOWN for detect.AllTunnels is in force
	forgotten  uint64
}

func newTunnelHints(cfg *Config) tunnelHints {
	t := tunnelHints{configured: len(cfg.Tunnels) > 0, series: cfg.RequireAllTunnels, state: make(map[string]bool)}
	for _, id := range cfg.Tunnels {
		t.state[id] = false
	}
	return t
}

// apply records a Down or Up; it reports false for an unknown tunnel of a
// pool with Config.Tunnels (Accept filters those; defensive).
func (t *tunnelHints) apply(ev detect.Event) bool {
	isDown := ev.State == detect.Down
	if ev.Tunnel == detect.AllTunnels {
		t.allDown = isDown
		for id := range t.state {
			t.state[id] = isDown
		}
		return true
	}
	if _, known := t.state[ev.Tunnel]; !known {
		if t.configured {
			return false
		}
		if len(t.state) >= maxLearnedTunnels {
			delete(t.state, t.order[0])
			t.order = t.order[1:]
			t.forgotten++
		}
	}
	if !t.configured {
		t.order = slices.DeleteFunc(t.order, func(id string) bool { return id == ev.Tunnel })
		t.order = append(t.order, ev.Tunnel)
	}
	t.state[ev.Tunnel] = isDown
	if !isDown {
		t.allDown = false // an Up for a named tunnel answers a DOWN for all
	}
	return true
}

// down reports whether the tunnels report the path down.
func (t *tunnelHints) down() bool {
	if t.allDown {
		return true
	}
	n := 0
	for _, d := range t.state {
		if d {
			n++
		}
	}
	if t.series {
		return n > 0
	}
	return n > 0 && n == len(t.state)
}

// inbox is where Accept leaves events for the supervisor, in the order they
// were received. It also remembers, per tunnel, the At of the last Up it
// took, so a DOWN dated before it is refused as stale (a replay).
type inbox struct {
	mu     sync.Mutex // protects following
	evs    []queued
	lastUp map[string]time.Time
}

type queued struct {
	ev   detect.Event
	done chan Verdict // nil: nobody waits
}

// put queues ev; it refuses a DOWN dated before the last Up of its tunnel,
// and any event once the inbox is full.
func (in *inbox) put(ev detect.Event, done chan Verdict) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch ev.State {
	case detect.Down:
		if up, ok := in.lastUp[ev.Tunnel]; ok && ev.At.Before(up) {
			return errors.New("stale: dated before the last UP of its tunnel (a replay?)")
		}
		if up, ok := in.lastUp[detect.AllTunnels]; ok && ev.At.Before(up) {
			return errors.New("stale: dated before the last UP for every tunnel (a replay?)")
		}
	case detect.Up:
		if in.lastUp == nil {
			in.lastUp = make(map[string]time.Time)
		}
		if _, ok := in.lastUp[ev.Tunnel]; !ok && len(in.lastUp) >= maxLearnedTunnels+1 {
			for id := range in.lastUp { // forget one: bounded memory
				delete(in.lastUp, id)
				break
			}
		}
		if ev.At.After(in.lastUp[ev.Tunnel]) {
			in.lastUp[ev.Tunnel] = ev.At
		}
	}
	if len(in.evs) >= inboxLen {
		return errors.New("too many events waiting (a flood)")
	}
	in.evs = append(in.evs, queued{ev, done})
	return nil
}

// take empties the inbox, oldest first.
func (in *inbox) take() []queued {
	in.mu.Lock()
	defer in.mu.Unlock()
	evs := in.evs
	in.evs = nil
	return evs
}

// Verdict is what the pool did with a tunnel event (NotifyWait).
type Verdict struct {
	// Taken: the event was accepted and handed to the supervisor.
	Taken bool
	// Checked: a check ran after the event; PathOK is what it found.
	Checked bool
	PathOK  bool
	// Reason says why the event was ignored, or what the check found.
	Reason string
}

func (v Verdict) String() string {
	switch {
	case !v.Taken:
		return "ignored: " + v.Reason
	case !v.Checked:
		return "taken: " + v.Reason
	case v.PathOK:
		return "checked, path answers: " + v.Reason
	}
	return "checked, path down: " + v.Reason
}

// Notify hands a tunnel event to the pool (it implements detect.Notifier)
// and never blocks; Accept is the same with the verdict, NotifyWait waits
// for the check the event started.
//
// Every event is a hint (see the package doc): a DOWN, an UP or a Rekey
// starts a check of the path and of the current connections, and only what
// the check finds severs, resets or cuts anything. While a check started by
// a DOWN that reports the path down runs (a few milliseconds), new
// connections wait at the gate; if it finds the path down the gate stays
// shut (up to Config.DownWait for each request, then ErrTunnelDown) until a
// check finds it answering. One of several redundant tunnels going down
// holds nothing (see Config.Tunnels).
//
// Events are ordered by when the pool receives them. The sender's At only
// refuses events older than Config.EventMaxAge, and a DOWN dated before the
// last UP the pool took for its tunnel (a replay); an At in the future is
// taken as now. After Close it does nothing.
func (p *Pool) Notify(ev detect.Event) { _ = p.Accept(ev) }

// Accept is Notify that says whether the pool took the event: nil, or an
// error matching detect.ErrIgnored that says why not (invalid, not one of
// Config.Tunnels, refused AllTunnels, older than Config.EventMaxAge, stale
// against the last UP, too many events waiting, closed). It implements
// detect.Acceptor, so a feed answers its sender truthfully.
func (p *Pool) Accept(ev detect.Event) error {
	return p.accept(ev, nil)
}

// NotifyWait hands ev to the pool and waits, up to ctx's end, for its
// verdict: ignored and why, or the result of the first check that started
// after it was applied. It lets a program or a test act on what the pool
// found instead of sleeping.
func (p *Pool) NotifyWait(ctx context.Context, ev detect.Event) (Verdict, error) {
	done := make(chan Verdict, 1)
	if err := p.accept(ev, done); err != nil {
		return Verdict{Reason: err.Error()}, nil
	}
	select {
	case v := <-done:
		return v, nil
	case <-ctx.Done():
		return Verdict{Taken: true, Reason: "still checking"}, ctx.Err()
	}
}

func (p *Pool) accept(ev detect.Event, done chan Verdict) error {
	if p.closed.Load() {
		return p.ignore(ev, "the pool is closed")
	}
	if err := ev.Validate(); err != nil {
		return p.ignore(ev, err.Error())
	}
	if ev.Tunnel == detect.AllTunnels && p.cfg.RefuseAllTunnels {
		return p.ignore(ev, "events for every tunnel are refused (Config.RefuseAllTunnels)")
	}
	if ev.Tunnel != detect.AllTunnels && len(p.cfg.Tunnels) > 0 && !slices.Contains(p.cfg.Tunnels, ev.Tunnel) {
		return p.ignore(ev, "not one of this pool's tunnels")
	}
	now := p.cfg.now()
	switch {
	case ev.At.IsZero():
		ev.At = now
	case ev.At.After(now.Add(maxEventSkew)):
		p.stats.eventsFuture.Add(1)
		p.logLimited("future", "flapguard: tunnel event dated in the future; taken as received now", "tunnel", ev.Tunnel, "at", ev.At, "source", ev.Source)
		ev.At = now
	case p.cfg.EventMaxAge != off && now.Sub(ev.At) > p.cfg.EventMaxAge:
		return p.ignore(ev, "older than Config.EventMaxAge")
	}
	if err := p.inbox.put(ev, done); err != nil {
		return p.ignore(ev, err.Error())
	}
	p.sup.kick()
	return nil
}

var (
	_ detect.Notifier = (*Pool)(nil)
	_ detect.Acceptor = (*Pool)(nil)
)

func (p *Pool) ignore(ev detect.Event, reason string) error {
	p.stats.eventsIgnored.Add(1)
	p.emit(Event{Kind: EventTunnelIgnored, TunnelEvent: ev, Reason: reason})
	return fmt.Errorf("%w: %s", detect.ErrIgnored, reason)
}
