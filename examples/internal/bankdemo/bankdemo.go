// Package bankdemo is the program examples/pgx and examples/mysql share:
// the drop-in, pool events, a money transfer with RunTx and its retry
// rules, and tunnel events (from SIGUSR1/SIGUSR2 where there are signals).
// What differs per driver (the DSN, the SQL dialect, how a test loses a
// connection on purpose) is a Driver, written out in each command's
// main.go, so that is where to look to see what changes from one driver
// to another.
package bankdemo

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/flapguard/flapguard/examples/internal/excmd"
	"github.com/flapguard/flapguard/pool"
)

// Driver is everything the program needs to know about one driver.
type Driver struct {
	Name       string // pool.Open's driver name, also the command's name
	Server     string // for messages: "PostgreSQL", "MySQL"
	DSNEnv     string // environment variable that overrides DefaultDSN
	DefaultDSN string
	DSNHelp    string // what a DSN looks like, for -h
	// Where parses dsn and says where it points without the password
	// ("server: ..." line), and the address for "cannot reach".
	Where func(dsn string) (server, addr string, err error)

	// Schema creates flapguard_example_accounts (id, balance) and
	// flapguard_example_transfers (id, from_id, to_id, amount) and resets
	// both balances to 100.
	Schema []string
	// The statements of a transfer, in the driver's placeholder syntax:
	// InsertTransfer (id, amount), Debit and Credit (amount), and
	// CountTransfer (id).
	InsertTransfer, Debit, Credit, CountTransfer string

	// Demo only: how the transaction loses its connection on purpose.
	// LoseBeforeCommit makes the next statement on tx find its session
	// gone. LoseAtCommit, run just before RunTx commits, makes COMMIT's
	// answer never come; nil when the Schema arranges that already (for
	// transfer ids starting with "doomed-").
	LoseBeforeCommit func(ctx context.Context, db *sql.DB, tx *sql.Tx) error
	LoseAtCommit     func(ctx context.Context, db *sql.DB, tx *sql.Tx) error
}

// Run is the whole program for d. It runs to completion in a few seconds
// against a reachable server.
func Run(ctx context.Context, d Driver, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(d.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", excmd.EnvOr(d.DSNEnv, d.DefaultDSN), d.DSNHelp+" (default $"+d.DSNEnv+" or the local test server)")
	hold := fs.Duration("hold", 0, "after the demo, keep querying this long"+holdHelp)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return excmd.ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", d.Name, fs.Args())
		return excmd.ErrUsage
	}
	server, addr, err := d.Where(*dsn)
	if err != nil {
		fmt.Fprintf(stderr, "%s: bad -dsn: %v\n", d.Name, err)
		return excmd.ErrUsage
	}
	out := &excmd.SyncWriter{W: stdout}
	fmt.Fprintf(out, "server: %s\n", server)

	p, err := pool.Open(d.Name, *dsn, pool.Config{
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
		return fmt.Errorf("cannot reach %s at %s: %w", d.Server, addr, err)
	}

	// A toy tunnel monitor: SIGUSR1 reports the tunnel down, SIGUSR2 up.
	// Real deployments use a feed: detect/syslogfeed, detect/webhookfeed, or
	// detect/natsfeed for a fleet (see examples/fleet).
	mon := startMonitor(p, out)
	defer mon.stop()

	b := bank{d: d, db: db, p: p, out: out}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"schema", b.setup},
		{"transfer", b.plainTransfer},
		{"lost before COMMIT", b.lostBeforeCommit},
		{"lost during COMMIT", b.lostDuringCommit},
		{"tunnel flap", func(ctx context.Context) error { return tunnelFlap(ctx, p, mon, out) }},
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
		holdOn(ctx, p, *hold, out)
	}
	s := p.Stats()
	fmt.Fprintf(out, "== done: generation %d, resets %d (severs %d), connections lost %d, tunnel events %d\n",
		s.Generation, s.Resets, s.Severs, s.ConnsLost, s.Events)
	return nil
}

// holdOn queries once a second for d, so the tunnel signals can be tried
// by hand.
func holdOn(ctx context.Context, p *pool.Pool, d time.Duration, out io.Writer) {
	fmt.Fprintf(out, "== holding for %v%s\n", d, holdHint())
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
		status, took := excmd.Query(ctx, p)
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(out, "query: %s in %v (state %s)\n", status, took, p.Stats().Health)
	}
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
