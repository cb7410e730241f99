//go:build linux

package soak

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// eventLog counts the pool's events and measures the time it spent in
// Unreachable. OnEvent is called from several goroutines.
type eventLog struct {
	mu        sync.Mutex // protects following
	kinds     map[pool.EventKind]int
	trail     []pool.Event // resets, severs, state changes and tunnel events, in order
	downSince time.Time
	down      time.Duration
	downs     int
}

func newEventLog() *eventLog { return &eventLog{kinds: make(map[pool.EventKind]int)} }

func (e *eventLog) on(ev pool.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kinds[ev.Kind]++
	switch ev.Kind {
	case pool.EventReset, pool.EventSever, pool.EventHealthChange, pool.EventTunnel, pool.EventOrphansReaped, pool.EventLivenessFailed:
		e.trail = append(e.trail, ev)
	}
	if ev.Kind != pool.EventHealthChange {
		return
	}
	switch {
	case ev.To == pool.Unreachable && e.downSince.IsZero():
		e.downSince, e.downs = ev.At, e.downs+1
	case ev.From == pool.Unreachable && ev.To != pool.Unreachable && !e.downSince.IsZero():
		e.down += ev.At.Sub(e.downSince)
		e.downSince = time.Time{}
	}
}

// downTime is the time spent in Unreachable so far (an open stretch counts
// up to now) and how many times the pool entered it.
func (e *eventLog) downTime() (time.Duration, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.down
	if !e.downSince.IsZero() {
		d += time.Since(e.downSince)
	}
	return d, e.downs
}

// of returns the trail's events of the given kinds.
func (e *eventLog) of(kinds ...pool.EventKind) []pool.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []pool.Event
	for _, ev := range e.trail {
		for _, k := range kinds {
			if ev.Kind == k {
				out = append(out, ev)
			}
		}
	}
	return out
}

// during describes the trail's events between from and to.
func (e *eventLog) during(from, to time.Time, t0 time.Time) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.trail {
		if ev.At.Before(from) || ev.At.After(to) {
			continue
		}
		d := ev.Kind.String()
		if ev.Kind == pool.EventHealthChange {
			d += " " + ev.From.String() + "->" + ev.To.String()
		}
		if ev.Reason != "" {
			d += " (" + ev.Reason + ")"
		}
		out = append(out, fmt.Sprintf("+%v %s", ev.At.Sub(t0).Round(time.Millisecond), d))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// reaps describes the pool's orphan reaping so far, one line each.
func (e *eventLog) reaps(t0 time.Time) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.trail {
		if ev.Kind == pool.EventOrphansReaped {
			out = append(out, fmt.Sprintf("+%v %s", ev.At.Sub(t0).Round(time.Millisecond), ev.Reason))
		}
	}
	return out
}

// severs returns the sever events so far.
func (e *eventLog) severs() []pool.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []pool.Event
	for _, ev := range e.trail {
		if ev.Kind == pool.EventSever {
			out = append(out, ev)
		}
	}
	return out
}
