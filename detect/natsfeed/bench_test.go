package natsfeed

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// BenchmarkFanOut50 publishes one event per iteration to 50 subscribers,
// each on its own *nats.Conn with its own Notifier (an in-process
// nats-server on loopback), and reports publish→Notify latency over all
// deliveries.
func BenchmarkFanOut50(b *testing.B) {
	const subscribers = 50
	ns := startServer(b, -1)
	var sent atomic.Int64 // monotonic ns of the current publish
	start := time.Now()
	arrived := make(chan time.Duration, subscribers)
	for range subscribers {
		nc := connect(b, ns.ClientURL())
		n := detect.NotifierFunc(func(detect.Event) {
			arrived <- time.Since(start) - time.Duration(sent.Load())
		})
		s, err := Subscribe(nc, "fleet", n, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Unsubscribe() })
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	pub := connect(b, ns.ClientURL())
	ev := detect.Event{Tunnel: "aws-1", State: detect.Down, Source: "bench"}
	lat := make([]time.Duration, 0, b.N*subscribers)
	b.ResetTimer()
	for range b.N {
		sent.Store(int64(time.Since(start)))
		if err := Publish(pub, "fleet", ev); err != nil {
			b.Fatal(err)
		}
		for range subscribers {
			lat = append(lat, <-arrived)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
