//go:build linux

package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/lab"
	"github.com/flapguard/flapguard/pool"
)

// faultKind is one kind of fault the schedule injects.
type faultKind int

const (
	faultFlap    faultKind = iota // blackhole 1-4s
	faultRekey                    // BeginRekey, 1-3s, EndRekey; flows stay dead until a later ReviveFlows
	faultRST                      // every TCP packet answered with RST for 0.5-2s
	faultAsym                     // one direction dropped for 1-3s
	faultRestart                  // one server restarted
	faultNotify                   // tunnel DOWN, blackhole 1-4s, tunnel UP (Pool.Notify)
	numFaultKinds
)

func (k faultKind) String() string {
	return [...]string{"flap", "rekey", "rst", "asym", "restart", "notify"}[k]
}

// channel: faults of the same channel never overlap (the lab has one
// blackhole switch, and a second Reset(false) would end the first).
func (k faultKind) channel() int {
	switch k {
	case faultFlap, faultRekey, faultNotify:
		return 0
	case faultRST:
		return 1
	case faultAsym:
		return 2
	}
	return 3
}

// fault is one planned fault, all its randomness drawn up front so that a
// seed gives the same schedule however the goroutines interleave.
type fault struct {
	kind   faultKind
	d      time.Duration // how long it holds
	dir    lab.Direction // faultAsym
	target int           // faultRestart: index into the restartable servers
	offset time.Duration // start after the group began (overlaps)
}

func (f fault) String() string {
	switch f.kind {
	case faultAsym:
		return fmt.Sprintf("%s %s %v", f.kind, f.dir, f.d.Round(time.Millisecond))
	case faultRestart:
		return fmt.Sprintf("%s #%d", f.kind, f.target)
	}
	return fmt.Sprintf("%s %v", f.kind, f.d.Round(time.Millisecond))
}

// window is when a fault was in force.
type window struct {
	what       string
	start, end time.Time
}

// restartable is a server the schedule may restart.
type restartable struct {
	name    string
	restart func() error
}

// scheduler injects faults from a seeded rng until its context ends.
type scheduler struct {
	l        *lab.Lab
	rng      *rand.Rand
	servers  []restartable
	pools    []*pool.Pool
	gapLo    time.Duration
	gapHi    time.Duration
	overlap  int // per-mille of groups with a second, overlapping fault
	logf     func(format string, args ...any)
	reviveAt time.Time // when to forget the flows rekeys killed
	start    time.Time // when the soak began (t0 of reports)

	mu      sync.Mutex        // protects following
	windows []window          // every fault, from before it was asked for to after it was lifted
	killed  map[int]time.Time // app-side ports of flows killed by rekeys, and when
	counts  [numFaultKinds]int
	errs    []error
}

func (s *scheduler) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *scheduler) plan(exclude int) fault {
	for {
		k := faultKind(s.rng.IntN(int(numFaultKinds)))
		if k.channel() == exclude || (k == faultRestart && len(s.servers) == 0) {
			continue
		}
		f := fault{kind: k}
		switch k {
		case faultFlap, faultNotify:
			f.d = s.dur(time.Second, 4*time.Second)
		case faultRekey:
			f.d = s.dur(time.Second, 3*time.Second)
		case faultRST:
			f.d = s.dur(500*time.Millisecond, 2*time.Second)
		case faultAsym:
			f.d = s.dur(time.Second, 3*time.Second)
			f.dir = lab.AppToDB + lab.Direction(s.rng.IntN(2))
		case faultRestart:
			f.target = s.rng.IntN(len(s.servers))
		}
		return f
	}
}

// run injects fault groups, one every gapLo..gapHi, until ctx ends; a
// group in progress is finished first.
func (s *scheduler) run(ctx context.Context) {
	for {
		gap := s.dur(s.gapLo, s.gapHi)
		group := []fault{s.plan(-1)}
		if s.rng.IntN(1000) < s.overlap {
			second := s.plan(group[0].kind.channel())
			second.offset = s.dur(0, time.Second)
			group = append(group, second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		if !s.reviveAt.IsZero() && time.Now().After(s.reviveAt) {
			s.check("revive flows", s.l.ReviveFlows())
			s.reviveAt = time.Time{}
		}
		names := make([]string, len(group))
		for i, f := range group {
			names[i] = f.String()
		}
		s.logf("fault: %s", strings.Join(names, " + "))
		var wg sync.WaitGroup
		for _, f := range group {
			wg.Go(func() {
				time.Sleep(f.offset)
				s.inject(f)
			})
		}
		wg.Wait()
		for _, f := range group {
			if f.kind == faultRekey && s.reviveAt.IsZero() {
				s.reviveAt = time.Now().Add(s.dur(3*time.Second, 8*time.Second))
			}
		}
	}
}

func (s *scheduler) check(what string, err error) {
	if err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, fmt.Errorf("%s: %w", what, err))
		s.mu.Unlock()
	}
}

