// Command pgx shows flapguard with PostgreSQL through pgx's database/sql
// driver: the drop-in, pool events, a money transfer with RunTx and its
// retry rules, and tunnel events (here from SIGUSR1/SIGUSR2).
//
//	go run ./examples/pgx                     # local server: postgres@127.0.0.1:5432/test
//	go run ./examples/pgx -dsn 'postgres://app:pw@db.example:5432/app'
//	go run ./examples/pgx -hold 1m            # then: kill -USR1 <pid> (DOWN), kill -USR2 <pid> (UP)
//
// It runs to completion in a few seconds against a reachable server. It
// creates the tables flapguard_example_accounts and
// flapguard_example_transfers (and a demo trigger) in the target database,
// so point it at a scratch database.
//
// Exit codes: 0 done, 1 the server could not be reached or a step failed,
// 2 bad command line.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/pgxadapter" // registers "pgx" with full socket control
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "pgx:", err)
		os.Exit(1)
	}
}

// errUsage marks a bad command line (exit code 2); the message was printed.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pgx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", envOr("PG_DSN", defaultDSN), "pgx DSN (URL or key=value; default $PG_DSN or the local test server)")
	hold := fs.Duration("hold", 0, "after the demo, keep querying this long so you can send SIGUSR1 (DOWN) and SIGUSR2 (UP)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pgx: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	pc, err := pgx.ParseConfig(*dsn)
	if err != nil {
		// pgx's parse errors redact the password themselves.
		fmt.Fprintln(stderr, "pgx: bad -dsn:", err)
		return errUsage
	}
	out := &syncWriter{w: stdout}
	// Print where we go without the password: from the parsed config.
	fmt.Fprintf(out, "server: %s@%s:%d/%s\n", pc.User, pc.Host, pc.Port, pc.Database)

	p, err := pool.Open("pgx", *dsn, pool.Config{
		// Called on the goroutine that caused the event, outside the
		// pool's locks: keep it quick.
		OnEvent: func(ev pool.Event) { fmt.Fprintln(out, "  event:", ev) },
	})
	if err != nil {
		return err
	}
	defer p.Close()
	db := p.DB()

	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = db.PingContext(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL at %s:%d: %w", pc.Host, pc.Port, err)
	}

	// A toy tunnel monitor: SIGUSR1 reports the tunnel down, SIGUSR2 up.
	// Real deployments use a feed: detect/syslogfeed, detect/webhookfeed, or
	// detect/natsfeed for a fleet (see examples/fleet).
	stopSignals := notifyOnSignals(p, out)
	defer stopSignals()

	b := bank{db: db, p: p, out: out}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"schema", b.setup},
		{"transfer", b.plainTransfer},
		{"lost before COMMIT", b.lostBeforeCommit},
		{"lost during COMMIT", b.lostDuringCommit},
		{"tunnel flap", func(ctx context.Context) error { return tunnelFlap(ctx, p, out) }},
	}
	for _, s := range steps {
		fmt.Fprintf(out, "== %s\n", s.name)
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := s.f(sctx)
		if err == nil {
			// Some steps break connections on purpose: let the pool's
			// prober finish reacting (back to healthy) before the next.
			err = waitFor(sctx, func() bool { return p.Stats().Health == pool.Healthy })
		}
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if *hold > 0 {
		holdOn(ctx, db, p, *hold, out)
	}
	s := p.Stats()
	fmt.Fprintf(out, "== done: generation %d, resets %d (severs %d), connections lost %d, tunnel events %d\n",
		s.Generation, s.Resets, s.Severs, s.ConnsLost, s.Events)
	return nil
}

// notifyOnSignals turns SIGUSR1/SIGUSR2 into tunnel DOWN/UP events for p.
// The returned func stops it and waits for its goroutine.
func notifyOnSignals(p *pool.Pool, out io.Writer) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				ev := detect.Event{Tunnel: detect.AllTunnels, State: detect.Up, Source: "signal:" + sig.String()}
				if sig == syscall.SIGUSR1 {
					ev.State = detect.Down
				}
				fmt.Fprintln(out, "  signal:", sig, "->", ev)
				p.Notify(ev) // never blocks; applied by the pool's event goroutine
			}
		}
	})
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}

