package natsfeed

import (
	"context"
	"database/sql/driver"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
)

type nopConnector struct{}
type nopConn struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) { return nopConn{}, nil }
func (nopConnector) Driver() driver.Driver                        { return nil }
func (nopConn) Prepare(string) (driver.Stmt, error)               { return nil, driver.ErrSkip }
func (nopConn) Close() error                                      { return nil }
func (nopConn) Begin() (driver.Tx, error)                         { return nil, driver.ErrSkip }

// BenchmarkFanOut50Pools publishes a tunnel event that 50 flapguard pools,
// each subscribed on its own NATS connection, apply: it reports the time
// from publish to each pool's reset (the DOWN's sever or the UP's reset),
// over all pools. The goal is p99 ≤ 100ms.
func BenchmarkFanOut50Pools(b *testing.B) {
	const pools = 50
	ns := startServer(b, -1)
	start := time.Now()
	var sent atomic.Int64
	applied := make(chan time.Duration, pools*2)
	for range pools {
		p := pool.OpenDB(nopConnector{}, pool.Config{ProbeInterval: -1, DownWait: -1, OnEvent: func(ev pool.Event) {
			if ev.Kind == pool.EventReset || ev.Kind == pool.EventSever {
				applied <- time.Since(start) - time.Duration(sent.Load())
			}
		}})
		b.Cleanup(func() { p.Close() })
		nc := connect(b, ns.ClientURL())
		s, err := Subscribe(nc, "fleet", p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Unsubscribe() })
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	pub := connect(b, ns.ClientURL())
	lat := make([]time.Duration, 0, b.N*pools)
	b.ResetTimer()
	for i := range b.N {
		st := detect.Down
		if i%2 == 1 {
			st = detect.Up
		}
		sent.Store(int64(time.Since(start)))
		if err := Publish(pub, "fleet", detect.Event{Tunnel: "aws-1", State: st, At: time.Now(), Source: "bench"}); err != nil {
			b.Fatal(err)
		}
		for range pools {
			select {
			case d := <-applied:
				lat = append(lat, d)
			case <-time.After(10 * time.Second):
				b.Fatalf("only %d of %d pools applied event %d", len(lat)%pools, pools, i)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	if p99 > 100*time.Millisecond {
		b.Errorf("p99 publish-to-reset %v; goal ≤ 100ms", p99)
	}
}
