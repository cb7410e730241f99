package pool

import (
	"database/sql/driver"
	"errors"

	"github.com/flapguard/flapguard/detect"
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

// ctxEnded is a connect error for the pool's own judgement when a context
// ended the connect but the driver's error does not say so (go-mssqldb
// after the pool closed its socket in PRELOGIN): errors.Is finds both, so
// the classifier sees the caller's cancellation (Alive), not a dead path.
// The caller gets err alone (callerError).
type ctxEnded struct{ ctx, err error }

func (e *ctxEnded) Error() string   { return e.ctx.Error() + "\n" + e.err.Error() }
func (e *ctxEnded) Unwrap() []error { return []error{e.ctx, e.err} }

// callerError is what database/sql's caller gets for a failed connect:
// the driver's error as the driver returned it, so `==` and type
// assertions hold as with plain database/sql (err == context.DeadlineExceeded,
// err.(*mysql.MySQLError)). Inside, the pool judges it wrapped in a
// *detect.ConnectError, which proves that nothing was sent; RunConn and
// RunTx re-wrap what they get from database/sql (connectPhase).
//
// Identity changes in three cases, listed in the README's drop-in section:
// a message that carries the DSN's password is redacted (redaction wins:
// the chain under it stays reachable with errors.Is/As, each link
// redacted, see redactedError); a connect the pool's Config.ConnectTimeout
// cut is wrapped with a message saying so (plain would still be waiting);
// and the pool's own errors (ErrClosed, ErrTunnelDown, a bad Config) are
// its own.
func callerError(err error, secrets []string) error {
	var ce *detect.ConnectError
	if !errors.As(err, &ce) || ce.Err == nil {
		return err
	}
	if e, ok := ce.Err.(*ctxEnded); ok {
		return redactErr(e.err, secrets)
	}
	return ce.Err
}

// connectPhase marks an error database/sql returned before fn ran (from
// DB.Conn or DB.BeginTx): no statement of fn's can have been sent, as
// when the pool judged the connect itself (callerError).
func connectPhase(err error) error {
	var ce *detect.ConnectError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return &detect.ConnectError{Err: err}
}
