// Command metrics exports a flapguard pool's statistics and events as
// Prometheus metrics: a Collector that reads Pool.Stats() on every scrape
// (collector.go) and a counter of Config.OnEvent events by kind.
//
//	go run ./examples/metrics                              # local PostgreSQL, http://127.0.0.1:9187/metrics
//	go run ./examples/metrics -driver mysql -dsn 'root@tcp(127.0.0.1:3306)/test'
//	go run ./examples/metrics -pool orders -listen :9187   # label the series pool="orders"
//	curl -s 127.0.0.1:9187/metrics | grep ^flapguard_
//
// It runs a light workload (one query a second) so the numbers move, and
// Resets the pool on SIGHUP, so flapguard_resets_total can be watched
// going up. It serves until interrupted, or for -duration.
//
// The Prometheus client stays in this examples module: flapguard itself
// depends on no metrics library.
//
// Exit codes: 0 done, 1 the server could not be reached or the listener
// failed, 2 bad command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flapguard/flapguard/examples/internal/excmd"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
	_ "github.com/flapguard/flapguard/pool/mysqladapter" // "mysql" with full socket control
	_ "github.com/flapguard/flapguard/pool/pgxadapter"   // "pgx" with full socket control
)

func main() { excmd.Main("metrics", run) }

// errUsage marks a bad command line (exit code 2); the message was printed.
var errUsage = excmd.ErrUsage

type options struct {
	driver, dsn, listen, poolName string
	duration                      time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.driver, "driver", "pgx", "pool.Open driver name: pgx, mysql, sqlserver")
	fs.StringVar(&o.dsn, "dsn", "", "DSN (default: the local test server for pgx and mysql; required for sqlserver)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9187", "address for /metrics")
	fs.StringVar(&o.poolName, "pool", "", `if set, label every series pool="<name>" (to tell several pools apart)`)
	fs.DurationVar(&o.duration, "duration", 0, "serve this long, then exit (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "metrics: unexpected arguments %q\n", fs.Args())
		return o, errUsage
	}
	if o.dsn == "" {
		o.dsn = excmd.LocalDSNs[o.driver]
	}
	if o.dsn == "" {
		fmt.Fprintf(stderr, "metrics: -driver %s needs -dsn\n", o.driver)
		return o, errUsage
	}
	if o.duration < 0 {
		fmt.Fprintln(stderr, "metrics: -duration is negative")
		return o, errUsage
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var labels prometheus.Labels
	if o.poolName != "" {
		labels = prometheus.Labels{"pool": o.poolName}
	}

	events := newEventCounter(labels)
	p, err := excmd.OpenChecked(ctx, o.driver, o.dsn, pool.Config{OnEvent: events.observe})
	if err != nil {
		return err // never carries the DSN's password
	}
	defer p.Close()

	reg, err := newRegistry(p, events, labels)
	if err != nil {
		return err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fmt.Fprintf(stdout, "serving http://%s/metrics (SIGHUP resets the pool)\n", ln.Addr())

	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		case err := <-served:
			return err
		case <-hup:
			p.Reset("SIGHUP")
		case <-tick.C:
			if status, _ := excmd.Query(ctx, p); status != "ok" && ctx.Err() == nil {
				fmt.Fprintln(stderr, "metrics: workload query:", status)
			}
		}
	}
}
