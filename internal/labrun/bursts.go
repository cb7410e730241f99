//go:build linux

package labrun

import (
	"math/rand/v2"
	"time"
)

// burstWindow is the time a spike's bursts are given before the idle time
// starts: Burst requests, Pause apart, each a WAN round trip or two long.
func (l Load) burstWindow() time.Duration {
	return time.Duration(max(l.Burst, 1)) * (l.Pause + 100*time.Millisecond)
}

// bursts is a worker of a bursty load. Spike k starts at T(k), the same
// instant for every worker of both sides: T(0) is the run's start and
// T(k+1) = T(k) + burstWindow + a draw from [0, PauseMax). At each spike
// the worker issues 1..Burst requests, then idles until the next. A burst
// that overruns (a retransmission) starts the next one late, and the
// schedule catches it up.
func (r *runner) bursts(w int) {
	spikes := rand.New(rand.NewPCG(r.load.Seed, 0))        // the same for every worker
	own := rand.New(rand.NewPCG(r.load.Seed, uint64(w)+1)) // this worker's burst sizes
	next := r.t0
	for {
		n := 1 + own.IntN(max(r.load.Burst, 1))
		for i := range n {
			if i > 0 && !r.sleep(r.load.Pause) {
				return
			}
			for r.paused.Load() {
				if !r.sleep(5 * time.Millisecond) {
					return
				}
			}
			if !r.sleep(0) {
				return
			}
			r.one(w)
		}
		next = next.Add(r.load.burstWindow() + time.Duration(spikes.Int64N(int64(r.load.PauseMax))))
		if !r.sleep(time.Until(next)) {
			return
		}
	}
}

// sleep waits d (not at all if d ≤ 0) unless the run stops first; it
// reports whether the run goes on.
func (r *runner) sleep(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-r.stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.stop:
		return false
	case <-t.C:
		return true
	}
}
