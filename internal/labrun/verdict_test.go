package labrun

import (
	"testing"
	"time"
)

func TestNoWorse(t *testing.T) {
	ms := time.Millisecond
	side := func(name string, failed, ok int, p99, worst time.Duration) SideResult {
		return SideResult{Side: name, Failed: failed, Succeeded: ok, MaxLatency: worst, Latency: Percentiles{P99: p99, Max: worst}}
	}
	for _, c := range []struct {
		name   string
		loop   string
		pl, fg SideResult
		want   bool
	}{
		{"closed equal", "", side("plain", 8, 100, 0, 2000*ms), side("flapguard", 8, 90, 0, 2000*ms), true},
		{"closed fewer successes do not count", "closed", side("plain", 0, 200, 0, 50*ms), side("flapguard", 0, 100, 0, 50*ms), true},
		{"closed one more failure", "", side("plain", 8, 100, 0, 2000*ms), side("flapguard", 9, 100, 0, 2000*ms), false},
		{"closed worst within 100ms", "", side("plain", 0, 100, 0, 500*ms), side("flapguard", 0, 100, 0, 600*ms), true},
		{"closed worst beyond 100ms", "", side("plain", 0, 100, 0, 500*ms), side("flapguard", 0, 100, 0, 601*ms), false},
		{"open equal", "open", side("plain", 5, 95, 100*ms, 2000*ms), side("flapguard", 5, 95, 100*ms, 2000*ms), true},
		{"open fewer successes", "open", side("plain", 5, 95, 100*ms, 2000*ms), side("flapguard", 5, 94, 100*ms, 2000*ms), false},
		{"open p99 at 1.25x", "open", side("plain", 0, 100, 100*ms, 300*ms), side("flapguard", 0, 100, 125*ms, 300*ms), true},
		{"open p99 over 1.25x", "open", side("plain", 0, 100, 100*ms, 300*ms), side("flapguard", 0, 100, 126*ms, 300*ms), false},
		{"open more failures", "open", side("plain", 5, 95, 100*ms, 2000*ms), side("flapguard", 6, 95, 100*ms, 2000*ms), false},
	} {
		r := &Result{Loop: c.loop, Sides: []SideResult{c.pl, c.fg}}
		if got, why := r.NoWorse(); got != c.want || got != (why == "") {
			t.Errorf("%s: NoWorse = %v %q, want %v", c.name, got, why, c.want)
		}
	}
	if ok, _ := (&Result{Sides: []SideResult{{Side: "plain"}}}).NoWorse(); !ok {
		t.Errorf("one side: nothing to compare, want ok")
	}
}
