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
	// Each request counts once: 3 ok, 3 failed in time, 1 hung (abandoned).
	if got.Requests != 7 || got.OK != 3 || got.Failed != 3 || got.FailedAfterUp != 2 || got.Abandoned != 1 || got.Hung != 1 {
		t.Fatalf("counts = %+v", got)
	}
	if got.OK+got.Failed+got.Hung != got.Requests {
		t.Fatalf("counted twice or not at all: %+v", got)
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
	if got.SteadyAfter != -1 || got.Back != -1 {
		t.Errorf("SteadyAfter, Back = %v, %v, want -1 (never)", got.SteadyAfter, got.Back)
	}
	got = summarize("x", reqs[:6], 6*s, 2*s)
	if got.SteadyAfter != 8200*ms-6100*ms {
		t.Errorf("SteadyAfter = %v, want 2.1s", got.SteadyAfter)
	}
	// Back: the success that started at 8.3s after the last failure ended
	// at 8.2s, ending at 8.304s, timed from 6.1s.
	if got.Back != 8304*ms-6100*ms {
		t.Errorf("Back = %v, want 2.204s", got.Back)
	}
	// Errors keep the whole message: nothing is cut.
	if got.Errors["ctx"] != 2 || got.Errors["dead conn"] != 1 {
		t.Errorf("Errors = %v", got.Errors)
	}
	clean := summarize("x", []request{{Start: 7 * s, Latency: ms}}, 6*s, 2*s)
	if clean.SteadyAfter != 0 || clean.FirstOKAfter != ms || clean.Back != ms || clean.Failed != 0 {
		t.Errorf("clean run = %+v", clean)
	}
	// A request that ran past the hang threshold is hung, not failed, even
	// when it returned an error at last; one that succeeded late is hung
	// too (its caller's deadline passed), never ok.
	late := summarize("x", []request{
		{Start: 7 * s, Latency: 7 * s, Err: "cancel not confirmed"},
		{Start: 7 * s, Latency: 4 * s},
	}, 6*s, 2*s)
	if late.Hung != 2 || late.Failed != 0 || late.OK != 0 || late.FailedAfterUp != 2 || late.Back != -1 {
		t.Errorf("late = %+v", late)
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

func TestStatusLine(t *testing.T) {
	rec := newRecorder(time.Now(), 2)
	rec.add(request{Start: 6 * s, Latency: 10 * time.Millisecond})
	rec.add(request{Start: 5 * s, Latency: 2 * s, Err: "x"})
	rec.add(request{Start: 1 * s, Latency: 4 * s, Err: "x"}) // hung, then returned
	rec.inflight[0].Store(int64(3*s) + 1)                    // in flight 4.3s: hung
	rec.inflight[1].Store(int64(7*s) + 1)                    // in flight 0.3s
	other := newRecorder(time.Now(), 1)
	got := statusLine(7*s+300*time.Millisecond, []*side{{name: nameP, rec: rec}, {name: nameF, rec: other}}, 3*s)
	want := "plain 1 ok, 3 failed · flapguard 0 ok, 0 failed"
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
	writeTable(&b, tableRows(runs, true, 2*s))
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	labels := []string{"", "requests", "  succeeded", "  failed: returned an error", "  failed: hung (no answer after 3.0s)",
		"failed, of those started after UP", "slowest request", "back after UP, for good"}
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
	if !regexp.MustCompile(`^failed, of those started after UP\s+1\s+0$`).MatchString(lines[5]) {
		t.Errorf("failed after UP row = %q", lines[5])
	}
	if !regexp.MustCompile(`^back after UP, for good\s+3\.0s\s+3ms$`).MatchString(lines[7]) {
		t.Errorf("back row = %q", lines[7])
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
	writeTable(&b, tableRows(runs, false, 2*s))
	if !regexp.MustCompile(`(?m)^failed, of those started after UP\s+-\s+-$`).MatchString(b.String()) {
		t.Errorf("no-UP table:\n%s", b.String())
	}
}
