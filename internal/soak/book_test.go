//go:build linux

package soak

import (
	"database/sql/driver"
	"errors"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
)

// opKind is what one worker operation did.
type opKind int

const (
	opRead     opKind = iota // SELECT of the ledger's total
	opInsert                 // one INSERT with a client-generated id
	opTransfer               // RunTx moving an amount between two accounts
	opLongRead               // pg_sleep / SLEEP / waitfor: caught by faults
	numOpKinds
)

func (k opKind) String() string {
	return [...]string{"read", "insert", "transfer", "long-read"}[k]
}

// outcome is what the caller can know about an operation from its result.
type outcome int

const (
	outOK outcome = iota
	// outUnsent: provably never reached the server (an insert), or known
	// not committed (a transfer).
	outUnsent
	// outUnknown: a write that may or may not have happened.
	outUnknown
	// outFailed: a read that failed (reads have no outcome to track).
	outFailed
	numOutcomes
)

func (o outcome) String() string {
	return [...]string{"ok", "unsent", "unknown", "failed"}[o]
}

// opRecord is one operation as its worker saw it.
type opRecord struct {
	kind     opKind
	worker   int
	id       int64         // insert or transfer id
	src, dst int           // transfer accounts
	amount   int64         // transfer amount (moved from src to dst)
	slow     time.Duration // a slow insert: the server's time on it
	start    time.Time
	dur      time.Duration
	deadline time.Duration // 0: none
	out      outcome
	err      string // the error, for outcomes other than ok
	note     string // what else happened (the broken variant's retries)
}

// provablyUnsent reports whether err proves that nothing of the failed
// call reached the server:
//
//   - driver.ErrBadConn: database/sql retries it (twice on a pooled conn,
//     then once on a new one) and returns it only when the last attempt
//     failed with it too; every attempt failed before sending (that is the
//     driver contract, and flapguard's LostError matches ErrBadConn only
//     when Unsent).
//   - pool.ErrTunnelDown: the pool's gate refused a new connection; it
//     waits before connecting, so no statement was on it.
//   - *detect.ConnectError: the pool marks every failed connect with it; a
//     statement cannot run on a connection that never opened.
//
// Attempts before the last one were retried only after ErrBadConn, so
// they were unsent as well. Everything else may have run: a lost
// connection with the statement in flight (pool.ErrOutcomeUnknown), the
// caller's deadline passing (while waiting for a free conn, which would
// be unsent, or while the statement ran: the caller cannot tell), a server
// error. Those are outcome-unknown.
func provablyUnsent(err error) bool {
	var ce *detect.ConnectError
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, pool.ErrTunnelDown) || errors.As(err, &ce)
}

// insertOutcome is the outcome of a single-statement write that returned err.
func insertOutcome(err error) outcome {
	switch {
	case err == nil:
		return outOK
	case provablyUnsent(err):
		return outUnsent
	}
	return outUnknown
}

// transferOutcome is the outcome of RunTx returning err, where fnErr is
// the error the transaction's function returned on its last invocation.
//
//   - pool.ErrNotCommitted: RunTx says so (lost before COMMIT).
//   - provablyUnsent: the last attempt failed before its BEGIN or its
//     COMMIT reached the server; earlier attempts were retried, which RunTx
//     does only for failures that cannot have committed (unsent, or before
//     COMMIT) under the zero RetryPolicy.
//   - err is the very error fn returned: fn failed, so RunTx rolled back
//     without sending COMMIT (pool/retry.go RunTx).
//
// Anything else (a loss during COMMIT, the deadline passing in COMMIT) is
// unknown.
func transferOutcome(err, fnErr error) outcome {
	switch {
	case err == nil:
		return outOK
	case errors.Is(err, pool.ErrNotCommitted), provablyUnsent(err):
		return outUnsent
	case fnErr != nil && err == fnErr:
		return outUnsent
	}
	return outUnknown
}

// readOutcome: a read either worked or not.
func readOutcome(err error) outcome {
	if err == nil {
		return outOK
	}
	return outFailed
}
