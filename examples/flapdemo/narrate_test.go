package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/pool"
)

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// Plain's failures are announced when they happen: 8 requests stuck past
// the hang threshold make one line while they are still running (go-mssqldb
// may hold them 5 s more); when they return at last they are not counted
// again.
func TestWatcherAnnouncesHungOnce(t *testing.T) {
	var out strings.Builder
	n := &narrator{w: &out, redact: func(s string) string { return s }}
	rec := newRecorder(time.Now(), 8)
	w := newWatcher(nameP, rec, 2*s, n)
	for i := range 8 {
		rec.inflight[i].Store(int64(6*s+time.Duration(i)*time.Millisecond) + 1)
	}
	w.poll(8500*time.Millisecond, false) // 2.5s old: not hung yet (threshold 3s)
	w.poll(9010*time.Millisecond, false) // 8 hung: a batch starts
	w.poll(9100*time.Millisecond, false) // the batch waits for stragglers
	if out.Len() != 0 {
		t.Fatalf("announced before the batch was due:\n%s", out.String())
	}
	w.poll(9400*time.Millisecond, false)
	if got := lines(out.String()); len(got) != 1 || !strings.HasPrefix(got[0], "t=09.4s  plain      FAILED: 8 requests hung, no answer 3.0s after they started (deadline 2.0s)") {
		t.Fatalf("got %q", got)
	}
	out.Reset()
	// They return at last with an error, 7 s after they started.
	for i := range 8 {
		start := 6*s + time.Duration(i)*time.Millisecond
		rec.inflight[i].Store(0)
		rec.add(request{Worker: i, Start: start, Latency: 7 * s, Err: "did not get cancellation confirmation"})
	}
	w.poll(13*s, false)
	w.poll(14*s, true)
	if got := lines(out.String()); len(got) != 1 || got[0] != "t=14.0s  plain      8 hung requests returned at last, with an error, after up to 7.0s (counted once, above)" {
		t.Fatalf("got %q", got)
	}
	// And the table agrees: 8 hung, none failed besides.
	sum := summarize(nameP, rec.snapshot(), 4800*time.Millisecond, 2*s)
	if sum.Hung != 8 || sum.Failed != 0 || sum.OK != 0 {
		t.Fatalf("summary = %+v", sum)
	}
}

// A request that returns an error in time is one FAILED line; requests
// that fail apart are announced apart; the final poll announces what is
// left without waiting.
func TestWatcherFailedInTime(t *testing.T) {
	var out strings.Builder
	n := &narrator{w: &out, redact: func(s string) string { return s }}
	rec := newRecorder(time.Now(), 2)
	w := newWatcher(nameF, rec, 2*s, n)
	rec.add(request{Worker: 0, Start: 5 * s, Latency: 2 * s, Err: "context deadline exceeded", Timeout: true})
	rec.add(request{Worker: 1, Start: 5 * s, Latency: 2 * s, Err: "context deadline exceeded", Timeout: true})
	rec.add(request{Worker: 0, Start: 7 * s, Latency: 3 * time.Millisecond})
	w.poll(7*s, false)
	w.poll(7500*time.Millisecond, false)
	rec.add(request{Worker: 0, Start: 8 * s, Latency: 5 * time.Millisecond, Err: "pool: outcome unknown"})
	w.poll(8*s, true)
	want := []string{
		"t=07.5s  flapguard  FAILED: 2 requests: deadline exceeded",
		"t=08.0s  flapguard  FAILED: 1 request: returned an error",
	}
	if got := lines(out.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every event of the pool is one line, printed by its kind's name, so a
// kind added to the pool later shows up with no change to the demo. Its
// error (addresses, ports) only with -v; repeats fold into a count.
func TestNarratorEvents(t *testing.T) {
	var out strings.Builder
	t0 := time.Now()
	n := &narrator{w: &out, redact: func(s string) string { return strings.ReplaceAll(s, "hunter2", "xxxxx") }}
	n.event(pool.Event{Kind: pool.EventProbe, At: t0.Add(-time.Second), Generation: 1})
	n.start(t0)
	n.event(pool.Event{Kind: pool.EventSever, At: t0.Add(5600 * time.Millisecond), Generation: 2, Reason: "path down", Count: 3,
		Err: errors.New("dial 10.0.0.1:1433 as sa:hunter2")})
	n.event(pool.Event{Kind: pool.EventKind(99), At: t0.Add(5700 * time.Millisecond), Generation: 2})
	n.event(pool.Event{Kind: pool.EventProbe, At: t0.Add(5800 * time.Millisecond), Generation: 3})
	n.event(pool.Event{Kind: pool.EventProbe, At: t0.Add(5810 * time.Millisecond), Generation: 3})
	n.event(pool.Event{Kind: pool.EventProbe, At: t0.Add(5820 * time.Millisecond), Generation: 3})
	n.flush()
	n.verbose = true
	n.event(pool.Event{Kind: pool.EventSever, At: t0.Add(7 * s), Generation: 4, Err: errors.New("dial 10.0.0.1:1433 as sa:hunter2")})
	want := []string{
		"t=   -   flapguard  probe gen=1",
		"t=05.6s  flapguard  sever gen=2 (path down) count=3",
		"t=05.7s  flapguard  EventKind(99) gen=2",
		"t=05.8s  flapguard  probe gen=3",
		"                    (the line above, 2 times more)",
		"t=07.0s  flapguard  sever gen=4 err=dial 10.0.0.1:1433 as sa:xxxxx",
	}
	if got := lines(out.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
