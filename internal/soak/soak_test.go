//go:build linux

package soak

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/internal/lab"
	"github.com/flapguard/flapguard/pool"
)

var (
	flagDuration    = flag.Duration("soak.duration", 120*time.Second, "how long TestSoak injects faults under load")
	flagWorkers     = flag.Int("soak.workers", 64, "TestSoak workers per server")
	flagSeed        = flag.Uint64("soak.seed", 0, "seed of the fault schedule and the workload mix; 0 picks one (printed)")
	flagTDSDuration = flag.Duration("soak.tds.duration", 20*time.Second, "how long TestSoakTDS injects faults under load")
	flagTDSWorkers  = flag.Int("soak.tds.workers", 16, "TestSoakTDS workers")
	flagBroken      = flag.String("soak.broken", "", `deliberately broken caller, to prove the soak fails: "retry-unknown" re-runs inserts that failed with pool.ErrOutcomeUnknown. Never set it in CI`)
)

// Timings of the end of a run.
const (
	workersGrace  = 45 * time.Second // a request without deadline may wait out TCP_USER_TIMEOUT (15s) and keepalive (45s)
	settleTimeout = 20 * time.Second // pools drop dead conns and reap orphans
	leakTimeout   = 10 * time.Second
)

// params are the validated flags.
type params struct {
	duration time.Duration
	workers  int
	seed     uint64
	broken   string
}

func flags(t *testing.T, duration time.Duration, workers int) params {
	t.Helper()
	if duration <= 0 || workers <= 0 {
		t.Fatalf("soak: duration %v and workers %d must be positive", duration, workers)
	}
	if *flagBroken != "" && *flagBroken != brokenRetryUnknown {
		t.Fatalf("soak: -soak.broken=%q: the only broken variant is %q", *flagBroken, brokenRetryUnknown)
	}
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64()>>1 + 1
	}
	return params{duration: duration, workers: workers, seed: seed, broken: *flagBroken}
}

