package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// narrator prints the demo's live lines: the status every statusEvery, the
// scripted faults, each run's failures as they happen (watcher) and every
// action of the flapguard pool (its events, printed by kind, so a kind the
// pool adds later shows up with no change here). Every line is
//
//	t=05.6s  who        what
//
// The pool calls OnEvent from its own goroutines, so a narrator is safe for
// concurrent use.
type narrator struct {
	w       io.Writer
	verbose bool
	redact  func(string) string

	mu     sync.Mutex // protects following fields
	t0     time.Time  // zero until the workload starts
	last   string     // the last line without its time, to fold repeats
	lastAt time.Duration
	repeat int // lines equal to last, not printed yet
}

// statusEvery is how often the status line is printed.
const statusEvery = 2 * time.Second

// foldWithin: an event line equal to the one before it within this long is
// counted, not printed (a pool may probe twice in a millisecond).
const foldWithin = time.Second

func (n *narrator) start(t0 time.Time) {
	n.mu.Lock()
	n.t0 = t0
	n.mu.Unlock()
}

// line prints one live line at offset at.
func (n *narrator) line(at time.Duration, who, what string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lineLocked(at, who, what)
}

func (n *narrator) lineLocked(at time.Duration, who, what string) {
	key := who + "\x00" + what
	if key == n.last && at-n.lastAt < foldWithin {
		n.repeat++
		n.lastAt = at
		return
	}
	n.flushLocked()
	n.last, n.lastAt = key, at
	fmt.Fprintf(n.w, "%s  %-10s %s\n", fmtAt(at), who, what)
}

// flush prints the count of folded repeats, if any.
func (n *narrator) flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.flushLocked()
}

func (n *narrator) flushLocked() {
	if n.repeat > 0 {
		fmt.Fprintf(n.w, "%s  %-10s (the line above, %s more)\n", strings.Repeat(" ", len(fmtAt(0))), "", times(n.repeat))
		n.repeat = 0
	}
}

// event is the flapguard pool's Config.OnEvent: one line per event, its
// String() without the error (which carries addresses and ports) unless
// -v.
func (n *narrator) event(ev pool.Event) {
	e := ev
	if !n.verbose {
		e.Err = nil
	}
	// A joined error prints on several lines; keep one per event.
	what := n.redact(strings.ReplaceAll(e.String(), "\n", "; "))
	n.mu.Lock()
	defer n.mu.Unlock()
	at := time.Duration(-1)
	if !n.t0.IsZero() {
		at = ev.At.Sub(n.t0)
	}
	n.lineLocked(at, nameF, what)
}

// fmtAt is the time column: t=05.6s, or "t=   - " before the workload.
func fmtAt(at time.Duration) string {
	if at < 0 {
		return "t=   - "
	}
	return fmt.Sprintf("t=%04.1fs", at.Seconds())
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// watcher announces one run's failures when they happen: a request that
// returns an error, and one still running past the hang threshold (without
// waiting for it to return, which with go-mssqldb can take 5 s more). A
// request announced as hung is not announced again when it returns at last:
// that line says it is counted already. Failures a few hundred milliseconds
// apart are announced together, so 8 workers caught by the same dead path
// make one line, stamped when it is printed so the lines stay in time
// order. The status line flushes the batches first (flush), so a status
// never counts a failure that has not been announced yet.
type watcher struct {
	side     string
	rec      *recorder
	hang     time.Duration // hangThreshold(deadline)
	deadline time.Duration
	n        *narrator

	mu      sync.Mutex               // protects following fields
	seen    int                      // finished requests looked at
	hungNow map[[2]int64]bool        // announced as hung while in flight, by worker and start
	batches map[batchKind]*failBatch // not yet announced
}

type batchKind int

const (
	batchFailed batchKind = iota // returned an error in time
	batchHung                    // ran past the hang threshold
	batchLate                    // announced as hung, then returned at last
)

type failBatch struct {
	first    time.Duration // when the first was seen
	count    int
	timeouts int           // batchFailed: of them, the deadline passed
	errors   int           // batchLate: of them, returned an error
	longest  time.Duration // batchLate
}

// batchWait: a batch is announced this long after its first failure.
const batchWait = 300 * time.Millisecond

func newWatcher(side string, rec *recorder, deadline time.Duration, n *narrator) *watcher {
	return &watcher{side: side, rec: rec, hang: hangThreshold(deadline), deadline: deadline, n: n,
		hungNow: map[[2]int64]bool{}, batches: map[batchKind]*failBatch{}}
}

// watch polls until stop is closed, then announces what is left; done is
// closed when it has.
func (w *watcher) watch(stop <-chan struct{}) (done <-chan struct{}) {
	d := make(chan struct{})
	go func() {
		defer close(d)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				w.flush()
				return
			case <-tick.C:
				w.poll(w.rec.since(), false)
			}
		}
	}()
	return d
}

func (w *watcher) add(k batchKind, now time.Duration, r request) {
	b := w.batches[k]
	if b == nil {
		b = &failBatch{first: now}
		w.batches[k] = b
	}
	b.count++
	if r.Timeout {
		b.timeouts++
	}
	if r.Err != "" {
		b.errors++
	}
	b.longest = max(b.longest, r.Latency)
}

