package pool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/flapguard/flapguard/detect"
)

// RetryPolicy says when RunConn and RunTx may run a unit of work again.
// The zero value is safe for writes: only failures that happened before
// anything reached the server are retried.
type RetryPolicy struct {
	// Idempotent: the work may safely run twice (a read, an upsert keyed by
	// a client-generated id). Then a connection lost while the work was in
	// flight is retried too; otherwise it is returned as ErrOutcomeUnknown.
	Idempotent bool

	// MaxAttempts bounds the attempts, the first included. Default 4.
	MaxAttempts int

	// NewBackOff returns the backoff that spaces one call's attempts. It is
	// called once per RunConn or RunTx call, so one RetryPolicy value is
	// safe to share between concurrent calls (a cenkalti/backoff BackOff
	// is not safe for concurrent use). nil: exponential from 50ms to 2s
	// with jitter, for at most 30s in all. Retries also wait while the
	// tunnels are reported down, so they do not hammer a dead path.
	NewBackOff func() backoff.BackOff
}

// ErrNotCommitted: RunTx gave up after the connection was lost before
// COMMIT was sent. The transaction was not committed: the server rolls it
// back when it notices the session is gone.
var ErrNotCommitted = errors.New("pool: transaction not committed (connection lost before COMMIT)")

// RunConn runs fn on a connection of its own and retries it on a fresh one
// according to pol. fn must do all its work through c.
func (p *Pool) RunConn(ctx context.Context, pol RetryPolicy, fn func(ctx context.Context, c *sql.Conn) error) error {
	return p.retry(ctx, pol, func() (bool, error) {
		c, err := p.db.Conn(ctx)
		if err != nil {
			return p.retryable(connectPhase(err), pol, false), err
		}
		defer c.Close()
		err = fn(ctx, c)
		return p.retryable(err, pol, false), err
	})
}

// RunTx runs fn in a transaction and commits it, retrying on a fresh
// connection according to pol. A connection lost before COMMIT is always
// retried, idempotent or not: the transaction cannot have been committed.
// A connection lost during COMMIT leaves the outcome unknown: unless pol is
// Idempotent, the error is returned and errors.Is(err, ErrOutcomeUnknown).
func (p *Pool) RunTx(ctx context.Context, pol RetryPolicy, opts *sql.TxOptions, fn func(ctx context.Context, tx *sql.Tx) error) error {
	err := p.retry(ctx, pol, func() (bool, error) {
		tx, err := p.db.BeginTx(ctx, opts)
		if err != nil {
			return p.retryable(err, pol, true), err
		}
		if err := fn(ctx, tx); err != nil {
			tx.Rollback()
			if errors.Is(err, ErrConnLost) {
				return p.retryable(err, pol, true), notCommitted(err)
			}
			return p.retryable(err, pol, true), err
		}
		err = tx.Commit()
		return p.retryable(err, pol, false), err
	})
	return err
}

// retryable decides whether an attempt that failed with err may run again.
// beforeCommit: the failure happened inside a transaction before COMMIT.
func (p *Pool) retryable(err error, pol RetryPolicy, beforeCommit bool) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	v := p.classify(err)
	switch {
	case !v.IsLost():
		return errors.Is(err, ErrTunnelDown)
	case v == detect.LostUnsent, beforeCommit, pol.Idempotent:
		return true
	}
	return false // lost with the statement in flight: outcome unknown
}

func (p *Pool) retry(ctx context.Context, pol RetryPolicy, attempt func() (again bool, err error)) error {
	if pol.MaxAttempts < 0 {
		return fmt.Errorf("pool: RetryPolicy.MaxAttempts is negative (%d)", pol.MaxAttempts)
	}
	maxAttempts := pol.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = 4
	}
	var b backoff.BackOff
	if pol.NewBackOff != nil {
		if b = pol.NewBackOff(); b == nil {
			return errors.New("pool: RetryPolicy.NewBackOff returned nil")
		}
	} else {
		eb := backoff.NewExponentialBackOff()
		eb.InitialInterval = 50 * time.Millisecond
		eb.MaxInterval = 2 * time.Second
		eb.MaxElapsedTime = 30 * time.Second
		b = eb
	}
	b = backoff.WithContext(backoff.WithMaxRetries(b, uint64(maxAttempts-1)), ctx)
	var last error
	op := func() error {
		if p.closed.Load() {
			return backoff.Permanent(ErrClosed)
		}
		// Wait out a reported tunnel DOWN rather than spend an attempt on it.
		if err := p.gate.wait(ctx, p.cfg.DownWait); err != nil {
			last = err
			return err
		}
		again, err := attempt()
		last = err
		if err == nil {
			return nil
		}
		if !again {
			return backoff.Permanent(err)
		}
		return err
	}
	err := backoff.Retry(op, b)
	if err == nil {
		return nil
	}
	if last != nil {
		err = last
	}
	return err
}

// notCommitted turns a lost connection inside a transaction into
// ErrNotCommitted: the statement's own outcome was unknown, but the
// transaction's is known (not committed), so it must not say
// ErrOutcomeUnknown. The driver's error stays reachable.
func notCommitted(err error) error {
	var le *LostError
	if errors.As(err, &le) {
		err = le.Err
	}
	return fmt.Errorf("%w: %w", ErrNotCommitted, err)
}
