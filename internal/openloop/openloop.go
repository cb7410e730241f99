// Package openloop sends requests the way a service receives them (issue
// 24): they arrive on a schedule fixed before the run, whatever the pool
// under test is doing, at most Slots run at once, an arrival that finds
// every slot busy waits in a queue of Queue, and one that finds the queue
// full is shed. Each request's deadline runs from its arrival, queueing
// included, so a pool stuck on a dead socket is charged for the requests
// queued behind it instead of never being sent them (the coordinated
// omission of a closed loop, where each worker sends its next request only
// when the last returned).
//
// The lab's scenarios (internal/labrun) and the soak's plain twin
// (internal/soak) drive their pools through it. It has no dependencies, so
// that the root module's go.mod stays the library's; latency summaries
// (HDR histograms) live in the test-only labrun module.
package openloop

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Arrivals yields the offset from the run's start of each next arrival,
// one per call, in order, forever. An Arrivals is used by one goroutine.
type Arrivals func() time.Duration

// Even is rate arrivals per second, evenly spaced, the first at 0. A rate
// ≤ 0 is one per second.
func Even(rate float64) Arrivals {
	gap := gapOf(rate)
	at := -gap
	return func() time.Duration {
		at += gap
		return at
	}
}

// Poisson is rate arrivals per second on average, with exponentially
// distributed gaps drawn from seed, the first at 0: the same seed gives
// the same arrivals. A rate ≤ 0 is one per second.
func Poisson(rate float64, seed uint64) Arrivals {
	gap := gapOf(rate)
	rng := rand.New(rand.NewPCG(seed, 0x6f70656e)) // "open"
	var at time.Duration
	first := true
	return func() time.Duration {
		if first {
			first = false
			return 0
		}
		at += time.Duration(rng.ExpFloat64() * float64(gap))
		return at
	}
}

func gapOf(rate float64) time.Duration {
	if rate <= 0 {
		rate = 1
	}
	return time.Duration(float64(time.Second) / rate)
}

// Request is one arrival handed to a slot.
type Request struct {
	Slot   int           // which of the Slots serves it (0..Slots-1); -1 if none did
	At     time.Duration // its arrival, from the run's start
	Queued time.Duration // how long it waited for a slot
}

// Loop is one open-loop run's shape. The zero value is not usable: Serve
// is required.
type Loop struct {
	// Slots: the most requests in flight at once. ≤ 0: 1.
	Slots int
	// Queue: how many arrivals may wait for a free slot; the next one is
	// shed. ≤ 0: 4 per slot.
	Queue int
	// Deadline: each request's, from its arrival. 0 or negative: none.
	Deadline time.Duration
	// Paused, if set, is asked at each arrival: true means no user sent
	// it (the script has paused the workload), and it is skipped.
	Paused func() bool
	// Serve runs one request on its slot. ctx carries its deadline (from
	// arrival) and nothing else. Serve is called from the slot's own
	// goroutine, Slots of them at most at once.
	Serve func(ctx context.Context, r Request)
	// Drop, if set, is told of a request the loop failed itself: shed
	// (the queue was full; Slot -1, Queued 0) or not shed (its deadline
	// passed while it waited; Serve was not called). Called from the
	// dispatcher or a slot goroutine.
	Drop func(r Request, shed bool)
}

// Run sends the arrivals of next from t0 on until stop is closed, then
// serves what is still queued and returns when every slot is idle. A
// dispatcher that wakes late (a starved scheduler) sends what is due at
// once: the schedule does not move, and Request.At says when it was due.
func (l Loop) Run(t0 time.Time, next Arrivals, stop <-chan struct{}) {
	slots := max(l.Slots, 1)
	qlen := l.Queue
	if qlen <= 0 {
		qlen = 4 * slots
	}
	queue := make(chan time.Duration, qlen)
	var wg sync.WaitGroup
	for s := range slots {
		wg.Go(func() {
			for at := range queue {
				l.serve(t0, s, at)
			}
		})
	}
	defer wg.Wait()
	defer close(queue)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		at := next()
		if d := time.Until(t0.Add(at)); d > 0 {
			timer.Reset(d)
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
		}
		if l.Paused != nil && l.Paused() {
			continue
		}
		select {
		case queue <- at:
		default:
			if l.Drop != nil {
				l.Drop(Request{Slot: -1, At: at}, true)
			}
		}
	}
}

func (l Loop) serve(t0 time.Time, slot int, at time.Duration) {
	arrived := t0.Add(at)
	r := Request{Slot: slot, At: at, Queued: time.Since(arrived)}
	ctx := context.Background()
	if l.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, arrived.Add(l.Deadline))
		defer cancel()
		if ctx.Err() != nil {
			if l.Drop != nil {
				l.Drop(r, false)
			}
			return
		}
	}
	l.Serve(ctx, r)
}
