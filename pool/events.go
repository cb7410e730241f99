package pool

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// EventKind says what happened in an Event.
type EventKind int

const (
	// EventReset: a new generation began; idle connections were closed and
	// in-use ones will be discarded when returned.
	EventReset EventKind = iota + 1
	// EventSever: a reset that also closed the sockets of every
	// old-generation connection, so requests hung on them returned.
	EventSever
	// EventConnLost: an operation failed with an error classified as a lost
	// connection.
	EventConnLost
	// EventLivenessFailed: a connection did not answer its liveness ping at
	// borrow within the pool's deadline and was discarded.
	EventLivenessFailed
	// EventHealthChange: the path's health changed (From → To).
	EventHealthChange
	// EventTunnel: a tunnel event was applied (Tunnel holds it).
	EventTunnel
	// EventTunnelIgnored: a tunnel event was not applied (Reason says why).
	EventTunnelIgnored
	// EventProbe: the prober checked the path (Err is nil when it was fine).
	EventProbe
	// EventOrphansReaped: server sessions left by dead connections were
	// killed (Count of them).
	EventOrphansReaped
	// EventFlowsCut: requests in flight on connections whose flows a check
	// found dead while the path answers were cut (Count sockets closed).
	EventFlowsCut
)

var kindNames = [...]string{
	EventReset:          "reset",
	EventSever:          "sever",
	EventConnLost:       "conn-lost",
	EventLivenessFailed: "liveness-failed",
	EventHealthChange:   "health-change",
	EventTunnel:         "tunnel",
	EventTunnelIgnored:  "tunnel-ignored",
	EventProbe:          "probe",
	EventOrphansReaped:  "orphans-reaped",
	EventFlowsCut:       "flows-cut",
}

func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event describes something the pool did or saw. Fields may be added.
type Event struct {
	Kind        EventKind
	At          time.Time
	Generation  uint64 // the generation after the event
	Reason      string
	From, To    Health       // EventHealthChange
	TunnelEvent detect.Event // EventTunnel, EventTunnelIgnored
	Count       int          // sockets severed, conns closed, sessions reaped
	Err         error        // the error behind the event, if any
}

// String formats the event on one line, e.g.
// "health-change gen=3 suspect->recovering (old connections discarded)".
func (e Event) String() string {
	s := fmt.Sprintf("%s gen=%d", e.Kind, e.Generation)
	switch e.Kind {
	case EventHealthChange:
		s += fmt.Sprintf(" %s->%s", e.From, e.To)
	case EventTunnel, EventTunnelIgnored:
		s += " " + e.TunnelEvent.String()
	}
	if e.Reason != "" {
		s += fmt.Sprintf(" (%s)", e.Reason)
	}
	if e.Count != 0 {
		s += fmt.Sprintf(" count=%d", e.Count)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}

// emit logs ev and hands it to Config.OnEvent. Never call it with a lock
// held.
func (p *Pool) emit(ev Event) {
	if ev.At.IsZero() {
		ev.At = p.cfg.now()
	}
	if ev.Generation == 0 {
		ev.Generation = p.gen.Load()
	}
	attrs := []any{"kind", ev.Kind.String(), "generation", ev.Generation}
	if ev.Reason != "" {
		attrs = append(attrs, "reason", ev.Reason)
	}
	if ev.Kind == EventHealthChange {
		attrs = append(attrs, "from", ev.From.String(), "to", ev.To.String())
	}
	if ev.Kind == EventTunnel || ev.Kind == EventTunnelIgnored {
		attrs = append(attrs, "tunnel", ev.TunnelEvent.Tunnel, "state", ev.TunnelEvent.State.String(), "source", ev.TunnelEvent.Source)
	}
	if ev.Count != 0 {
		attrs = append(attrs, "count", ev.Count)
	}
	if ev.Err != nil {
		ev.Err = redactErr(ev.Err, p.secrets) // OnEvent never sees a password either
		attrs = append(attrs, "err", ev.Err.Error())
	}
	level := slog.LevelInfo
	if ev.Kind == EventTunnelIgnored || ev.Kind == EventProbe && ev.Err == nil {
		level = slog.LevelDebug
	}
	// A flood of events (a storm, forged or foreign events) must not flood
	// the log: at most one line per kind per logEvery, the rest counted.
	if n, ok := p.logGate.allow(ev.Kind.String(), p.cfg.now()); ok {
		if n > 0 {
			attrs = append(attrs, "suppressed", n)
		}
		p.log.Log(context.Background(), level, "flapguard: "+ev.Kind.String(), attrs...)
	}
	if f := p.cfg.OnEvent; f != nil {
		if p.sup != nil {
			p.sup.wg.callbacks.Add(1)
			defer p.sup.wg.callbacks.Add(-1)
		}
		f(ev)
	}
}

// logEvery is the least time between two log lines of one kind: a flood
// of events logs one line per kind per second, with the count of the lines
// it suppressed. OnEvent still sees every event.
const logEvery = time.Second

// logLimiter rate-limits log lines per reason.
type logLimiter struct {
	mu sync.Mutex // protects m
	m  map[string]logSlot
}

type logSlot struct {
	last       time.Time
	suppressed int
}

// allow reports whether a line for reason may be logged at now, and how
// many lines were suppressed since the last one.
func (l *logLimiter) allow(reason string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]logSlot)
	}
	s := l.m[reason]
	if !s.last.IsZero() && now.Sub(s.last) < logEvery {
		s.suppressed++
		l.m[reason] = s
		return 0, false
	}
	n := s.suppressed
	l.m[reason] = logSlot{last: now}
	return n, true
}

// logLimited logs a warning at most once per logEvery for reason.
func (p *Pool) logLimited(reason, msg string, args ...any) {
	if n, ok := p.logGate.allow(reason, p.cfg.now()); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		p.log.Warn(msg, args...)
	}
}
