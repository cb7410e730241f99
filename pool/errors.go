package pool

import (
	"database/sql/driver"
	"errors"
)

var (
	// ErrTunnelDown: a tunnel carrying this pool's traffic is reported down
	// and did not come up within Config.DownWait.
	ErrTunnelDown = errors.New("pool: tunnel is down")

	// ErrOutcomeUnknown: the connection was lost while a statement was in
	// flight, so it may or may not have run on the server. RunConn and RunTx
	// do not retry it unless the RetryPolicy says the work is Idempotent;
	// check before running it again.
	ErrOutcomeUnknown = errors.New("pool: connection lost; the statement's outcome is unknown")

	// ErrConnLost matches every error the pool classified as a lost
	// connection, whether or not the statement was sent.
	ErrConnLost = errors.New("pool: connection lost")

	// ErrClosed is returned by operations on a closed Pool.
	ErrClosed = errors.New("pool: closed")
)

// LostError wraps a driver error that was classified as a lost connection.
// errors.Is(err, ErrConnLost) holds for every LostError;
// errors.Is(err, ErrOutcomeUnknown) holds when Unsent is false, and
// errors.Is(err, driver.ErrBadConn) holds when Unsent is true (so
// database/sql retries it on another connection: nothing was sent). The
// driver's own error stays reachable with errors.As.
type LostError struct {
	Err    error
	Unsent bool // the server cannot have run the statement
}

func (e *LostError) Error() string {
	if e.Unsent {
		return "pool: connection lost before the statement was sent: " + e.Err.Error()
	}
	return "pool: connection lost; the statement's outcome is unknown: " + e.Err.Error()
}

// Unwrap returns the driver's error, except in one case: when the driver
// said "nothing was sent" (driver.ErrBadConn) but the pool knows the
// statement may have been sent, the chain is cut so that database/sql,
// which retries whatever errors.Is(err, driver.ErrBadConn), does not run
// the statement again. Err still holds the driver's error.
func (e *LostError) Unwrap() error {
	if !e.Unsent && errors.Is(e.Err, driver.ErrBadConn) {
		return nil
	}
	return e.Err
}

// Is reports ErrConnLost, and ErrOutcomeUnknown or driver.ErrBadConn.
func (e *LostError) Is(target error) bool {
	switch target {
	case ErrConnLost:
		return true
	case ErrOutcomeUnknown:
		return !e.Unsent
	case driver.ErrBadConn:
		return e.Unsent
	}
	return false
}
