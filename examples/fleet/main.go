// Command fleet fans tunnel events out to every instance of a service over
// NATS (detect/natsfeed). Each instance subscribes its pool to one subject;
// whoever sees a tunnel flap (a syslog receiver, a webhook, an operator)
// announces it once, and every pool in the fleet severs or resets at the
// same moment instead of each finding out on its own.
//
//	go run ./examples/fleet                                   # an instance: local PostgreSQL, nats://127.0.0.1:4222
//	go run ./examples/fleet -tunnels aws-1,aws-2              # obey only these tunnels' events
//	go run ./examples/fleet -announce down -tunnel aws-1      # publish one event, then exit
//	go run ./examples/fleet -announce up -tunnel aws-1
//
// An instance queries once a second and prints what its pool does. An
// empty -tunnel announces to every tunnel ("*").
//
// Exit codes: 0 done, 1 NATS or the database could not be reached, 2 bad
// command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/natsfeed"
	"github.com/flapguard/flapguard/examples/internal/excmd"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
	_ "github.com/flapguard/flapguard/pool/mysqladapter" // "mysql" with full socket control
	_ "github.com/flapguard/flapguard/pool/pgxadapter"   // "pgx" with full socket control
)

func main() { excmd.Main("fleet", run) }

// errUsage marks a bad command line (exit code 2); the message was printed.
var errUsage = excmd.ErrUsage

type options struct {
	natsURL, subject string
	// announce mode
	announce detect.State // 0: run an instance
	tunnel   string
	source   string
	// instance mode
	driver, dsn string
	tunnels     []string
	duration    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var announce, tunnels string
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.natsURL, "nats", excmd.EnvOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (default $NATS_URL or the local server)")
	fs.StringVar(&o.subject, "subject", "flapguard.tunnels", "NATS subject the fleet shares")
	fs.StringVar(&announce, "announce", "", "publish one event (down, up or rekey) and exit, instead of running an instance")
	fs.StringVar(&o.tunnel, "tunnel", "", `with -announce: the tunnel id ("" = every tunnel)`)
	fs.StringVar(&o.source, "source", "", `with -announce: where the event comes from (default "announce@<hostname>")`)
	fs.StringVar(&o.driver, "driver", "pgx", "instance: pool.Open driver name (pgx, mysql, sqlserver)")
	fs.StringVar(&o.dsn, "dsn", "", "instance: DSN (default: the local test server for pgx and mysql)")
	fs.StringVar(&tunnels, "tunnels", "", "instance: comma-separated tunnel ids this pool obeys (default: all)")
	fs.DurationVar(&o.duration, "duration", 0, "instance: run this long, then exit (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	usage := func(format string, a ...any) (options, error) {
		fmt.Fprintf(stderr, "fleet: "+format+"\n", a...)
		return o, errUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if o.subject == "" || strings.ContainsAny(o.subject, " \t\r\n") {
		return usage("-subject %q is not a NATS subject", o.subject)
	}
	if announce != "" {
		st, err := detect.ParseState(announce)
		if err != nil {
			return usage("-announce: %v", err)
		}
		o.announce = st
		if err := (detect.Event{Tunnel: o.tunnel, State: st}).Validate(); err != nil {
			return usage("-tunnel: %v", err)
		}
		if o.source == "" {
			host, _ := os.Hostname()
			o.source = "announce@" + host
		}
		return o, nil
	}
	if o.tunnel != "" || o.source != "" {
		return usage("-tunnel and -source go with -announce (an instance takes -tunnels)")
	}
	for t := range strings.SplitSeq(tunnels, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.tunnels = append(o.tunnels, t)
		}
	}
	if o.dsn == "" {
		o.dsn = excmd.LocalDSNs[o.driver]
	}
	if o.dsn == "" {
		return usage("-driver %s needs -dsn", o.driver)
	}
	if o.duration < 0 {
		return usage("-duration is negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	out := &excmd.SyncWriter{W: stdout}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	nc, err := natsfeed.Connect(o.natsURL, logger)
	if err != nil {
		return err
	}
	defer nc.Close()

	if o.announce != 0 {
		ev := detect.Event{Tunnel: o.tunnel, State: o.announce, At: time.Now(), Source: o.source}
		if err := natsfeed.Publish(nc, o.subject, ev); err != nil {
			return err
		}
		// Publish only buffers; wait until the server has the event.
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			return fmt.Errorf("publish to %s: %w", nc.ConnectedUrlRedacted(), err)
		}
		fmt.Fprintf(out, "announced on %s: %s\n", o.subject, ev)
		return nil
	}
	return instance(ctx, o, nc, out, logger)
}

// instance runs one member of the fleet: a pool, subscribed to the fleet's
// subject, with a light workload so its reaction shows.
func instance(ctx context.Context, o options, nc *nats.Conn, out io.Writer, logger *slog.Logger) error {
	p, err := excmd.OpenChecked(ctx, o.driver, o.dsn, pool.Config{
		Tunnels: o.tunnels,
		OnEvent: func(ev pool.Event) { fmt.Fprintln(out, "  event:", ev) },
	})
	if err != nil {
		return err
	}
	defer p.Close()

	// The pool is the Notifier; Multi adds a line per received event. More
	// pools of the same process would be listed here too.
	heard := detect.NotifierFunc(func(ev detect.Event) { fmt.Fprintln(out, "received:", ev) })
	sub, err := natsfeed.Subscribe(nc, o.subject, detect.Multi(heard, p), natsfeed.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	// Make sure the server has the subscription before saying so.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return err
	}
	obeys := "every tunnel"
	if len(o.tunnels) > 0 {
		obeys = strings.Join(o.tunnels, ", ")
	}
	fmt.Fprintf(out, "subscribed to %s on %s; obeying %s\n", o.subject, nc.ConnectedUrlRedacted(), obeys)

	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s := sub.Stats()
			fmt.Fprintf(out, "done: %d events received, %d applied by the pool, %d ignored\n", s.Events, p.Stats().Events, p.Stats().EventsIgnored)
			return nil
		case <-tick.C:
		}
		status, took := excmd.Query(ctx, p)
		if ctx.Err() != nil {
			continue
		}
		fmt.Fprintf(out, "query: %s in %v (state %s, generation %d)\n", status, took, p.Stats().Health, p.Stats().Generation)
	}
}