// TestSoak runs PostgreSQL and MariaDB side by side in one lab under one
// fault schedule, each behind its own flapguard pool with its own workers,
// and checks the invariants of the package doc on both.
func TestSoak(t *testing.T) {
	lab.Require(t)
	prm := flags(t, *flagDuration, *flagWorkers)
	t.Logf("soak: seed %d (replay with -soak.seed %d), %d workers per server, %v of faults", prm.seed, prm.seed, prm.workers, prm.duration)
	if prm.broken != "" {
		t.Logf("soak: BROKEN VARIANT %q: this run is expected to fail", prm.broken)
	}
	l := lab.New(t)
	pg, my := startServers(t, l)
	targets := []*target{postgresTarget(l, pg), mariadbTarget(t, l, my)}
	adminConns := 0
	for _, tg := range targets {
		tg.createSchema(t)
		adminConns += tg.admin().Stats().OpenConnections
	}
	base, err := takeBaseline(adminConns)
	if err != nil {
		t.Fatal(err)
	}
	sched := &scheduler{l: l, killed: make(map[int]time.Time), rng: rand.New(rand.NewPCG(prm.seed, 0)), gapLo: time.Second, gapHi: 5 * time.Second, overlap: 250,
		servers: []restartable{{"postgres", pg.Restart}, {"mariadb", my.Restart}},
		logf:    t.Logf, start: time.Now()}
	for _, tg := range targets {
		tg.open(t, l, sched.start)
	}
	sched.pools = []*pool.Pool{targets[0].p, targets[1].p}

	w := workload{workers: prm.workers, broken: prm.broken, mix: [3]int{300, 650, 980}, noDeadline: 80,
		thinkLo: 10 * time.Millisecond, thinkHi: 40 * time.Millisecond,
		longLo: 500 * time.Millisecond, longHi: 3 * time.Second, slowInserts: 50, transfers: true}
	logs := soak(t, sched, targets, w, prm)
	defer healOnFailure(t, sched)
	end := time.Now()
	ws := sched.allWindows()
	t.Log(windowList(ws, sched.start))

	// Invariant 5: sessions, after settling.
	var v violations
	results := make([]result, len(targets))
	for i, tg := range targets {
		probs, took := settle(settleTimeout, func(ctx context.Context) ([]string, error) {
			return sessionProblems(ctx, tg.sessions, tg.socks, tg.p.DB().Stats().OpenConnections, maxOpenConns,
				func(port int) string { return sched.explainPort(tg, port) })
		}, func(probs []string) {
			t.Logf("%s: settling: at first %s", tg.d.name, strings.Join(probs, "; "))
		})
		for _, p := range probs {
			v.add("5 sessions after settling ("+tg.d.name+")", "%s", p)
		}
		if len(probs) > 0 {
			t.Logf("%s: the pool's orphan reaping: %s", tg.d.name, strings.Join(tg.events.reaps(sched.start), "; "))
		}
		if w := tg.warns.all(); len(w) > 0 {
			t.Logf("%s: pool warnings (%d): %s", tg.d.name, len(w), strings.Join(w[:min(len(w), 30)], "; "))
		}
		results[i] = result{name: tg.d.name, ops: flatten(logs[i]), events: tg.events, settle: took}
	}
	// Invariants 1-4: the data, over the fault-free admin path.
	for i, tg := range targets {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		seen, rows, balances, err := loadSQLState(ctx, tg.admin())
		cancel()
		if err != nil {
			t.Fatalf("%s: reading the tables: %v", tg.d.name, err)
		}
		var bad []string
		for _, lg := range logs[i] {
			bad = append(bad, lg.badReads...)
		}
		var tv violations
		checkInserts(&tv, &results[i].data, results[i].ops, seen, sched.start, ws)
		checkLedger(&tv, &results[i].data, results[i].ops, rows, balances, bad, sched.start, ws)
		for _, inv := range tv.order {
			for _, line := range tv.by[inv] {
				v.add(inv+" ("+tg.d.name+")", "%s", line)
			}
		}
		results[i].stats = tg.p.Stats()
	}
	t.Log(summary(results, ws, sched.counts, end.Sub(sched.start)) + topErrors(results, 12))
	for _, tg := range targets {
		for _, s := range staleSevers(tg, ws, sched.start) {
			t.Logf("sever outside every fault window: %s", s)
		}
	}
	for _, r := range results {
		for _, f := range failuresOutside(r, ws, sched.start, 8) {
			t.Logf("failed outside every fault window: %s", f)
		}
	}
	// Issue 16: on a busy machine with no fault in force, liveness checks
	// must not fail falsely (≤ 1% of checks) and the pool must not reset.
	for i, tg := range targets {
		live, resets := quietHarm(tg, ws, sched.start)
		checks := results[i].stats.LivenessChecks
		t.Logf("%s: outside every fault window (+%v grace): %d liveness failures of %d checks (%.2f%%), %d resets",
			tg.d.name, quietGrace, len(live), checks, 100*float64(len(live))/float64(max(checks, 1)), len(resets))
		for _, l := range append(live, resets...) {
			t.Logf("  %s", l)
		}
		if float64(len(live)) > 0.01*float64(checks) {
			v.add("6 quiet liveness ("+tg.d.name+")", "%d of %d liveness checks failed outside every fault window; bound 1%%", len(live), checks)
		}
		if len(resets) > 0 {
			v.add("6 quiet resets ("+tg.d.name+")", "%d resets outside every fault window; bound 0", len(resets))
		}
	}

	// Close the pools: every session must go, then goroutines and fds.
	for _, tg := range targets {
		if err := tg.p.Close(); err != nil {
			t.Errorf("%s: Close: %v", tg.d.name, err)
		}
	}
	for _, tg := range targets {
		probs, _ := settle(10*time.Second, func(ctx context.Context) ([]string, error) {
			ss, err := tg.sessions(ctx)
			if len(ss) > 0 {
				return []string{fmt.Sprintf("%d server sessions of the app remain after Close: %v", len(ss), ss)}, err
			}
			return nil, err
		}, nil)
		for _, p := range probs {
			v.add("5 sessions after Close ("+tg.d.name+")", "%s", p)
		}
	}
	// The lab's admin pools are closed last: nothing uses them any more
	// (the servers' stop at cleanup closes them again, harmlessly).
	for _, tg := range targets {
		tg.admin().Close()
	}
	gerr, ferr := base.verify(leakTimeout)
	if gerr != nil {
		v.add("6 no goroutine leak", "%v", gerr)
	}
	if ferr != nil {
		v.add("7 fds back to the baseline", "%v", ferr)
	}
	if !v.empty() {
		t.Errorf("soak (seed %d) broke invariants:%s", prm.seed, v.String())
	}
}

