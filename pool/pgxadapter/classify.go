package pgxadapter

import (
	"github.com/flapguard/flapguard/detect"
	"github.com/jackc/pgx/v5/pgconn"
)

// Classifier reads pgx v5 errors (pgconn, pgproto3, stdlib). It walks the
// whole error chain together with the generic rules of detect.Default (see
// detect.WithRules), and returns Continue for errors it does not recognise.
// File:line references are into github.com/jackc/pgx/v5@v5.12.0.
//
//   - *pgconn.PgError, by SQLSTATE
//     (https://www.postgresql.org/docs/current/errcodes-appendix.html):
//   - 08001 sqlclient_unable_to_establish_sqlconnection, 08004
//     sqlserver_rejected_establishment_of_sqlconnection, 57P03
//     cannot_connect_now ("the database system is starting up / shutting
//     down"): LostUnsent. They are only sent while a connection is being
//     established, before any statement.
//   - any other class 08 (connection exception), 57P01 admin_shutdown
//     (pg_terminate_backend, smart/fast shutdown), 57P02 crash_shutdown,
//     57P04 database_dropped, 57P05 idle_session_timeout, 25P03
//     idle_in_transaction_session_timeout: Lost. The backend exits; a
//     statement it was running may have committed just before (a terminate
//     can be processed after the commit record is flushed).
//   - class 28 (invalid authorization), 3D000 invalid_catalog_name, 53300
//     too_many_connections: Alive. Configuration or server policy, even
//     though PostgreSQL sends them as FATAL; resetting the pool would not
//     help.
//   - 57014 query_canceled (statement_timeout, pg_cancel_backend), 40001
//     serialization_failure, 40P01 deadlock_detected, 23xxx constraint
//     violations, 42xxx: Alive; the session survives them.
//   - any other error of severity FATAL or PANIC: Lost (the backend ends the
//     session after sending it); anything else: Alive.
//   - SafeToRetry() is deliberately NOT believed. pgconn promises it means
//     "guaranteed to have occurred before sending any data to the server"
//     (pgconn/errors.go:12-19), but with pgx v5.12.0 against PostgreSQL 15 a
//     peer RST while `SELECT nextval('s'), pg_sleep(1)` runs makes Conn.Exec
//     return connLockError "conn closed" with SafeToRetry() == true although
//     the statement ran (pool/pgxadapter TestSafeToRetryAfterSend; stdlib
//     then turns it into driver.ErrBadConn, stdlib/sql.go:510-514, and plain
//     database/sql runs the statement twice), and rows.Err() after a reset
//     gave a pgproto3 writeError with SafeToRetry() == true (docs/drivers.md, "measured, not re-run").
//     So these wrappers are looked through: a write or read error inside is
//     Lost, pgconn.ErrConnClosed inside is Lost, the caller's cancellation
//     inside (contextAlreadyDoneError, errors.go:222-241) is Alive. The one
//     case that truly is unsent, an operation started on a conn pgx had
//     already closed, reaches us as a bare driver.ErrBadConn from stdlib
//     (stdlib/sql.go:502, 520); the generic rules say LostUnsent for it and
//     the pool believes that only when pool.Driver.ClosedAtStart confirms
//     the conn was closed at the start (pool/conn.go observeOp), because a
//     bare ErrBadConn from stdlib:512 looks the same.
//   - *pgconn.ConnectError: LostUnsent (no statement can run on a connection
//     that was never established), Alive when what it wraps is ordinary
//     (wrong password 28P01, unknown database 3D000, the caller's
//     cancellation).
//   - pgconn.Timeout errors are not a rule of their own: pgconn wraps either
//     the caller's context error (Alive by the generic rules; the caller
//     chose the deadline) or a network timeout (Lost)
//     (pgconn/errors.go:164-178).
//   - pgconn.ErrConnClosed (errors.go:105-109): Lost.
var classifier = detect.WithRules(pgRule)

// Classifier returns the classifier the pool uses for this driver's errors
// (rules above). Use it with detect.Classify to judge an error yourself.
func Classifier() detect.Classifier { return classifier }

func pgRule(err error) detect.Verdict {
	switch e := err.(type) {
	case *pgconn.PgError:
		if e == nil {
			return detect.Continue
		}
		return pgErrorVerdict(e)
	case *pgconn.ConnectError:
		return detect.LostUnsent
	}
	if err == pgconn.ErrConnClosed {
		return detect.Lost
	}
	return detect.Continue
}

func pgErrorVerdict(e *pgconn.PgError) detect.Verdict {
	code := e.Code
	switch code {
	case "08001", "08004", "57P03":
		return detect.LostUnsent
	case "57P01", "57P02", "57P04", "57P05", "25P03":
		return detect.Lost
	case "3D000", "53300":
		return detect.Alive
	}
	if len(code) == 5 {
		switch code[:2] {
		case "08":
			return detect.Lost
		case "28":
			return detect.Alive
		}
	}
	sev := e.SeverityUnlocalized
	if sev == "" {
		sev = e.Severity
	}
	if sev == "FATAL" || sev == "PANIC" {
		return detect.Lost
	}
	return detect.Alive
}
