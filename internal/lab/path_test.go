//go:build linux

package lab

import (
	"context"
	"errors"
	"math"
	"sync"
	"syscall"
	"testing"
	"time"
)

// within reports whether got is within frac of want.
func within(got, want time.Duration, frac float64) bool {
	d := float64(got - want)
	return d <= frac*float64(want) && -d <= frac*float64(want)
}

// tcpRTTs times n sequential echo round trips on each of conns parallel
// TCP connections: the RTT an application sees (its own scheduling
// included).
func tcpRTTs(t *testing.T, l *Lab, conns, n int) []time.Duration {
	t.Helper()
	addr, _ := echoServer(t, l)
	var mu sync.Mutex
	var rtts []time.Duration
	var wg sync.WaitGroup
	for range conns {
		c := dialApp(t, l, addr)
		wg.Go(func() {
			defer c.Close()
			for range n {
				start := time.Now()
				if line, err := roundtrip(c, "ping", 5*time.Second); err != nil || line != "ping" {
					t.Errorf("roundtrip: %q, %v", line, err)
					return
				}
				mu.Lock()
				rtts = append(rtts, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return rtts
}

func TestPathRTT(t *testing.T) {
	l := New(t)
	for _, tc := range []struct {
		name     string
		spec     PathSpec
		min, max time.Duration // what the path may do to one round trip
	}{
		{"20ms", PathSpec{Delay: 20 * time.Millisecond}, 40 * time.Millisecond, 40 * time.Millisecond},
		{"20ms±5ms", PathSpec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}, 30 * time.Millisecond, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.SetPath(tc.spec, tc.spec); err != nil {
				t.Fatal(err)
			}
			const want = 40 * time.Millisecond
			icmp := pingRTTs(t, l, 300, 3*time.Millisecond, time.Second)
			med, p99 := percentile(icmp, 50), percentile(icmp, 99)
			lo, hi := percentile(icmp, 0), percentile(icmp, 100)
			t.Logf("ICMP RTT, %d samples (kernel stamps at the app's veth): median %v, p99 %v, min %v, max %v; set %v each way",
				len(icmp), med.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), lo.Round(10*time.Microsecond),
				hi.Round(10*time.Microsecond), tc.spec)
			if st, err := l.PathStats(); err == nil {
				t.Logf("emulator: app->db %d sent, %d over 1ms late (worst %v); db->app %d sent, %d late (worst %v)",
					st.ToDB.Delivered, st.ToDB.Late, st.ToDB.MaxLate, st.ToApp.Delivered, st.ToApp.Late, st.ToApp.MaxLate)
			}
			if len(icmp) < 300 {
				t.Errorf("%d of 300 pings came back on a path without loss", len(icmp))
			}
			if !within(med, want, 0.10) {
				t.Errorf("ICMP median RTT %v, want %v ±10%%", med, want)
			}
			if p99 > tc.max+want/10 || lo < tc.min-want/10 {
				t.Errorf("ICMP RTT p99 %v, min %v: want within [%v, %v] ±10%% of %v", p99, lo, tc.min, tc.max, want)
			}

			tcp := tcpRTTs(t, l, 4, 30)
			med, p99 = percentile(tcp, 50), percentile(tcp, 99)
			t.Logf("TCP echo RTT, %d samples (as the app sees it): median %v, p99 %v", len(tcp),
				med.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
			if !within(med, want, 0.10) {
				t.Errorf("TCP median RTT %v, want %v ±10%%", med, want)
			}
		})
	}
}

func TestPathOneWayAndLoss(t *testing.T) {
	l := New(t)
	// Different in each direction, so a swap would show.
	toDB := PathSpec{Delay: 30 * time.Millisecond, Loss: 0.03}
	toApp := PathSpec{Delay: 10 * time.Millisecond, Loss: 0.01}
	if err := l.SetPath(toDB, toApp); err != nil {
		t.Fatal(err)
	}
	const n = 4000
	gotDB, gotApp, st := streams(t, l, n)
	t.Logf("app->db (set %v): %v; emulator %+v", toDB, gotDB, st.ToDB)
	t.Logf("db->app (set %v): %v; emulator %+v", toApp, gotApp, st.ToApp)
	for _, d := range []struct {
		name string
		spec PathSpec
		got  oneWay
		ctr  PathCounters
	}{{"app->db", toDB, gotDB, st.ToDB}, {"db->app", toApp, gotApp, st.ToApp}} {
		lost := d.got.sent - d.got.received
		mean, bound := float64(n)*d.spec.Loss, binomialBound(n, d.spec.Loss)
		if math.Abs(float64(lost)-mean) > bound {
			t.Errorf("%s: %d of %d lost, want %.0f ± %.0f (binomial, 4.5σ) for loss %g", d.name, lost, n, mean, bound, d.spec.Loss)
		}
		if uint64(d.got.received) != d.ctr.Delivered || d.ctr.Overflow+d.ctr.WriteErrs != 0 {
			t.Errorf("%s: received %d, the emulator delivered %d (%+v): packets lost outside the emulator's draw",
				d.name, d.got.received, d.ctr.Delivered, d.ctr)
		}
		if med := percentile(d.got.delays, 50); !within(med, d.spec.Delay, 0.10) {
			t.Errorf("%s: one-way median %v, want %v ±10%%", d.name, med, d.spec.Delay)
		}
		if lo := percentile(d.got.delays, 0); lo < d.spec.Delay {
			t.Errorf("%s: a datagram arrived after %v, before the %v delay", d.name, lo, d.spec.Delay)
		}
		if d.got.inversions != 0 {
			t.Errorf("%s: %d datagrams out of order without Reorder", d.name, d.got.inversions)
		}
	}
}

func TestPathOrder(t *testing.T) {
	l := New(t)
	fifo := PathSpec{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}
	reorder := fifo
	reorder.Reorder = true
	if err := l.SetPath(fifo, reorder); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	gotDB, gotApp, _ := streams(t, l, n)
	t.Logf("app->db (set %v): %v", fifo, gotDB)
	t.Logf("db->app (set %v): %v", reorder, gotApp)
	if gotDB.inversions != 0 {
		t.Errorf("FIFO direction: %d datagrams out of order", gotDB.inversions)
	}
	// About two datagrams a millisecond with delays spread over 10ms: most
	// neighbours swap. Far fewer than 10%% would mean Reorder did nothing.
	if gotApp.inversions < n/10 {
		t.Errorf("Reorder direction: only %d of %d datagrams out of order", gotApp.inversions, n)
	}
	for _, o := range []oneWay{gotDB, gotApp} {
		// Never early; late only by the emulator's (and the receiver's)
		// scheduling, which the p99 is allowed 10% of.
		if lo, hi := percentile(o.delays, 0), percentile(o.delays, 99); lo < 5*time.Millisecond || hi > 16500*time.Microsecond {
			t.Errorf("one-way delays: min %v, p99 %v; want within 10ms±5ms (p99 +10%%)", lo, hi)
		}
		if o.received != n {
			t.Errorf("%d of %d datagrams arrived on a path without loss", o.received, n)
		}
	}
}

func TestPathFaults(t *testing.T) {
	l := New(t)
	spec := PathSpec{Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond}
	if err := l.SetPath(spec, spec); err != nil {
		t.Fatal(err)
	}
	addr, got := echoServer(t, l)
	c := dialApp(t, l, addr)
	start := time.Now()
	if line, err := roundtrip(c, "before", 2*time.Second); err != nil || line != "before" {
		t.Fatalf("before: %q, %v", line, err)
	}
	if d := time.Since(start); d < 16*time.Millisecond {
		t.Fatalf("a round trip took %v: not through the emulator", d)
	}
	<-got

	// Blackhole: dropped on the way in, before the emulator ever sees it.
	if err := l.Blackhole(); err != nil {
		t.Fatal(err)
	}
	before, err := l.PathStats()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundtrip(c, "during", time.Second); !isTimeout(err) {
		t.Fatalf("roundtrip through the blackhole with the path on = %v, want a timeout", err)
	}
	after, err := l.PathStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("emulator during the blackhole: app->db %d -> %d packets", before.ToDB.Packets, after.ToDB.Packets)
	if after.ToDB.Packets != before.ToDB.Packets {
		t.Errorf("the emulator saw %d packets during the blackhole: the faults must drop before the detour",
			after.ToDB.Packets-before.ToDB.Packets)
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(c, 10*time.Second); err != nil || line != "during" {
		t.Fatalf("after Restore, queued echo = %q, %v", line, err)
	}
	<-got

	// Rekey: the old flow stays dead, a new one works.
	if _, err := l.BeginRekey(); err != nil {
		t.Fatal(err)
	}
	if err := l.EndRekey(); err != nil {
		t.Fatal(err)
	}
	fresh := dialApp(t, l, addr)
	if line, err := roundtrip(fresh, "new", 2*time.Second); err != nil || line != "new" {
		t.Fatalf("new conn after the rekey: %q, %v", line, err)
	}
	<-got
	if _, err := roundtrip(c, "dead?", time.Second); !isTimeout(err) {
		t.Fatalf("old conn after the rekey with the path on = %v, want a timeout", err)
	}

	// Asymmetric: the request crosses the emulator, the answer does not.
	if err := l.Asymmetric(DBToApp); err != nil {
		t.Fatal(err)
	}
	if _, err := roundtrip(fresh, "req", time.Second); !isTimeout(err) {
		t.Fatalf("roundtrip with db->app dropped = %v, want a timeout", err)
	}
	select {
	case line := <-got:
		if line != "req\n" {
			t.Fatalf("server got %q", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("with only db->app dropped, the request never reached the server")
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(fresh, 10*time.Second); err != nil || line != "req" {
		t.Fatalf("echo after lifting: %q, %v", line, err)
	}

	// Reset: refused at once, the path notwithstanding.
	if err := l.Reset(true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if c2, err := l.DialApp(ctx, "tcp", addr); err == nil {
		c2.Close()
		t.Fatal("dial under Reset with the path on succeeded")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial under Reset with the path on = %v, want ECONNREFUSED", err)
	}
	if err := l.Reset(false); err != nil {
		t.Fatal(err)
	}
}
