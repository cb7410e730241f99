//go:build linux

package labrun

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flapguard/flapguard/internal/openloop"
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

// openQueue is how many arrivals may wait for a slot: Queue, or as many as
// arrive in one deadline (rate × deadline: a queued request can still be
// served in time, the next would only expire in the queue), or 4 per slot
// without a deadline. A small queue sheds nearly everything an outage
// brings on both sides alike (measured with 4 per slot: S3 shed 575 of
// 1714 on each side), hiding what the pool does once the path is back.
func (l Load) openQueue() int {
	switch {
	case l.Queue > 0:
		return l.Queue
	case l.Deadline > 0:
		return max(int(math.Ceil(l.openRate()*l.Deadline.Seconds())), 1)
	}
	return 4 * max(l.Workers, 1)
}

// arrivals returns the load's schedule (openloop.Arrivals): it depends on
// the load alone (its seed), never on time, so two sides, and two runs of
// one seed, see the same arrivals.
//
// A bursty load (PauseMax > 0) keeps the closed loop's spikes (bursts.go):
// spike k at T(k), and at each spike every one of Workers users sends 1 to
// Burst requests, Pause apart, the counts drawn as the closed loop draws
// them. Otherwise arrivals come at openRate, Poisson or evenly spaced.
func (l Load) arrivals() openloop.Arrivals {
	switch {
	case l.PauseMax > 0:
		return l.burstArrivals()
	case l.Poisson:
		return openloop.Poisson(l.openRate(), l.Seed)
	}
	return openloop.Even(l.openRate())
}

func (l Load) burstArrivals() openloop.Arrivals {
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
			slices.Sort(due)
			next += l.burstWindow() + time.Duration(spikes.Int64N(int64(l.PauseMax)))
		}
		at := due[0]
		due = due[1:]
		return at
	}
}

// openLoop runs the open loop (internal/openloop) until the run stops.
func (r *runner) openLoop() {
	lp := openloop.Loop{Slots: max(r.load.Workers, 1), Queue: r.load.openQueue(), Deadline: r.load.Deadline,
		Paused: r.paused.Load, Serve: r.serve,
		Drop: func(q openloop.Request, shed bool) {
			if shed {
				r.record(-1, Sample{Start: q.At, Err: shedErr, Done: true, Shed: true})
				return
			}
			r.record(-1, Sample{Start: q.At, Latency: q.Queued, Queued: q.Queued, Err: queueDeadlineErr, Done: true})
		}}
	r.wg.Go(func() { lp.Run(r.t0, r.load.arrivals(), r.stop) })
}

// serve runs one request on its slot; ctx carries its deadline from
// arrival.
func (r *runner) serve(ctx context.Context, q openloop.Request) {
	arrived := r.t0.Add(q.At)
	r.mu.Lock()
	r.inflight[q.Slot] = arrived
	r.mu.Unlock()
	var x any
	err := r.side.DB.QueryRowContext(ctx, r.load.Query).Scan(&x)
	s := Sample{Start: q.At, Latency: time.Since(arrived), Queued: q.Queued, Done: true}
	if err != nil {
		s.Err = err.Error()
	}
	r.record(q.Slot, s)
}

// record stores s and, for w ≥ 0, ends slot w's request in flight.
func (r *runner) record(w int, s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w >= 0 {
		delete(r.inflight, w)
	}
	r.samples = append(r.samples, s)
}
