package openloop

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestArrivalsAreFixedBySeed(t *testing.T) {
	a, b, c := Poisson(200, 7), Poisson(200, 7), Poisson(200, 8)
	same, differ := true, false
	var last time.Duration
	for i := range 10000 {
		x, y, z := a(), b(), c()
		if x != y {
			same = false
		}
		if x != z {
			differ = true
		}
		if x < last {
			t.Fatalf("arrival %d at %v before the previous %v", i, x, last)
		}
		last = x
	}
	if !same || !differ {
		t.Errorf("same seed same arrivals: %v (want true); another seed other arrivals: %v (want true)", same, differ)
	}
	// 10000 arrivals at 200/s take about 50s (the mean of 10000
	// exponential gaps is within 3% of 5ms with overwhelming probability).
	if last < 48*time.Second || last > 52*time.Second {
		t.Errorf("10000 Poisson arrivals at 200/s ended at %v; want about 50s", last)
	}
	e := Even(4)
	for i, want := range []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond} {
		if got := e(); got != want {
			t.Errorf("Even(4) arrival %d at %v, want %v", i, got, want)
		}
	}
}

// One slot held by a request that never returns, a queue of 2: the next
// two arrivals wait, and every later one is shed. When the first request
// returns, the queued ones are served, by then past their deadline.
func TestQueueThenShedThenDeadlineInQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var served, shed, expired []time.Duration
		l := Loop{Slots: 1, Queue: 2, Deadline: time.Second,
			Serve: func(ctx context.Context, r Request) {
				mu.Lock()
				served = append(served, r.At)
				mu.Unlock()
				if r.At == 0 {
					<-release
				}
			},
			Drop: func(r Request, isShed bool) {
				mu.Lock()
				defer mu.Unlock()
				if isShed {
					shed = append(shed, r.At)
				} else {
					expired = append(expired, r.At)
				}
			},
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { l.Run(time.Now(), Even(10), stop); close(done) }()
		time.Sleep(550 * time.Millisecond) // arrivals at 0, 100ms ... 500ms
		close(stop)
		time.Sleep(2 * time.Second)
		close(release)
		<-done
		ms := func(ds []time.Duration) []int64 {
			var out []int64
			for _, d := range ds {
				out = append(out, d.Milliseconds())
			}
			return out
		}
		if got := ms(served); len(got) != 1 || got[0] != 0 {
			t.Errorf("served %v ms, want [0]", got)
		}
		if got := ms(expired); len(got) != 2 || got[0] != 100 || got[1] != 200 {
			t.Errorf("expired in the queue %v ms, want [100 200]", got)
		}
		if got := ms(shed); len(got) != 3 || got[0] != 300 || got[2] != 500 {
			t.Errorf("shed %v ms, want [300 400 500]", got)
		}
	})
}

// A paused workload sends nothing; latency counts from the arrival, so a
// slot that starts late reports the wait as Queued.
func TestPausedAndQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []Request
		paused := true
		l := Loop{Slots: 1, Queue: 10,
			Paused: func() bool { mu.Lock(); defer mu.Unlock(); return paused },
			Serve: func(ctx context.Context, r Request) {
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
				time.Sleep(150 * time.Millisecond)
			},
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { l.Run(time.Now(), Even(10), stop); close(done) }()
		time.Sleep(250 * time.Millisecond) // 0, 100, 200 skipped
		mu.Lock()
		paused = false
		mu.Unlock()
		time.Sleep(260 * time.Millisecond) // 300, 400, 500 arrive
		close(stop)
		<-done
		if len(got) != 3 || got[0].At != 300*time.Millisecond {
			t.Fatalf("served %+v; want the arrivals at 300, 400, 500ms", got)
		}
		// 300 served at once; 400 waits for it until 450; 500 until 600.
		if got[1].Queued != 50*time.Millisecond || got[2].Queued != 100*time.Millisecond {
			t.Errorf("queued %v and %v, want 50ms and 100ms", got[1].Queued, got[2].Queued)
		}
	})
}
