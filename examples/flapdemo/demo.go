package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql"  // "mysql" for the plain run with -dsn mysql:// or -server mysql
	_ "github.com/microsoft/go-mssqldb" // "sqlserver" for the plain run (full.go adds "pgx")

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/faultproxy"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
	_ "github.com/flapguard/flapguard/pool/mysqladapter" // full socket control for "mysql"
)

const (
	connectTimeout = 5 * time.Second
	nameP          = "plain"
	nameF          = "flapguard"
)

// side is one of the two runs.
type side struct {
	name  string
	db    *sql.DB
	pool  *pool.Pool        // nil for the plain run
	proxy *faultproxy.Proxy // nil with -dsn
	rec   *recorder
	done  *sync.WaitGroup
}

// result is the demo's machine-readable output (-json).
type result struct {
	Scenario    string        `json:"scenario,omitempty"`
	Server      string        `json:"server"`
	Duration    time.Duration `json:"duration_ns"`
	Workers     int           `json:"workers"`
	Deadline    time.Duration `json:"deadline_ns"`
	Events      bool          `json:"events"`
	Steps       []jsonStep    `json:"steps,omitempty"`
	timed       []timedStep
	Up          time.Duration `json:"up_ns"` // -1: no scripted faults
	Interrupted bool          `json:"interrupted"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Runs        []summary     `json:"runs"`
}

type jsonStep struct {
	At    time.Duration `json:"at_ns"`
	Label string        `json:"label"`
}

// run is the whole demo; main only adds the signal handling and exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		// err is "usage: <what is wrong>"; say what is wrong.
		fmt.Fprintf(stderr, "flapdemo: %v\n", o.redact(strings.TrimPrefix(err.Error(), errUsage.Error()+": ")))
		return 2
	}
	res, sides, err := o.execute(ctx, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "flapdemo: %s\n", oneLine(o.redact(err.Error())))
		return 1
	}
	_ = sides
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "flapdemo: %v\n", err)
			return 1
		}
	} else {
		printReport(stdout, res, o.verbose)
	}
	if o.plot != "" {
		if err := writePlot(o.plot, res, sides); err != nil {
			fmt.Fprintf(stderr, "flapdemo: plot: %v\n", err)
			return 1
		}
		if !o.json {
			fmt.Fprintf(stdout, "plot written to %s\n", o.plot)
		}
	}
	if res.Interrupted {
		return 130
	}
	return 0
}

func printReport(w io.Writer, res result, verbose bool) {
	fmt.Fprintln(w)
	if res.Interrupted {
		fmt.Fprintf(w, "INTERRUPTED after %.1fs: partial results\n", res.Elapsed.Seconds())
	}
	hasUp := res.Up >= 0
	writeTable(w, tableRows(res.Runs, hasUp, res.Deadline))
	fmt.Fprintln(w)
	for _, s := range res.Runs {
		fmt.Fprintf(w, "%-10s %s\n", s.Name+":", sayRun(s, hasUp))
	}
	if !hasUp {
		fmt.Fprintln(w, "-dsn: no faults were injected; any failure above came from the real network.")
	}
	if !verbose {
		return
	}
	for _, s := range res.Runs {
		msgs := slices.Sorted(maps.Keys(s.Errors))
		for _, msg := range msgs {
			fmt.Fprintf(w, "  %-9s %4d × %s\n", s.Name, s.Errors[msg], strings.ReplaceAll(msg, "\n", "; "))
		}
	}
}

// sayRun is a run's outcome in plain words.
func sayRun(s summary, hasUp bool) string {
	bad := s.Failed + s.Hung
	out := fmt.Sprintf("%d of %d requests failed", bad, s.Requests)
	switch {
	case s.Hung == 0:
	case s.Hung == bad && bad == 1:
		out += " (it hung)"
	case s.Hung == bad:
		out += fmt.Sprintf(" (all %d hung)", bad)
	default:
		out += fmt.Sprintf(" (%d of them hung)", s.Hung)
	}
	if s.Abandoned > 0 {
		out += fmt.Sprintf("; %s still stuck when the run ended", plural(s.Abandoned, "was", "were"))
	}
	if !hasUp {
		return out + "."
	}
	if s.Back < 0 {
		return out + ", and it was not back by the end of the run."
	}
	return out + ", and it was back in " + fmtDur(s.Back) + " (from its first request after UP)."
}

// execute sets up the server, proxies and pools, runs both workloads under
// the scenario and tears everything down.
func (o *options) execute(ctx context.Context, stdout, stderr io.Writer) (result, []*side, error) {
	res := result{Duration: o.duration, Workers: o.workers, Deadline: o.deadline, Events: o.events, Up: -1}
	status := stdout
	if o.json {
		status = stderr
	}
	if o.quiet {
		status = io.Discard
	}

	var steps []timedStep
	var query string
	var queryArgs func() []any
	var plainDSN, poolDSN, driver string
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	var proxies [2]*faultproxy.Proxy
	if o.dsn == "" {
		srv, err := backends[o.server]()
		if err != nil {
			return res, nil, err
		}
		cleanup = append(cleanup, srv.close)
		for i := range proxies {
			p, err := faultproxy.New(srv.addr)
			if err != nil {
				return res, nil, err
			}
			proxies[i] = p
			cleanup = append(cleanup, func() { _ = p.Close() })
		}
		driver = srv.driver
		plainDSN, poolDSN = srv.dsn(proxies[0].Addr()), srv.dsn(proxies[1].Addr())
		query, queryArgs = srv.query, srv.args
		steps = schedule(scenarios[o.scenario], o.duration)
		res.timed = steps
		res.Scenario, res.Server, res.Up = o.scenario, srv.desc, upAt(steps)
		for _, s := range steps {
			res.Steps = append(res.Steps, jsonStep{At: s.At, Label: s.label})
		}
	} else {
		driver, plainDSN, poolDSN = o.driver, o.connStr, o.connStr
		query = "SELECT 1"
		queryArgs = func() []any { return nil }
		res.Server = o.driver + " (-dsn, no fault injection)"
	}

	plainDB, err := sql.Open(driver, plainDSN)
	if err != nil {
		return res, nil, fmt.Errorf("open %s: %w", driver, err)
	}
	// Every action of the flapguard pool is one line (narrator.event); the
	// pool may call it before the workload starts (t=-).
	nar := &narrator{w: status, verbose: o.verbose, redact: o.redact}
	cfg := pool.Config{OnEvent: nar.event}
	p, err := pool.Open(driver, poolDSN, cfg)
	if err != nil {
		_ = plainDB.Close()
		return res, nil, fmt.Errorf("open flapguard pool: %w", err)
	}
	// Closing a *sql.DB does not wait for requests in use, but a pool's
	// Close may; never let teardown hang the demo.
	cleanup = append(cleanup, func() { closeWithin(plainDB.Close, 3*time.Second) }, func() { closeWithin(p.Close, 3*time.Second) })

	sides := []*side{
		{name: nameP, db: plainDB, proxy: proxies[0]},
		{name: nameF, db: p.DB(), pool: p, proxy: proxies[1]},
	}
	// The same pool sizing on both sides: a typical application pool sized
	// to its workers, keeping its connections between requests.
	for _, s := range sides {
		s.db.SetMaxOpenConns(o.workers)
		s.db.SetMaxIdleConns(o.workers)
		pctx, cancel := context.WithTimeout(ctx, connectTimeout)
		err := s.db.PingContext(pctx)
		cancel()
		if err != nil {
			where := "the embedded server"
			if o.dsn != "" {
				where = "the -dsn server"
			}
			return res, nil, fmt.Errorf("%s run: cannot reach %s: %w", s.name, where, err)
		}
	}

	printLegend(status, *o, res.Server, steps)
	if o.verbose {
		fmt.Fprintf(status, "server: %s\n", res.Server)
	}

	// Both runs go at the same time, on one clock: they see identical fault
	// timing (each through its own proxy, switched at the same instant),
	// and the demo takes half the wall time. They share the server and the
	// CPU, equally; the query is tiny, so neither is the bottleneck.
	t0 := time.Now()
	nar.start(t0)
	stop := make(chan struct{})
	stopWatch := make(chan struct{})
	var watchers []*watcher
	var watched []<-chan struct{}
	for _, s := range sides {
		s.rec = newRecorder(t0, o.workers)
		w := &workload{db: s.db, query: query, args: queryArgs, deadline: o.deadline, think: o.think, rec: s.rec, redact: o.redact}
		if len(steps) > 0 {
			w.idle = func(t time.Duration) bool { return quietAt(o.scenario, o.duration, t) }
		}
		s.done = w.run(stop, o.workers)
		wt := newWatcher(s.name, s.rec, o.deadline, nar)
		watchers = append(watchers, wt)
		watched = append(watched, wt.watch(stopWatch))
	}

	end := time.NewTimer(o.duration)
	defer end.Stop()
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	next := 0
	var stepTimer <-chan time.Time
	armStep := func() {
		if next < len(steps) {
			stepTimer = time.After(time.Until(t0.Add(steps[next].At)))
		} else {
			stepTimer = nil
		}
	}
	armStep()
loop:
	for {
		select {
		case <-ctx.Done():
			res.Interrupted = true
			break loop
		case <-end.C:
			break loop
		case <-stepTimer:
			st := steps[next]
			for _, s := range sides {
				st.fault.apply(s.proxy)
			}
			if o.events {
				p.Notify(detect.Event{Tunnel: detect.AllTunnels, State: st.event, Source: "flapdemo"})
			}
			nar.line(time.Since(t0), "tunnel", st.label)
			next++
			armStep()
		case <-tick.C:
			// No status line at the very end: the table follows.
			if now := time.Since(t0); now < o.duration-statusEvery/4 {
				for _, wt := range watchers {
					wt.flush()
				}
				nar.line(now, "status", statusLine(now, sides, hangThreshold(o.deadline)))
			}
		}
	}
	close(stop)
	for _, wt := range watchers {
		wt.flush()
	}
	if !res.Interrupted {
		nar.line(time.Since(t0), "end", fmt.Sprintf("no new requests; waiting up to %s for those in flight", fmtDur(grace(o.deadline))))
	}

	// Give requests in flight their deadline (plus a second) to finish;
	// with no deadline, one second. Whatever is still running then is
	// hung: record it as abandoned, and unblock its worker by closing the
	// path (the proxies), so the demo always ends.
	wait := grace(o.deadline)
	if res.Interrupted {
		wait = 200 * time.Millisecond
	}
	waitAll(sides, wait)
	res.Elapsed = time.Since(t0)
	for _, s := range sides {
		s.rec.abandon(res.Elapsed)
	}
	close(stopWatch)
	for _, d := range watched {
		<-d
	}
	nar.flush()
	for _, s := range sides {
		if s.proxy != nil {
			_ = s.proxy.Close()
		}
	}
	if o.dsn == "" {
		waitAll(sides, 5*time.Second) // the proxies are closed: every worker returns
	}
	for _, s := range sides {
		res.Runs = append(res.Runs, summarize(s.name, s.rec.snapshot(), res.Up, o.deadline))
	}
	return res, sides, nil
}

// grace is how long requests in flight at the end get to return: their
// deadline plus a second, or one second with none.
func grace(deadline time.Duration) time.Duration {
	return deadline + time.Second
}

func fmtDeadline(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}

// waitAll waits up to d for every side's workers to return.
func waitAll(sides []*side, d time.Duration) {
	done := make(chan struct{})
	go func() {
		for _, s := range sides {
			s.done.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func closeWithin(f func() error, d time.Duration) {
	done := make(chan struct{})
	go func() {
		_ = f()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// oneLine folds a multi-line error (pgx lists every address it tried) into
// one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ; ")), " ")
}