// tunnelFlap sends this process SIGUSR1 (DOWN), shows a request waiting at
// the pool's gate instead of failing, then SIGUSR2 (UP) releases it.
//
// The server stays reachable through this toy DOWN, and the pool's prober
// reopens the gate by itself when a fresh connection succeeds while a DOWN
// is in force (a DOWN the path contradicts does not hold the pool for
// ever; against a really dead tunnel the probes fail and only UP or a
// successful probe opens it). So the flap starts just after a probe round
// and ends well before the next one (ProbeInterval, 1s ±20%), and the
// output says who opened the gate.
func tunnelFlap(ctx context.Context, p *pool.Pool, out io.Writer) error {
	if err := waitFor(ctx, func() bool { return p.Stats().Health == pool.Healthy }); err != nil {
		return fmt.Errorf("pool did not settle after the earlier steps: %w", err)
	}
	time.Sleep(100 * time.Millisecond) // a prober wake-up queued by the earlier failures runs now
	events := p.Stats().Events
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool { return p.Stats().TunnelDown }); err != nil {
		return fmt.Errorf("DOWN not applied: %w", err)
	}
	fmt.Fprintln(out, "tunnel down: old connections severed, new ones wait up to Config.DownWait (5s)")

	type result struct {
		took time.Duration
		err  error
	}
	res := make(chan result, 1)
	go func() {
		start := time.Now()
		var one int
		err := p.DB().QueryRowContext(ctx, "SELECT 1").Scan(&one)
		res <- result{time.Since(start), err}
	}()
	time.Sleep(200 * time.Millisecond) // let the request reach the gate
	opener := "UP"
	if !p.Stats().TunnelDown {
		opener = "the prober (the path answered)"
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		return err
	}
	r := <-res
	if err := waitFor(ctx, func() bool { return p.Stats().Events >= events+2 }); err != nil {
		return fmt.Errorf("UP not applied: %w", err)
	}
	if r.err != nil {
		return fmt.Errorf("query across the flap: %w", r.err)
	}
	fmt.Fprintf(out, "a query issued while down took %v: it waited at the gate instead of failing; opened by %s\n",
		r.took.Round(10*time.Millisecond), opener)
	return nil
}

// holdOn queries once a second for d, so SIGUSR1/SIGUSR2 can be tried by
// hand.
func holdOn(ctx context.Context, db *sql.DB, p *pool.Pool, d time.Duration, out io.Writer) {
	fmt.Fprintf(out, "== holding for %v: kill -USR1 %d (DOWN), kill -USR2 %d (UP)\n", d, os.Getpid(), os.Getpid())
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		var one int
		err := db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
		qcancel()
		if ctx.Err() != nil {
			return
		}
		status := "ok"
		if err != nil {
			status = err.Error()
		}
		fmt.Fprintf(out, "query: %s in %v (state %s)\n", status, time.Since(start).Round(time.Millisecond), p.Stats().Health)
	}
}

// bank moves money between two rows of flapguard_example_accounts. Each
// transfer has a client-generated id, recorded in the same transaction, so
// that after ErrOutcomeUnknown the program can find out what happened.
type bank struct {
	db  *sql.DB
	p   *pool.Pool
	out io.Writer
}

