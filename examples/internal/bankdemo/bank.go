package bankdemo

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/flapguard/flapguard/pool"
)

// bank moves money between two rows of flapguard_example_accounts. Each
// transfer has a client-generated id, recorded in the same transaction, so
// that after ErrOutcomeUnknown the program can find out what happened.
type bank struct {
	d   Driver
	db  *sql.DB
	p   *pool.Pool
	out io.Writer
}

func (b bank) setup(ctx context.Context) error {
	for _, q := range b.d.Schema {
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
		if _, err := tx.ExecContext(ctx, b.d.InsertTransfer, id, amount); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, b.d.Debit, amount); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, b.d.Credit, amount); err != nil {
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

// lostBeforeCommit: the first attempt's session ends before COMMIT. The
// transaction cannot have committed, so RunTx retries it on a new
// connection, even with the zero RetryPolicy.
func (b bank) lostBeforeCommit(ctx context.Context) error {
	n, err := b.transfer(ctx, newID("t"), 10, func(ctx context.Context, tx *sql.Tx, attempt int) error {
		if attempt > 1 {
			return nil
		}
		return b.d.LoseBeforeCommit(ctx, b.db, tx)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "transfer committed on attempt %d (the first lost its connection before COMMIT)\n", n)
	return b.printBalances(ctx)
}

// lostDuringCommit: the session ends while COMMIT is in flight. The server
// may or may not have committed; RunTx does not guess, it returns
// ErrOutcomeUnknown after one attempt, and the program checks by id.
func (b bank) lostDuringCommit(ctx context.Context) error {
	id := newID("doomed")
	var atCommit func(context.Context, *sql.Tx, int) error
	if b.d.LoseAtCommit != nil {
		atCommit = func(ctx context.Context, tx *sql.Tx, _ int) error { return b.d.LoseAtCommit(ctx, b.db, tx) }
	}
	n, err := b.transfer(ctx, id, 10, atCommit)
	if !errors.Is(err, pool.ErrOutcomeUnknown) {
		return fmt.Errorf("want ErrOutcomeUnknown, got %v", err)
	}
	fmt.Fprintf(b.out, "COMMIT lost on attempt %d: errors.Is(err, pool.ErrOutcomeUnknown) = true, not retried\n", n)
	fmt.Fprintf(b.out, "  err: %v\n", err)
	var found int
	err = b.read(ctx, func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, b.d.CountTransfer, id).Scan(&found)
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

func newID(prefix string) string { return prefix + "-" + rand.Text()[:12] }