// flush announces every failure seen so far, due or not.
func (w *watcher) flush() { w.poll(w.rec.since(), true) }

// poll looks at what changed since the last poll and announces the batches
// that are due (all of them when final).
func (w *watcher) poll(now time.Duration, final bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.rec.inFlight(now) {
		key := [2]int64{int64(r.Worker), int64(r.Start)}
		if r.Latency > w.hang && !w.hungNow[key] {
			w.hungNow[key] = true
			w.add(batchHung, now, r)
		}
	}
	done := w.rec.finishedFrom(w.seen)
	w.seen += len(done)
	for _, r := range done {
		key := [2]int64{int64(r.Worker), int64(r.Start)}
		if w.hungNow[key] {
			delete(w.hungNow, key)
			if !r.Open { // an abandoned request never returned
				w.add(batchLate, now, r)
			}
			continue
		}
		switch {
		case r.hung(w.hang):
			w.add(batchHung, now, r)
		case r.failed():
			w.add(batchFailed, now, r)
		}
	}
	for _, k := range []batchKind{batchFailed, batchHung, batchLate} {
		b := w.batches[k]
		if b == nil || !final && now-b.first < batchWait {
			continue
		}
		delete(w.batches, k)
		w.n.line(now, w.side, w.say(k, b))
	}
}

func (w *watcher) say(k batchKind, b *failBatch) string {
	switch k {
	case batchHung:
		dl := "no deadline"
		if w.deadline > 0 {
			dl = "deadline " + fmtDur(w.deadline)
		}
		return fmt.Sprintf("FAILED: %s hung, no answer %s after they started (%s)", plural(b.count, "request", "requests"), fmtDur(w.hang), dl)
	case batchLate:
		how := "without an error"
		if b.errors == b.count {
			how = "with an error"
		} else if b.errors > 0 {
			how = fmt.Sprintf("%d with an error", b.errors)
		}
		return fmt.Sprintf("%s returned at last, %s, after up to %s (counted once, above)", plural(b.count, "hung request", "hung requests"), how, fmtDur(b.longest))
	}
	why := "returned an error"
	if b.timeouts == b.count {
		why = "deadline exceeded"
	}
	return fmt.Sprintf("FAILED: %s: %s", plural(b.count, "request", "requests"), why)
}

// statusLine is the periodic line's text: each run's requests so far that
// succeeded, and those that failed (errors, hung and still running past the
// hang threshold, each counted once).
func statusLine(now time.Duration, sides []*side, hang time.Duration) string {
	parts := make([]string, len(sides))
	for i, s := range sides {
		ok, bad := 0, 0
		for _, r := range s.rec.snapshot() {
			if r.failed() || r.hung(hang) {
				bad++
			} else {
				ok++
			}
		}
		for _, r := range s.rec.inFlight(now) {
			if r.Latency > hang {
				bad++
			}
		}
		parts[i] = fmt.Sprintf("%s %d ok, %d failed", s.name, ok, bad)
	}
	return strings.Join(parts, " · ")
}

// printLegend says, before the run starts, what is compared, what the
// script does and how to read the lines that follow.
func printLegend(w io.Writer, o options, server string, steps []timedStep) {
	drv := map[string]string{"tds": "go-mssqldb", "mysql": "go-sql-driver/mysql"}[o.server]
	against := map[string]string{
		"tds":   "flapguard's SQL Server test double (TDS protocol, in memory)",
		"mysql": "go-mysql-server (in memory)",
	}[o.server]
	if o.dsn != "" {
		drv, against = o.driver, "the -dsn server"
	}
	fmt.Fprintf(w, "flapdemo: plain database/sql and a flapguard pool (pool.Open), both with %s: same requests, same faults, at once\n", drv)
	fmt.Fprintf(w, "  each: %d workers, deadline %s per request, on %s\n", o.workers, fmtDeadline(o.deadline), against)
	if len(steps) > 0 {
		what := map[string]string{
			"rekey": "the rekey left every old connection silently dead; new ones work",
			"flap":  "three short outages; the last rekey left every old connection silently dead",
			"reset": "every old connection is reset when the tunnel comes back",
		}[o.scenario]
		fmt.Fprintf(w, "  fault: %s: %s\n", describe(steps), what)
		if q, ok := quiet[o.scenario]; ok {
			fmt.Fprintf(w, "  the service is quiet from t=%.1fs to t=%.1fs: its pooled connections sit idle across the outage\n",
				q[0]*o.duration.Seconds(), q[1]*o.duration.Seconds())
		}
		if o.events {
			fmt.Fprintf(w, "  -events: flapguard is told about DOWN and UP (pool.Notify); plain cannot be\n")
		}
	} else {
		fmt.Fprintf(w, "  no faults are injected (-dsn): %s\n", server)
	}
	fmt.Fprintf(w, "lines: status every %s · tunnel: the fault · FAILED: requests failed or hung (no answer after %s)\n",
		fmtDur(statusEvery), fmtDur(hangThreshold(o.deadline)))
	fmt.Fprintf(w, "       flapguard: the pool's own actions, one per line (Config.OnEvent; -v adds their errors)\n")
}