func (b bank) setup(ctx context.Context) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS flapguard_example_accounts (id int PRIMARY KEY, balance int NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS flapguard_example_transfers (id text PRIMARY KEY, from_id int NOT NULL, to_id int NOT NULL, amount int NOT NULL)`,
		`INSERT INTO flapguard_example_accounts VALUES (1, 100), (2, 100) ON CONFLICT (id) DO UPDATE SET balance = 100`,
		// Demo only: a deferred trigger that ends its own session at
		// COMMIT for transfers whose id starts with "doomed-", so the
		// connection is lost while COMMIT is in flight.
		`CREATE OR REPLACE FUNCTION flapguard_example_die_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_terminate_backend(pg_backend_pid());
			PERFORM pg_sleep(5); -- the termination lands here
			RETURN NULL;
		END $$`,
		`DROP TRIGGER IF EXISTS flapguard_example_die_at_commit ON flapguard_example_transfers`,
		`CREATE CONSTRAINT TRIGGER flapguard_example_die_at_commit AFTER INSERT ON flapguard_example_transfers
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id LIKE 'doomed-%')
			EXECUTE FUNCTION flapguard_example_die_at_commit()`,
	} {
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return b.printBalances(ctx)
}

// transfer moves amount from account 1 to 2 as transfer id. beforeCommit,
// if set, runs inside the transaction after the updates (the demos use it
// to lose the connection).
func (b bank) transfer(ctx context.Context, id string, amount int, beforeCommit func(context.Context, *sql.Tx, int) error) (attempts int, err error) {
	err = b.p.RunTx(ctx, pool.RetryPolicy{}, nil, func(ctx context.Context, tx *sql.Tx) error {
		attempts++
		if _, err := tx.ExecContext(ctx, `INSERT INTO flapguard_example_transfers VALUES ($1, 1, 2, $2)`, id, amount); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE flapguard_example_accounts SET balance = balance - $1 WHERE id = 1`, amount); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE flapguard_example_accounts SET balance = balance + $1 WHERE id = 2`, amount); err != nil {
			return err
		}
		if beforeCommit != nil {
			return beforeCommit(ctx, tx, attempts)
		}
		return nil
	})
	return attempts, err
}

func (b bank) plainTransfer(ctx context.Context) error {
	n, err := b.transfer(ctx, newID("t"), 10, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "transfer committed on attempt %d\n", n)
	return b.printBalances(ctx)
}

// lostBeforeCommit: the first attempt's session is terminated before
// COMMIT. The transaction cannot have committed, so RunTx retries it on a
// new connection, even with the zero RetryPolicy.
func (b bank) lostBeforeCommit(ctx context.Context) error {
	n, err := b.transfer(ctx, newID("t"), 10, func(ctx context.Context, tx *sql.Tx, attempt int) error {
		if attempt > 1 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `SELECT pg_terminate_backend(pg_backend_pid()), pg_sleep(5)`)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "transfer committed on attempt %d (the first lost its connection before COMMIT)\n", n)
	return b.printBalances(ctx)
}

// lostDuringCommit: the session ends while COMMIT runs. The server may or
// may not have committed; RunTx does not guess, it returns
// ErrOutcomeUnknown after one attempt, and the program checks by id.
func (b bank) lostDuringCommit(ctx context.Context) error {
	id := newID("doomed")
	n, err := b.transfer(ctx, id, 10, nil)
	if !errors.Is(err, pool.ErrOutcomeUnknown) {
		return fmt.Errorf("want ErrOutcomeUnknown, got %v", err)
	}
	fmt.Fprintf(b.out, "COMMIT lost on attempt %d: errors.Is(err, pool.ErrOutcomeUnknown) = true, not retried\n", n)
	fmt.Fprintf(b.out, "  err: %v\n", err)
	var found int
	err = b.read(ctx, func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, `SELECT count(*) FROM flapguard_example_transfers WHERE id = $1`, id).Scan(&found)
	})
	if err != nil {
		return err
	}
	if found == 0 {
		fmt.Fprintln(b.out, "checked by transfer id: not committed, safe to run again")
	} else {
		fmt.Fprintln(b.out, "checked by transfer id: committed, do not run again")
	}
	return b.printBalances(ctx)
}

// read runs a read with RunConn. A read may safely run twice, so its
// policy is Idempotent: if its connection is lost mid-query (the prober
// severs old connections after the losses these demos cause on purpose),
// it is retried on a fresh one instead of failing.
func (b bank) read(ctx context.Context, fn func(context.Context, *sql.Conn) error) error {
	return b.p.RunConn(ctx, pool.RetryPolicy{Idempotent: true}, fn)
}

func (b bank) printBalances(ctx context.Context) error {
	var a, c int
	err := b.read(ctx, func(ctx context.Context, conn *sql.Conn) error {
		return conn.QueryRowContext(ctx, `SELECT
			(SELECT balance FROM flapguard_example_accounts WHERE id = 1),
			(SELECT balance FROM flapguard_example_accounts WHERE id = 2)`).Scan(&a, &c)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "balances: account 1 = %d, account 2 = %d\n", a, c)
	return nil
}

func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func newID(prefix string) string { return prefix + "-" + rand.Text()[:12] }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// syncWriter serialises writes: OnEvent runs on the pool's goroutines.
type syncWriter struct {
	mu sync.Mutex // protects w
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
