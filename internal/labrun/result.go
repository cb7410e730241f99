//go:build linux

package labrun

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// Result is one scenario's comparison.
type Result struct {
	Scenario  string        `json:"scenario"`
	Title     string        `json:"title"`
	Server    string        `json:"server"`
	Workers   int           `json:"workers"`
	Deadline  time.Duration `json:"deadline_ns"`
	HangAfter time.Duration `json:"hang_after_ns"`
	Back      time.Duration `json:"back_ns"`        // -1: the path never came back
	Path      string        `json:"path,omitempty"` // the emulated WAN, if any
	Faults    []Window      `json:"faults"`
	Sides     []SideResult  `json:"sides"`
}

// Window is a fault's time span, as offsets from the run's start.
type Window struct {
	Kind  string        `json:"kind"`
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
}

// SideResult is what one side saw.
type SideResult struct {
	Side            string        `json:"side"`
	Requests        int           `json:"requests"`
	Failed          int           `json:"failed"`
	FailedAfterBack int           `json:"failed_after_back"`
	Hung            int           `json:"hung"`
	MaxLatency      time.Duration `json:"max_latency_ns"`
	// MaxAfterBack: the latest a request started before the path came back
	// returned, measured from that moment (how long the fault's effect
	// outlasted the fault). -1 if some never returned.
	MaxAfterBack time.Duration `json:"max_after_back_ns"`
	// Recover: from the path being back until requests succeed again for
	// good (the end of the first success after the last failure).
	Recover time.Duration `json:"recover_ns"`
	// FirstOK: from the path being back to the first request that ends in
	// success (including requests that waited through the fault).
	FirstOK   time.Duration `json:"first_ok_ns"`
	Sessions  int           `json:"server_sessions"`
	OpenConns int           `json:"open_conns"`
	Pool      *pool.Stats   `json:"pool,omitempty"`
	Samples   []Sample      `json:"samples"`
}

// SessionsLeft is the server sessions beyond what the pool holds open: the
// orphans a dead path left behind.
func (s SideResult) SessionsLeft() int {
	if s.Sessions < 0 {
		return -1
	}
	return max(0, s.Sessions-s.OpenConns)
}

func summarize(name string, samples []Sample, back, hangAfter time.Duration) SideResult {
	ss := slices.Clone(samples)
	slices.SortFunc(ss, func(a, b Sample) int { return int(a.Start - b.Start) })
	r := SideResult{Side: name, Samples: ss, Requests: len(ss)}
	lastFailEnd := time.Duration(-1)
	for _, s := range ss {
		end := s.Start + s.Latency
		r.MaxLatency = max(r.MaxLatency, s.Latency)
		if !s.Done || s.Latency > hangAfter {
			r.Hung++
		}
		if s.Err != "" {
			r.Failed++
		}
		if back < 0 {
			continue
		}
		if s.Start < back && (!s.Done || end > back) {
			if !s.Done {
				r.MaxAfterBack = -1
			} else if r.MaxAfterBack >= 0 {
				r.MaxAfterBack = max(r.MaxAfterBack, end-back)
			}
		}
		if s.Start >= back && s.Err != "" {
			r.FailedAfterBack++
			lastFailEnd = max(lastFailEnd, end)
		}
	}
	r.Recover, r.FirstOK = -1, -1
	if back >= 0 {
		for _, s := range ss {
			if end := s.Start + s.Latency; s.Err == "" && end >= back && (r.FirstOK < 0 || end-back < r.FirstOK) {
				r.FirstOK = end - back
			}
		}
		from := max(back, lastFailEnd)
		for _, s := range ss {
			if s.Start >= back && s.Err == "" && s.Start+s.Latency >= from {
				if r.Recover < 0 || s.Start+s.Latency-back < r.Recover {
					r.Recover = s.Start + s.Latency - back
				}
			}
		}
	}
	return r
}

// Side returns the result of the side named name.
func (r *Result) Side(name string) SideResult {
	for _, s := range r.Sides {
		if s.Side == name {
			return s
		}
	}
	return SideResult{Side: name}
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "never"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// Table renders the comparison as a Markdown table.
func (r *Result) Table() string {
	var b strings.Builder
	dl := "none"
	if r.Deadline > 0 {
		dl = r.Deadline.String()
	}
	path := ""
	if r.Path != "" {
		path = ", WAN " + r.Path
	}
	fmt.Fprintf(&b, "%s %s — %s, %d workers, request deadline %s%s\n\n", r.Scenario, r.Title, r.Server, r.Workers, dl, path)
	if r.Back < 0 && r.Workers == 1 {
		// A single operation timed on each side (S6, S7).
		b.WriteString("| side | returned after |\n|---|---:|\n")
		for _, s := range r.Sides {
			fmt.Fprintf(&b, "| %s | %s |\n", s.Side, fmtDur(s.MaxLatency))
		}
		return b.String()
	}
	b.WriteString("| side | requests | failed | failed after back | hung | worst latency | slowest return after back | first success after back | time to recover | server sessions left |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Sides {
		left := "?"
		if n := s.SessionsLeft(); n >= 0 {
			left = fmt.Sprint(n)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n", s.Side, s.Requests, s.Failed, s.FailedAfterBack,
			s.Hung, fmtDur(s.MaxLatency), fmtDur(s.MaxAfterBack), fmtDur(s.FirstOK), fmtDur(s.Recover), left)
	}
	return b.String()
}

// Log prints the table and the flapguard pool's counters.
func (r *Result) Log(t testing.TB) {
	t.Helper()
	t.Log("\n" + r.Table())
	for _, s := range r.Sides {
		if s.Pool != nil {
			p := s.Pool
			t.Logf("%s pool: generation %d, resets %d (severs %d, %d sockets), liveness failures %d/%d, probes %d (%d failed), renewed %d, orphans reaped %d, state %s",
				s.Side, p.Generation, p.Resets, p.Severs, p.SeveredSockets, p.LivenessFailures, p.LivenessChecks, p.Probes, p.ProbeFailures, p.Renewed, p.OrphansReaped, p.Health)
		}
	}
}

// Save writes the result as JSON into $FLAPGUARD_LAB_RESULTS, if set.
func (r *Result) Save(t testing.TB) {
	dir := os.Getenv("FLAPGUARD_LAB_RESULTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("results dir: %v", err)
		return
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Errorf("results: %v", err)
		return
	}
	name := fmt.Sprintf("%s-%s.json", r.Scenario, r.Server)
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Errorf("results: %v", err)
	}
}
