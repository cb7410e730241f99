package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

const s = time.Second

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	reqs := []request{
		{Start: 1 * s, Latency: 5 * ms},
		{Start: 3 * s, Latency: 2 * s, Err: "ctx", Timeout: true},           // fails during DOWN
		{Start: 5500 * ms, Latency: 2 * s, Err: "ctx", Timeout: true},       // ends after UP
		{Start: 6100 * ms, Latency: 10 * ms},                                // first ok after UP
		{Start: 6200 * ms, Latency: 2 * s, Err: "dead conn", Timeout: true}, // fails after UP, ends 8.2
		{Start: 8300 * ms, Latency: 4 * ms},
		{Start: 7 * s, Latency: 5 * s, Open: true, Err: "abandoned"},
	}
	got := summarize("x", reqs, 6*s, 2*s)
	if got.Requests != 7 || got.OK != 3 || got.Failed != 4 || got.FailedAfterUp != 2 || got.Abandoned != 1 || got.Hung != 1 {
		t.Fatalf("counts = %+v", got)
	}
	if got.Worst != 5*s {
		t.Errorf("Worst = %v", got.Worst)
	}
	// Recovery is timed from the first request after UP (6.1s): it ends ok
	// at 6.11s.
	if got.FirstOKAfter != 10*ms {
		t.Errorf("FirstOKAfter = %v, want 10ms", got.FirstOKAfter)
	}
	// The abandoned request "ends" at 12s and nothing succeeds after it.
	if got.SteadyAfter != -1 {
		t.Errorf("SteadyAfter = %v, want -1 (never)", got.SteadyAfter)
	}
	got = summarize("x", reqs[:6], 6*s, 2*s)
	if got.SteadyAfter != 8200*ms-6100*ms {
		t.Errorf("SteadyAfter = %v, want 2.1s", got.SteadyAfter)
	}
	if got.Errors["deadline exceeded"] != 3 {
		t.Errorf("Errors = %v", got.Errors)
	}
	clean := summarize("x", []request{{Start: 7 * s, Latency: ms}}, 6*s, 2*s)
	if clean.SteadyAfter != 0 || clean.FirstOKAfter != ms || clean.Failed != 0 {
		t.Errorf("clean run = %+v", clean)
	}
	noUp := summarize("x", reqs[:2], -1, 2*s)
	if noUp.FirstOKAfter != -1 || noUp.SteadyAfter != -1 || noUp.FailedAfterUp != 0 {
		t.Errorf("no UP = %+v", noUp)
	}
}

func TestHangThreshold(t *testing.T) {
	if hangThreshold(2*s) != 3*s || hangThreshold(0) != 2*s {
		t.Fatal(hangThreshold(2*s), hangThreshold(0))
	}
}

func TestP99(t *testing.T) {
	var reqs []request
	for i := 1; i <= 100; i++ {
		reqs = append(reqs, request{Latency: time.Duration(i) * time.Millisecond})
	}
	if got := p99(reqs); got != 99*time.Millisecond {
		t.Fatalf("p99 = %v", got)
	}
	if p99(reqs[:1]) != time.Millisecond || p99(nil) != 0 {
		t.Fatal("p99 of one/none")
	}
}

func TestStatusLine(t *testing.T) {
	reqs := []request{{Start: 6 * s, Latency: 10 * time.Millisecond}, {Start: 5 * s, Latency: 2 * s, Err: "x"}}
	got := statusLine("plain", 7*s+300*time.Millisecond, reqs, []time.Duration{3 * s, 7 * s}, 2*s)
	want := "plain      t=07s ok=1 fail=1 hung=1 p99=2.0s"
	if got != want {
		t.Fatalf("statusLine = %q, want %q", got, want)
	}
}

func TestTableShape(t *testing.T) {
	runs := []summary{
		summarize(nameP, []request{{Start: 7 * s, Latency: 2 * s, Err: "x", Timeout: true}, {Start: 10 * s, Latency: time.Millisecond}}, 6*s, 2*s),
		summarize(nameF, []request{{Start: 7 * s, Latency: 3 * time.Millisecond}}, 6*s, 2*s),
	}
	var b strings.Builder
	writeTable(&b, tableRows(runs, true))
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	labels := []string{"", "requests", "failed", "failed after UP", "hung past deadline", "worst latency", "recovery: first ok → steady"}
	if len(lines) != len(labels) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(labels), b.String())
	}
	for i, l := range labels {
		if !strings.HasPrefix(lines[i], l) {
			t.Errorf("line %d = %q, want label %q", i, lines[i], l)
		}
	}
	if !regexp.MustCompile(`^\s+plain\s+flapguard$`).MatchString(lines[0]) {
		t.Errorf("header = %q", lines[0])
	}
	if !regexp.MustCompile(`^failed after UP\s+1\s+0$`).MatchString(lines[3]) {
		t.Errorf("failed after UP row = %q", lines[3])
	}
	if !regexp.MustCompile(`3\.0s → 2\.0s\s+3ms → 0s$`).MatchString(lines[6]) {
		t.Errorf("recovery row = %q", lines[6])
	}
	// Columns line up: every row has the same width.
	w := len([]rune(lines[0]))
	for _, l := range lines[1:] {
		if len([]rune(l)) != w {
			t.Errorf("row %q is %d wide, header %d", l, len([]rune(l)), w)
		}
	}
	// Without an UP (-dsn), the after-UP cells say "-".
	b.Reset()
	writeTable(&b, tableRows(runs, false))
	if !regexp.MustCompile(`(?m)^failed after UP\s+-\s+-$`).MatchString(b.String()) {
		t.Errorf("no-UP table:\n%s", b.String())
	}
}