func (s *scheduler) record(what string, start time.Time) {
	s.mu.Lock()
	s.windows = append(s.windows, window{what: what, start: start, end: time.Now()})
	s.mu.Unlock()
}

// inject runs one fault to its end and records its window: from before
// the lab was asked (an nft transaction takes effect while the command
// runs, which under load takes hundreds of milliseconds; the lab's own
// window starts when it returned) to after the fault was lifted.
func (s *scheduler) inject(f fault) {
	s.mu.Lock()
	s.counts[f.kind]++
	s.mu.Unlock()
	l := s.l
	start := time.Now()
	what := f.kind.String()
	switch f.kind {
	case faultFlap:
		s.check("flap", l.Flap(f.d))
	case faultRekey:
		flows, err := l.BeginRekey()
		s.check("rekey", err)
		s.mu.Lock()
		for _, fl := range flows {
			s.killed[int(fl.App.Port())] = start
		}
		s.mu.Unlock()
		what = fmt.Sprintf("rekey (%d flows killed)", len(flows))
		time.Sleep(f.d)
		s.check("end rekey", l.EndRekey())
	case faultRST:
		s.check("rst on", l.Reset(true))
		time.Sleep(f.d)
		s.check("rst off", l.Reset(false))
	case faultAsym:
		what = "asymmetric " + f.dir.String()
		s.check("asym on", l.Asymmetric(f.dir))
		time.Sleep(f.d)
		s.check("asym off", l.Asymmetric(lab.NoDirection))
	case faultRestart:
		srv := s.servers[f.target]
		what = "restart " + srv.name
		s.check(what, srv.restart())
	case faultNotify:
		what = "tunnel down (Notify) + blackhole"
		for _, p := range s.pools {
			p.Notify(detect.Event{Tunnel: detect.AllTunnels, State: detect.Down, Source: "soak"})
		}
		s.check("notify blackhole", l.Flap(f.d))
		for _, p := range s.pools {
			p.Notify(detect.Event{Tunnel: detect.AllTunnels, State: detect.Up, Source: "soak"})
		}
	}
	s.record(what, start)
}

// killedAt reports when a rekey killed the flow of the app-side port, if
// one did.
func (s *scheduler) killedAt(port int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.killed[port]
	return t, ok
}

// heal lifts every fault (Restore: blackhole, RST, one-way loss) and
// forgets the flows rekeys killed.
func (s *scheduler) heal() error {
	return errors.Join(s.l.Restore(), s.l.ReviveFlows())
}

func (s *scheduler) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// allWindows returns the fault windows sorted by start.
func (s *scheduler) allWindows() []window {
	s.mu.Lock()
	out := append([]window(nil), s.windows...)
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// union is the total time covered by at least one window.
func union(ws []window) time.Duration {
	var total time.Duration
	var curS, curE time.Time
	for _, w := range ws { // sorted by start
		switch {
		case curE.IsZero():
			curS, curE = w.start, w.end
		case w.start.After(curE):
			total += curE.Sub(curS)
			curS, curE = w.start, w.end
		case w.end.After(curE):
			curE = w.end
		}
	}
	if !curE.IsZero() {
		total += curE.Sub(curS)
	}
	return total
}

// overlapping returns the windows that intersect [start, end].
func overlapping(ws []window, start, end time.Time) []window {
	var out []window
	for _, w := range ws {
		if w.start.Before(end) && w.end.After(start) {
			out = append(out, w)
		}
	}
	return out
}

// explainPort says what is known of the client socket with local port:
// when the pool dialed it and whether a rekey killed its flow.
func (s *scheduler) explainPort(tg *target, port int) string {
	out := ""
	dialed, closed := tg.socks.dialedAt(port)
	if !dialed.IsZero() {
		out += fmt.Sprintf("; dialed at +%v", dialed.Sub(s.start).Round(time.Millisecond))
	}
	if !closed.IsZero() {
		out += fmt.Sprintf("; closed by +%v (pool events in the %v before: %s)", closed.Sub(s.start).Round(time.Millisecond),
			watchEvery+50*time.Millisecond, tg.events.during(closed.Add(-watchEvery-50*time.Millisecond), closed, s.start))
	}
	if t, ok := s.killedAt(port); ok {
		out += fmt.Sprintf("; its flow was killed by the rekey at +%v", t.Sub(s.start).Round(time.Millisecond))
	}
	return out
}
