//go:build linux

package labrun

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flapguard/flapguard/internal/lab"
)

// Scenario is one fault script run against both sides at once.
type Scenario struct {
	Name   string // "S1" ...
	Title  string
	Server string // "postgres", "mariadb", "tds"
	Load   Load
	// Grace: how long the run waits at its end for requests in flight
	// before it records them as hanging. Default 3s.
	Grace time.Duration
	// HangAfter: a request slower than this counts as hung. Default:
	// Deadline + 1s, or 10s without a deadline.
	HangAfter time.Duration
	// Script injects the faults. It runs while the workers do.
	Script func(s *Script) error
	// Path, if set, puts the run on an emulated WAN (lab.SetPath, the same
	// spec both ways) from before the first request until the run's end.
	// nil: the lab's path as it is.
	Path *lab.PathSpec
}

// Script is what a scenario's fault script can do.
type Script struct {
	Lab    *lab.Lab
	Sides  []*Side
	t0     time.Time
	paused *atomic.Bool
	back   atomic.Int64 // offset+1 of "tunnel back", 0 unset
}

// Pause stops the workers from starting new requests (the pool sits idle);
// Resume lets them go on.
func (s *Script) Pause()  { s.paused.Store(true) }
func (s *Script) Resume() { s.paused.Store(false) }

// Back marks now as the moment the path is back: failures of requests
// started later count as "failed after back".
func (s *Script) Back() { s.back.Store(int64(time.Since(s.t0)) + 1) }

// Run runs sc with sides and returns the comparison.
func Run(t testing.TB, l *lab.Lab, sc Scenario, sides ...*Side) *Result {
	t.Helper()
	if sc.Grace == 0 {
		sc.Grace = 3 * time.Second
	}
	if sc.HangAfter == 0 {
		sc.HangAfter = 10 * time.Second
		if sc.Load.Deadline > 0 {
			sc.HangAfter = sc.Load.Deadline + time.Second
		}
	}
	if sc.Path != nil {
		if err := l.SetPath(*sc.Path, *sc.Path); err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		defer endPath(t, l)
	}
	faultsBefore := len(l.Faults())
	paused := &atomic.Bool{}
	t0 := time.Now()
	s := &Script{Lab: l, Sides: sides, t0: t0, paused: paused}
	runners := make([]*runner, len(sides))
	for i, side := range sides {
		runners[i] = &runner{side: side, load: sc.Load, t0: t0, paused: paused, stop: make(chan struct{}), inflight: map[int]time.Time{}}
		runners[i].start()
	}
	scriptErr := sc.Script(s)
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(func() { r.finish(sc.Grace) })
	}
	wg.Wait()
	// Let the pools settle (reaping, probes) before counting sessions.
	time.Sleep(1500 * time.Millisecond)
	res := &Result{Scenario: sc.Name, Title: sc.Title, Server: sc.Server, Deadline: sc.Load.Deadline,
		Workers: sc.Load.Workers, HangAfter: sc.HangAfter, Back: -1}
	if sc.Path != nil {
		res.Path = sc.Path.String() + " each way"
	}
	if b := s.back.Load(); b > 0 {
		res.Back = time.Duration(b - 1)
	}
	for _, w := range l.Faults()[faultsBefore:] {
		end := w.End
		if end.IsZero() {
			end = time.Now()
		}
		res.Faults = append(res.Faults, Window{Kind: w.Kind.String(), Start: w.Start.Sub(t0), End: end.Sub(t0)})
	}
	for i, side := range sides {
		sr := summarize(side.Name, runners[i].samples, res.Back, sc.HangAfter)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if side.Sessions != nil {
			if n, err := side.Sessions(ctx); err == nil {
				sr.Sessions = n
			} else {
				t.Logf("%s: counting sessions: %v", side.Name, err)
				sr.Sessions = -1
			}
		}
		cancel()
		sr.OpenConns = side.DB.Stats().OpenConnections
		if side.Pool != nil {
			st := side.Pool.Stats()
			sr.Pool = &st
		}
		res.Sides = append(res.Sides, sr)
	}
	if scriptErr != nil {
		t.Fatalf("%s: fault script: %v", sc.Name, scriptErr)
	}
	res.Log(t)
	res.Save(t)
	return res
}

// Sleep is time.Sleep, named for scripts.
func Sleep(d time.Duration) { time.Sleep(d) }

// endPath logs what the emulator did during a run on a Path, then removes it.
func endPath(t testing.TB, l *lab.Lab) {
	t.Helper()
	if st, err := l.PathStats(); err == nil {
		for _, d := range []struct {
			dir string
			c   lab.PathCounters
		}{{"app->db", st.ToDB}, {"db->app", st.ToApp}} {
			t.Logf("path %s: %d packets, %d dropped (%.2f%%), %d over 1ms late (worst %v)", d.dir, d.c.Packets, d.c.Dropped,
				100*float64(d.c.Dropped)/float64(max(d.c.Packets, 1)), d.c.Late, d.c.MaxLate)
		}
	}
	if err := l.ClearPath(); err != nil {
		t.Errorf("clearing the path: %v", err)
	}
}
