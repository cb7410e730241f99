package main

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// request is one finished (or abandoned) request of a run.
type request struct {
	Worker  int
	Start   time.Duration // since the run's start
	Latency time.Duration // for an abandoned request: its age when abandoned
	Err     string        // "" = ok
	Timeout bool          // failed with the request's deadline
	Open    bool          // still running when the run ended: abandoned
}

func (r request) failed() bool { return r.Err != "" || r.Open }

// hung: the request ran past the hang threshold, or never returned.
func (r request) hung(threshold time.Duration) bool { return r.Open || r.Latency > threshold }
func (r request) end() time.Duration {
	return r.Start + r.Latency
}

// recorder collects one run's requests; safe for concurrent use.
type recorder struct {
	t0       time.Time
	inflight []atomic.Int64 // per worker: start offset in ns + 1; 0 = idle

	mu   sync.Mutex // protects following fields
	reqs []request
}

func newRecorder(t0 time.Time, workers int) *recorder {
	return &recorder{t0: t0, inflight: make([]atomic.Int64, workers)}
}

func (r *recorder) since() time.Duration { return time.Since(r.t0) }

func (r *recorder) add(q request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, q)
	r.mu.Unlock()
}

// snapshot returns the finished requests so far.
func (r *recorder) snapshot() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// finishedFrom returns the requests recorded after the first n.
func (r *recorder) finishedFrom(n int) []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n >= len(r.reqs) {
		return nil
	}
	return append([]request(nil), r.reqs[n:]...)
}

// inFlight returns the requests running now (Latency: their age at now).
func (r *recorder) inFlight(now time.Duration) []request {
	var out []request
	for i := range r.inflight {
		if v := r.inflight[i].Load(); v != 0 {
			start := time.Duration(v - 1)
			out = append(out, request{Worker: i, Start: start, Latency: now - start, Open: true})
		}
	}
	return out
}

// workload is the same small query loop for both runs.
type workload struct {
	db       *sql.DB
	query    string
	args     func() []any
	deadline time.Duration // 0 = none
	think    time.Duration // mean pause between a worker's requests
	rec      *recorder
	redact   func(string) string
	idle     func(time.Duration) bool // no new request while true (nil: never)
}

// run starts workers that issue requests until stop is closed, and returns
// a WaitGroup that is done when every worker has returned. A worker whose
// request hangs returns only when the request does: the caller abandons it
// (see abandon) and unblocks it by closing the path.
func (w *workload) run(stop <-chan struct{}, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.worker(i, stop)
		}()
	}
	return &wg
}

func (w *workload) worker(i int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if w.idle != nil && w.idle(w.rec.since()) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		start := w.rec.since()
		w.rec.inflight[i].Store(int64(start) + 1)
		err := w.once()
		lat := w.rec.since() - start
		// If the run already abandoned this request, it was recorded then.
		if w.rec.inflight[i].CompareAndSwap(int64(start)+1, 0) {
			q := request{Worker: i, Start: start, Latency: lat}
			if err != nil {
				q.Err = w.redact(err.Error())
				q.Timeout = errors.Is(err, context.DeadlineExceeded)
			}
			w.rec.add(q)
		}
		select {
		case <-stop:
			return
		case <-time.After(w.pause()):
		}
	}
}

func (w *workload) once() error {
	ctx := context.Background()
	if w.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.deadline)
		defer cancel()
	}
	var v any
	return w.db.QueryRowContext(ctx, w.query, w.args()...).Scan(&v)
}

// abandon records every request still in flight as open (hung) with its
// age at `at`, so the run can end without waiting for it.
func (r *recorder) abandon(at time.Duration) int {
	n := 0
	for i := range r.inflight {
		v := r.inflight[i].Load()
		if v != 0 && r.inflight[i].CompareAndSwap(v, 0) {
			start := time.Duration(v - 1)
			r.add(request{Worker: i, Start: start, Latency: at - start, Open: true, Err: "abandoned: still running when the run ended"})
			n++
		}
	}
	return n
}

// pause is uniform in [think/2, 3*think/2): workers drift apart instead of
// hitting the pool in lockstep.
func (w *workload) pause() time.Duration {
	if w.think <= 0 {
		return 0
	}
	return w.think/2 + rand.N(w.think)
}
