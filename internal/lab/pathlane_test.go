//go:build linux

package lab

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// These tests need no root: they pin down the emulator's decisions.

// binomialBound is how far a binomial count may stray from its mean n·p
// before the test calls it wrong: 4.5 standard deviations, which a correct
// emulator exceeds about once in 150,000 runs.
func binomialBound(n int, p float64) float64 {
	return 4.5 * math.Sqrt(float64(n)*p*(1-p))
}

func TestPathSpecValidate(t *testing.T) {
	ms := time.Millisecond
	good := []PathSpec{{}, {Delay: 20 * ms, Jitter: 5 * ms, Loss: 0.03}, {Delay: 5 * ms, Jitter: 5 * ms, Reorder: true}, {Loss: 0.999}}
	for _, s := range good {
		if err := s.Validate("toDB"); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	for _, tc := range []struct {
		spec  PathSpec
		field string
	}{
		{PathSpec{Delay: -ms}, "toDB.Delay"},
		{PathSpec{Delay: ms, Jitter: -ms}, "toDB.Jitter"},
		{PathSpec{Delay: ms, Jitter: 2 * ms}, "toDB.Jitter"},
		{PathSpec{Delay: MaxPathDelay, Jitter: ms}, "toDB.Delay"},
		{PathSpec{Loss: -0.01}, "toDB.Loss"},
		{PathSpec{Loss: 1}, "toDB.Loss"},
		{PathSpec{Loss: math.NaN()}, "toDB.Loss"},
		{PathSpec{Loss: math.Inf(1)}, "toDB.Loss"},
	} {
		err := tc.spec.Validate("toDB")
		if !errors.Is(err, ErrBadPath) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want ErrBadPath naming %s", tc.spec, err, tc.field)
		}
	}
}

// feed admits n packets, one every gap, and returns each one's delay (-1:
// dropped).
func feed(ln *lane, n int, gap time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range n {
		now := int64(i) * int64(gap)
		due, drop := ln.admit(now)
		if drop {
			out[i] = -1
			continue
		}
		out[i] = time.Duration(due - now)
	}
	return out
}

func TestLaneFIFOJitter(t *testing.T) {
	var ln lane
	spec := PathSpec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}
	ln.setSpec(spec, 1, 1)
	const gap = 100 * time.Microsecond
	ds := feed(&ln, 200000, gap) // 20s of a busy flow
	var sum time.Duration
	lo, hi := time.Hour, time.Duration(0)
	for i, d := range ds {
		if i > 0 && time.Duration(i)*gap+d < time.Duration(i-1)*gap+ds[i-1] {
			t.Fatalf("packet %d due before packet %d: FIFO broken", i, i-1)
		}
		sum += d
		lo, hi = min(lo, d), max(hi, d)
	}
	mean := sum / time.Duration(len(ds))
	t.Logf("FIFO 20ms±5ms: delays in [%v, %v], mean %v", lo, hi, mean)
	if lo < 15*time.Millisecond || hi > 25*time.Millisecond {
		t.Errorf("delays in [%v, %v], want within 20ms±5ms", lo, hi)
	}
	// Held jitter keeps the mean at the setting; per-packet draws clamped
	// to FIFO would push it towards the top of the range.
	if mean < 19500*time.Microsecond || mean > 20500*time.Microsecond {
		t.Errorf("mean delay %v, want 20ms ±0.5ms", mean)
	}
}

func TestLaneReorder(t *testing.T) {
	var ln lane
	ln.setSpec(PathSpec{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Reorder: true}, 7, 1)
	const n, gap = 5000, 500 * time.Microsecond
	for i, d := range feed(&ln, n, gap) {
		if d < 5*time.Millisecond || d > 15*time.Millisecond {
			t.Fatalf("packet %d delayed %v, want 10ms±5ms", i, d)
		}
		if !ln.push(int64(time.Duration(i)*gap+d), []byte{byte(i >> 8), byte(i)}) {
			t.Fatalf("lane full at %d", i)
		}
	}
	// Popped in due order, which is not arrival order.
	last, inversions, popped := int64(-1), 0, 0
	for prev := -1; ln.len() > 0; popped++ {
		due, _ := ln.next()
		if due < last {
			t.Fatalf("popped due %d after %d", due, last)
		}
		last = due
		p, ok := ln.pop(due)
		if !ok {
			t.Fatal("pop of a due packet failed")
		}
		if i := int(p[0])<<8 | int(p[1]); i < prev {
			inversions++
		} else {
			prev = i
		}
	}
	t.Logf("reorder: %d of %d packets overtaken", inversions, popped)
	if popped != n || inversions < n/10 {
		t.Errorf("popped %d of %d, %d out of order; want all, many reordered", popped, n, inversions)
	}
	if _, ok := ln.pop(math.MaxInt64); ok {
		t.Error("pop from an empty lane succeeded")
	}
}

func TestLaneLoss(t *testing.T) {
	const n, p = 100000, 0.03
	drops := func(seed uint64) []bool {
		var ln lane
		ln.setSpec(PathSpec{Delay: time.Millisecond, Loss: p}, seed, 1)
		out := make([]bool, n)
		for i, d := range feed(&ln, n, time.Microsecond) {
			out[i] = d < 0
		}
		return out
	}
	a, b, c := drops(42), drops(42), drops(43)
	count := func(ds []bool) (k int) {
		for _, d := range ds {
			if d {
				k++
			}
		}
		return k
	}
	same := func(x, y []bool) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	k, bound := count(a), binomialBound(n, p)
	t.Logf("loss %g: %d of %d dropped (seed 42), %d (seed 43); bound ±%.0f", p, k, n, count(c), bound)
	if math.Abs(float64(k)-n*p) > bound {
		t.Errorf("%d of %d dropped, want %.0f ± %.0f", k, n, n*p, bound)
	}
	if !same(a, b) {
		t.Error("the same seed drew different drops")
	}
	if same(a, c) {
		t.Error("different seeds drew the same drops")
	}
}

func TestLaneCap(t *testing.T) {
	var ln lane
	for i := range laneCap {
		if !ln.push(int64(i), nil) {
			t.Fatalf("push %d refused below the cap", i)
		}
	}
	if ln.push(laneCap, nil) {
		t.Fatal("push past the cap accepted")
	}
	// Popping and pushing compacts instead of growing without bound.
	for i := range 10 * laneCap {
		if _, ok := ln.pop(math.MaxInt64); !ok {
			t.Fatalf("pop %d failed", i)
		}
		if !ln.push(int64(laneCap+i), nil) {
			t.Fatalf("push %d refused after a pop", i)
		}
	}
	if ln.len() != laneCap || cap(ln.q) > 4*laneCap {
		t.Errorf("len %d cap %d after churn", ln.len(), cap(ln.q))
	}
}
