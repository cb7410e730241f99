package otelflapguard_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/flapguard/flapguard/otelflapguard"
	"github.com/flapguard/flapguard/pool"
)

type nopConnector struct{}
type nopConn struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) { return nopConn{}, nil }
func (nopConnector) Driver() driver.Driver                        { return nil }
func (nopConn) Prepare(string) (driver.Stmt, error)               { return nil, errors.New("nop") }
func (nopConn) Close() error                                      { return nil }
func (nopConn) Begin() (driver.Tx, error)                         { return nil, errors.New("nop") }

// Wire a pool to OpenTelemetry: OnEvent and Observer into the pool's
// Config before it opens, Observe once it is open. A ManualReader stands in for the
// exporter a service would use (OTLP, Prometheus).
func Example() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	m, err := otelflapguard.New(otelflapguard.Options{MeterProvider: mp, PoolName: "orders"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The pool reports events from its own goroutines: this one also tells
	// the example when the reset it asks for has been reported.
	reset := make(chan struct{}, 1)
	onEvent := func(ev pool.Event) {
		m.OnEvent(ev)
		if ev.Kind == pool.EventReset {
			select {
			case reset <- struct{}{}:
			default:
			}
		}
	}
	// pool.Open("pgx", dsn, ...) in a real program.
	p := pool.OpenDB(nopConnector{}, pool.Config{ProbeInterval: -1, OnEvent: onEvent, Observer: m.Observer()})
	defer p.Close()
	if err := m.Observe(p); err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	p.Reset("example")
	<-reset

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, mt := range rm.ScopeMetrics[0].Metrics {
		switch mt.Name {
		case "flapguard.pool.resets", "flapguard.pool.generation":
			var v int64
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				v = d.DataPoints[0].Value
			case metricdata.Gauge[int64]:
				v = d.DataPoints[0].Value
			}
			fmt.Println(mt.Name, v)
		case "flapguard.pool.events":
			for _, dp := range mt.Data.(metricdata.Sum[int64]).DataPoints {
				if kind, _ := dp.Attributes.Value(otelflapguard.EventKindKey); kind.AsString() == "reset" {
					fmt.Println(mt.Name, kind.AsString(), dp.Value)
				}
			}
		}
	}
	// Unordered output:
	// flapguard.pool.events reset 1
	// flapguard.pool.resets 1
	// flapguard.pool.generation 2
}