// soak runs the workers of every target and the fault schedule for
// prm.duration, heals the lab, and waits for the workers.
func soak(t *testing.T, sched *scheduler, targets []*target, w workload, prm params) [][]*workerLog {
	stop := make(chan struct{})
	logs := make([][]*workerLog, len(targets))
	var wg sync.WaitGroup
	watchStop := make(chan struct{})
	var watchers sync.WaitGroup
	for _, tg := range targets {
		watchers.Go(func() { tg.socks.watch(watchStop) })
	}
	defer func() { close(watchStop); watchers.Wait() }()
	for i, tg := range targets {
		wl := w
		wl.seed = prm.seed + uint64(i+1)*1_000_003
		wg.Go(func() { logs[i] = runWorkers(tg, wl, stop) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), prm.duration)
	defer cancel()
	sched.run(ctx)
	if err := sched.heal(); err != nil {
		t.Errorf("healing the lab: %v", err)
	}
	t.Logf("soak: faults over and healed at +%v; stopping the workers", time.Since(sched.start).Round(time.Millisecond))
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(workersGrace):
		// Release whatever hangs, so the report below can be written.
		for _, tg := range targets {
			tg.p.Close()
		}
		<-done
		t.Errorf("soak (seed %d): workers still busy %v after the faults healed; pools closed to release them", prm.seed, workersGrace)
	}
	if err := sched.err(); err != nil {
		t.Errorf("soak (seed %d): injecting faults: %v", prm.seed, err)
	}
	return logs
}

func healOnFailure(t *testing.T, s *scheduler) {
	if t.Failed() {
		s.heal()
	}
}

func flatten(logs []*workerLog) []opRecord {
	var out []opRecord
	for _, l := range logs {
		out = append(out, l.ops...)
	}
	return out
}

// startServers starts PostgreSQL and MariaDB at once (their set-up is most
// of the lab's start-up time). The lab's Start* call t.Fatalf on failure;
// from another goroutine that ends only that goroutine and marks t failed,
// so the test goroutine checks t.Failed after both are done.
func startServers(t *testing.T, l *lab.Lab) (*lab.Postgres, *lab.MariaDB) {
	var pg *lab.Postgres
	var my *lab.MariaDB
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { pg = l.StartPostgres(t) })
	wg.Go(func() { my = l.StartMariaDB(t) })
	wg.Wait()
	if t.Failed() || pg == nil || my == nil {
		t.FailNow()
	}
	t.Logf("soak: both servers up in %v", time.Since(start).Round(time.Millisecond))
	return pg, my
}

// go-sql-driver/mysql logs every connection it closes after a read error
// (connection.go:190, packets.go:58) to its package logger, which writes to
// stderr: hundreds of lines per soak. The pool reports the same losses as
// EventConnLost, counted in the summary, so the driver's lines are dropped.
func init() {
	mysql.SetLogger(log.New(io.Discard, "", 0))
}
