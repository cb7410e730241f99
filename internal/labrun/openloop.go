//go:build linux

package labrun

import (
	"context"
	"math/rand/v2"
	"time"
)

// The open loop (issue 24): requests arrive on a schedule fixed before the
// run, as a service's users send them, whatever the pool is doing. Today's
// workers (the closed loop, workload.go) send their next request only when
// the last returned, so a side that fails fast is given more requests to
// fail, and a side stuck on a dead socket sends nothing and the requests
// that would have queued behind it never show in its percentiles
// (coordinated omission). Here:
//
//   - arrival k is due at a time drawn from the load's seed alone (constant
//     rate or Poisson), the same for both sides and every run of the seed;
//   - at most Load.Workers requests run at once (a service's bound); an
//     arrival that finds them all busy waits in a queue of Load.Queue, and
//     one that finds the queue full is shed: it fails at once and counts;
//   - each request's deadline runs from its arrival, queueing included (a
//     request whose deadline passed in the queue fails without reaching
//     the pool), and its latency is measured from its arrival too.
//
// While the script has paused the workload (Script.Pause) no user sends
// anything: arrivals due then are skipped, not counted.

// shedErr and queueDeadlineErr are the errors of requests the service
// failed itself, before the pool saw them.
const (
	shedErr          = "shed: the queue was full"
	queueDeadlineErr = "deadline passed while queued"
)

// openRate is the arrival rate of a load: Rate, or 25 per second per
// allowed request in flight (8 → 200/s, the rate of issue 25's runs).
func (l Load) openRate() float64 {
	if l.Rate > 0 {
		return l.Rate
	}
	return 25 * float64(max(l.Workers, 1))
}

// openQueue is how many arrivals may wait for a slot: Queue, or 4 per slot.
func (l Load) openQueue() int {
	if l.Queue > 0 {
		return l.Queue
	}
	return 4 * max(l.Workers, 1)
}

// arrivals returns the load's schedule as a function yielding the next
// arrival's offset from the run's start, one per call, forever. It depends
// on the load alone (its seed), never on time, so two sides, and two runs
// of one seed, see the same arrivals.
//
// A bursty load (PauseMax > 0) keeps the closed loop's spikes (bursts.go):
// spike k at T(k), and at each spike every one of Workers users sends 1 to
// Burst requests, Pause apart, the counts drawn as the closed loop draws
// them. Otherwise arrivals come at openRate, evenly spaced or, with
// Poisson, with exponentially distributed gaps.
func (l Load) arrivals() func() time.Duration {
	if l.PauseMax > 0 {
		return l.burstArrivals()
	}
	gap := time.Duration(float64(time.Second) / l.openRate())
	rng := rand.New(rand.NewPCG(l.Seed, 0x6f70656e)) // "open"
	var at time.Duration
	first := true
	return func() time.Duration {
		if first {
			first = false
			return at
		}
		if l.Poisson {
			at += time.Duration(rng.ExpFloat64() * float64(gap))
		} else {
			at += gap
		}
		return at
	}
}

func (l Load) burstArrivals() func() time.Duration {
	spikes := rand.New(rand.NewPCG(l.Seed, 0))
	own := make([]*rand.Rand, max(l.Workers, 1))
	for w := range own {
		own[w] = rand.New(rand.NewPCG(l.Seed, uint64(w)+1))
	}
	var next time.Duration
	var due []time.Duration // this spike's arrivals, in order
	return func() time.Duration {
		for len(due) == 0 {
			for w := range own {
				n := 1 + own[w].IntN(max(l.Burst, 1))
				for i := range n {
					due = append(due, next+time.Duration(i)*l.Pause)
				}
			}
			sortDurations(due)
			next += l.burstWindow() + time.Duration(spikes.Int64N(int64(l.PauseMax)))
		}
		at := due[0]
		due = due[1:]
		return at
	}
}

func sortDurations(ds []time.Duration) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// openLoop starts the dispatcher and Workers servers of the open loop.
func (r *runner) openLoop() {
	queue := make(chan time.Duration, r.load.openQueue())
	for w := range max(r.load.Workers, 1) {
		r.wg.Go(func() {
			for at := range queue {
				r.serve(w, at)
			}
		})
	}
	r.wg.Go(func() {
		defer close(queue)
		next := r.load.arrivals()
		for {
			at := next()
			// A late wake (a starved scheduler) sends what is due at once:
			// the schedule does not move, and latency counts from it.
			if !r.sleep(time.Until(r.t0.Add(at))) {
				return
			}
			if r.paused.Load() {
				continue
			}
			select {
			case queue <- at:
			default:
				r.record(-1, Sample{Start: at, Err: shedErr, Done: true, Shed: true})
			}
		}
	})
}

// serve runs the request that arrived at offset at, on server w.
func (r *runner) serve(w int, at time.Duration) {
	arrived := r.t0.Add(at)
	ctx := context.Background()
	var cancel context.CancelFunc = func() {}
	if r.load.Deadline > 0 {
		ctx, cancel = context.WithDeadline(ctx, arrived.Add(r.load.Deadline))
	}
	defer cancel()
	queued := time.Since(arrived)
	if ctx.Err() != nil {
		r.record(-1, Sample{Start: at, Latency: queued, Queued: queued, Err: queueDeadlineErr, Done: true})
		return
	}
	r.mu.Lock()
	r.inflight[w] = arrived
	r.mu.Unlock()
	var x any
	err := r.side.DB.QueryRowContext(ctx, r.load.Query).Scan(&x)
	s := Sample{Start: at, Latency: time.Since(arrived), Queued: queued, Done: true}
	if err != nil {
		s.Err = err.Error()
	}
	r.record(w, s)
}

// record stores s and, for w ≥ 0, ends server w's request in flight.
func (r *runner) record(w int, s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w >= 0 {
		delete(r.inflight, w)
	}
	r.samples = append(r.samples, s)
}
