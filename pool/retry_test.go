package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/flapguard/flapguard/detect"
)

func retryPool(t *testing.T) (*Pool, *fakeDriver) {
	p, d := openFake(t, quietConfig(), false)
	d.execErrs = make(chan error, 8)
	d.commitErrs = make(chan error, 8)
	return p, d
}

func fastBackOff() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

func exec(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, "INSERT")
	return err
}

func TestRetryNeverRetriesOutcomeUnknownWrite(t *testing.T) {
	p, d := retryPool(t)
	d.execErrs <- io.ErrUnexpectedEOF // lost while reading the reply
	attempts := 0
	err := p.RunConn(context.Background(), RetryPolicy{NewBackOff: fastBackOff}, func(ctx context.Context, c *sql.Conn) error {
		attempts++
		return exec(ctx, c)
	})
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v; want ErrOutcomeUnknown wrapping the driver's error", err)
	}
	if attempts != 1 {
		t.Fatalf("attempts = %d; an outcome-unknown write was retried", attempts)
	}
}

func TestRetryRetriesPreSendFailure(t *testing.T) {
	p, d := retryPool(t)
	d.execErrs <- driver.ErrBadConn // the driver says: nothing was sent
	d.execErrs <- driver.ErrBadConn
	attempts := 0
	err := p.RunConn(context.Background(), RetryPolicy{NewBackOff: fastBackOff}, func(ctx context.Context, c *sql.Conn) error {
		attempts++
		return exec(ctx, c)
	})
	if err != nil || attempts != 3 || d.execs.Load() != 1 {
		t.Fatalf("err %v attempts %d execs %d; want success on the 3rd attempt, one write", err, attempts, d.execs.Load())
	}
}

func TestRetryIdempotentRetriesLost(t *testing.T) {
	p, d := retryPool(t)
	d.execErrs <- io.EOF
	attempts := 0
	err := p.RunConn(context.Background(), RetryPolicy{Idempotent: true, NewBackOff: fastBackOff}, func(ctx context.Context, c *sql.Conn) error {
		attempts++
		return exec(ctx, c)
	})
	if err != nil || attempts != 2 {
		t.Fatalf("err %v attempts %d", err, attempts)
	}
}

func TestRetryStopsAtOrdinaryErrorAndMaxAttempts(t *testing.T) {
	p, d := retryPool(t)
	sqlErr := errors.New("duplicate key")
	d.execErrs <- sqlErr
	attempts := 0
	err := p.RunConn(context.Background(), RetryPolicy{NewBackOff: fastBackOff}, func(ctx context.Context, c *sql.Conn) error {
		attempts++
		return exec(ctx, c)
	})
	if !errors.Is(err, sqlErr) || attempts != 1 {
		t.Fatalf("err %v attempts %d", err, attempts)
	}
	for range 5 {
		d.execErrs <- driver.ErrBadConn
	}
	attempts = 0
	err = p.RunConn(context.Background(), RetryPolicy{MaxAttempts: 3, NewBackOff: fastBackOff}, func(ctx context.Context, c *sql.Conn) error {
		attempts++
		return exec(ctx, c)
	})
	if !errors.Is(err, driver.ErrBadConn) || attempts != 3 {
		t.Fatalf("err %v attempts %d; want 3 attempts", err, attempts)
	}
	if err := p.RunConn(context.Background(), RetryPolicy{MaxAttempts: -1}, nil); err == nil {
		t.Fatal("negative MaxAttempts accepted")
	}
}

func TestRunTxRetriesLossBeforeCommitNotDuringCommit(t *testing.T) {
	p, d := retryPool(t)
	d.execErrs <- io.EOF // lost inside the tx: not committed, safe to rerun
	attempts := 0
	err := p.RunTx(context.Background(), RetryPolicy{NewBackOff: fastBackOff}, nil, func(ctx context.Context, tx *sql.Tx) error {
		attempts++
		_, err := tx.ExecContext(ctx, "INSERT")
		return err
	})
	if err != nil || attempts != 2 {
		t.Fatalf("err %v attempts %d; want a retry after a loss before COMMIT", err, attempts)
	}

	d.commitErrs <- io.EOF // lost during COMMIT: unknown
	attempts = 0
	err = p.RunTx(context.Background(), RetryPolicy{NewBackOff: fastBackOff}, nil, func(ctx context.Context, tx *sql.Tx) error {
		attempts++
		_, err := tx.ExecContext(ctx, "INSERT")
		return err
	})
	if !errors.Is(err, ErrOutcomeUnknown) || attempts != 1 {
		t.Fatalf("err %v attempts %d; a COMMIT with unknown outcome must not be retried", err, attempts)
	}

	for range 3 {
		d.execErrs <- io.EOF
	}
	err = p.RunTx(context.Background(), RetryPolicy{MaxAttempts: 2, NewBackOff: fastBackOff}, nil, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT")
		return err
	})
	if !errors.Is(err, ErrNotCommitted) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err %v; want ErrNotCommitted and not ErrOutcomeUnknown", err)
	}
}

// A user classifier that panics has no opinion; the pool keeps working and
// the built-in rules decide.
func TestPanickingClassifierDoesNotTakeThePoolDown(t *testing.T) {
	cfg := quietConfig()
	cfg.Classifier = detect.ClassifierFunc(func(error) detect.Verdict { panic("user bug") })
	p, d := openFake(t, cfg, false)
	d.execErrs = make(chan error, 1)
	d.execErrs <- io.EOF
	_, err := p.DB().ExecContext(context.Background(), "INSERT")
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v; want the built-in verdict (lost, outcome unknown)", err)
	}
	if _, err := p.DB().ExecContext(context.Background(), "INSERT"); err != nil {
		t.Fatalf("pool unusable after a panicking classifier: %v", err)
	}
}

func TestRetryPolicyIsSafeToShareAndRejectsANilBackOff(t *testing.T) {
	p, _ := retryPool(t)
	err := p.RunConn(context.Background(), RetryPolicy{NewBackOff: func() backoff.BackOff { return nil }}, exec)
	if err == nil || !strings.Contains(err.Error(), "NewBackOff returned nil") {
		t.Fatalf("nil backoff: err = %v; want a clear error", err)
	}
	// One policy value, many concurrent calls: each gets its own backoff.
	var made atomic.Int64
	pol := RetryPolicy{NewBackOff: func() backoff.BackOff { made.Add(1); return fastBackOff() }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := p.RunConn(context.Background(), pol, exec); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if made.Load() != 8 {
		t.Fatalf("NewBackOff called %d times for 8 calls", made.Load())
	}
}
