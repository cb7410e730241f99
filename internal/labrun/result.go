package labrun

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	// PathSeed: the seed of the WAN's loss and jitter draws
	// (FLAPGUARD_LAB_SEED replays them).
	PathSeed uint64 `json:"path_seed,omitempty"`
	// Loop: "closed" or "open" ("" in results saved before the open loop:
	// closed). The open loop's schedule: Rate arrivals/s (Poisson or even,
	// drawn from Seed), Queue arrivals waiting at most, Workers in flight.
	Loop    string       `json:"loop,omitempty"`
	Rate    float64      `json:"rate,omitempty"`
	Poisson bool         `json:"poisson,omitempty"`
	Queue   int          `json:"queue,omitempty"`
	Seed    uint64       `json:"seed,omitempty"`
	Faults  []Window     `json:"faults"`
	Sides   []SideResult `json:"sides"`
}

// Window is a fault's time span, as offsets from the run's start.
type Window struct {
	Kind  string        `json:"kind"`
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
}

// SideResult is what one side saw.
type SideResult struct {
	Side     string `json:"side"`
	Requests int    `json:"requests"`
	Failed   int    `json:"failed"`
	// Succeeded: requests that returned without error. Shed: open-loop
	// arrivals that found the queue full (counted in Requests and Failed).
	Succeeded int         `json:"succeeded"`
	Shed      int         `json:"shed,omitempty"`
	Latency   Percentiles `json:"latency"`
	// FailedAfterBack: requests started (open loop: arrived) after the path
	// was back that failed, shed ones excepted (the queue refused them,
	// not the pool).
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

// Sample is one request.
type Sample struct {
	// Start: since the run began; in the open loop, when it arrived.
	Start time.Duration `json:"start_ns"`
	// Latency: from Start until it returned (in the open loop, queueing
	// included).
	Latency time.Duration `json:"latency_ns"`
	Err     string        `json:"err,omitempty"`
	Done    bool          `json:"done"` // false: still hanging when abandoned
	// Open loop only: how long it waited for a free slot, and whether it
	// was shed (the queue was full; failed without reaching the pool).
	Queued time.Duration `json:"queued_ns,omitempty"`
	Shed   bool          `json:"shed,omitempty"`
}

// SessionsLeft is the server sessions beyond what the pool holds open: the
// orphans a dead path left behind.
func (s SideResult) SessionsLeft() int {
	if s.Sessions < 0 {
		return -1
	}
	return max(0, s.Sessions-s.OpenConns)
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
		if r.PathSeed != 0 {
			path += fmt.Sprintf(" (path seed %d)", r.PathSeed)
		}
	}
	if r.Loop == "open" {
		return r.openTable(dl, path)
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

// openTable renders an open-loop run: arrivals, failures, and latency
// from arrival (queueing included).
func (r *Result) openTable(dl, path string) string {
	var b strings.Builder
	arr := "evenly spaced"
	if r.Poisson {
		arr = "Poisson"
	}
	fmt.Fprintf(&b, "%s %s — %s, open loop: %.0f arrivals/s (%s, seed %d), ≤ %d in flight, queue %d, request deadline %s%s\n\n",
		r.Scenario, r.Title, r.Server, r.Rate, arr, r.Seed, r.Workers, r.Queue, dl, path)
	b.WriteString("| side | arrived | succeeded | failed (shed) | failed after back | hung | p50 | p99 | p99.9 | max | first success after back | time to recover |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Sides {
		fmt.Fprintf(&b, "| %s | %d | %d | %d (%d) | %d | %d | %s | %s | %s | %s | %s | %s |\n", s.Side, s.Requests, s.Succeeded, s.Failed, s.Shed,
			s.FailedAfterBack, s.Hung, fmtDur(s.Latency.P50), fmtDur(s.Latency.P99), fmtDur(s.Latency.P999), fmtDur(s.Latency.Max),
			fmtDur(s.FirstOK), fmtDur(s.Recover))
	}
	return b.String()
}

// Log prints the table and the flapguard pool's counters.
func (r *Result) Log(t testing.TB) {
	t.Helper()
	t.Log("\n" + r.Table())
	if ok, why := r.NoWorse(); len(r.Sides) == 2 {
		t.Logf("%s %s (%s loop): no worse than plain: %v %s", r.Scenario, r.Server, cmpOr(r.Loop, "closed"), ok, why)
	}
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
	if r.Loop == "open" {
		name = fmt.Sprintf("%s-%s-open.json", r.Scenario, r.Server)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Errorf("results: %v", err)
	}
}
