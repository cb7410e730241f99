//go:build linux

package labrun

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// Side is one of the two contestants.
type Side struct {
	Name string  // "plain" or "flapguard"
	DB   *sql.DB // what the workload uses
	Pool *pool.Pool

	// Sever closes every socket this side's driver dialed, so that requests
	// the plain side left hanging return at the end of a scenario.
	Sever func() int
	// Sessions counts this side's sessions on the server (admin path).
	Sessions func(ctx context.Context) (int, error)
}

// Load is the workload: Workers goroutines, each issuing Query with its own
// Deadline (0: none) and pausing Pause between requests.
type Load struct {
	Workers  int
	Deadline time.Duration
	Query    string
	Pause    time.Duration
	// PauseMax makes the traffic bursty (see bursts.go): the workers burst
	// together, 1 to Burst requests each (Pause apart), then idle together
	// for a time drawn from [0, PauseMax), as an app's traffic spikes do:
	// every pooled connection sits through the idle time. One schedule,
	// drawn from Seed, for every worker and both sides. 0: steady.
	PauseMax time.Duration
	Burst    int
	Seed     uint64
}

// Sample is one request.
type Sample struct {
	Start   time.Duration `json:"start_ns"` // since the run began
	Latency time.Duration `json:"latency_ns"`
	Err     string        `json:"err,omitempty"`
	Done    bool          `json:"done"` // false: still hanging when abandoned
}

// runner drives one side's workers.
type runner struct {
	side     *Side
	load     Load
	t0       time.Time
	paused   *atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex // protects samples and inflight
	samples  []Sample
	inflight map[int]time.Time
}

func (r *runner) start() {
	for w := range r.load.Workers {
		if r.load.PauseMax > 0 {
			r.wg.Go(func() { r.bursts(w) })
			continue
		}
		r.wg.Go(func() { r.work(w) })
	}
}

func (r *runner) work(w int) {
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		if r.paused.Load() {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		r.one(w)
		if r.load.Pause > 0 {
			select {
			case <-r.stop:
				return
			case <-time.After(r.load.Pause):
			}
		}
	}
}

func (r *runner) one(w int) {
	ctx := context.Background()
	var cancel context.CancelFunc = func() {}
	if r.load.Deadline > 0 {
		ctx, cancel = context.WithTimeout(ctx, r.load.Deadline)
	}
	defer cancel()
	start := time.Now()
	r.mu.Lock()
	r.inflight[w] = start
	r.mu.Unlock()
	var x any
	err := r.side.DB.QueryRowContext(ctx, r.load.Query).Scan(&x)
	s := Sample{Start: start.Sub(r.t0), Latency: time.Since(start), Done: true}
	if err != nil {
		s.Err = err.Error()
	}
	r.mu.Lock()
	delete(r.inflight, w)
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

// finish stops the workers, waits up to grace for requests in flight, then
// records the rest as hanging and severs the side's sockets to free them.
func (r *runner) finish(grace time.Duration) {
	close(r.stop)
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	now := time.Now()
	r.mu.Lock()
	for _, st := range r.inflight {
		r.samples = append(r.samples, Sample{Start: st.Sub(r.t0), Latency: now.Sub(st), Err: "abandoned: still hanging", Done: false})
	}
	r.inflight = map[int]time.Time{}
	r.mu.Unlock()
	if r.side.Sever != nil {
		r.side.Sever()
	}
	<-done
	// Requests that returned after the sever were recorded again; drop the
	// duplicates of the abandoned ones (same start, later).
	r.mu.Lock()
	r.samples = dedupe(r.samples)
	r.mu.Unlock()
}

func dedupe(ss []Sample) []Sample {
	seen := make(map[time.Duration]bool, len(ss))
	out := ss[:0]
	for _, s := range ss {
		if !s.Done {
			seen[s.Start] = true
		}
	}
	for _, s := range ss {
		if s.Done && seen[s.Start] {
			continue // the abandoned record stands for it
		}
		out = append(out, s)
	}
	return out
}
