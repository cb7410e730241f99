package mssqladapter

import (
	mssql "github.com/microsoft/go-mssqldb"

	"github.com/flapguard/flapguard/detect"
)

// go-mssqldb rules (v1.11.2), judged by Classifier. File:line references are into
// github.com/microsoft/go-mssqldb@v1.11.2.
//
//   - RetryableError: detect.LostUnsent. The driver returns it only from
//     checkBadConn with mayRetry=true (mssql.go:274-302), and every such call
//     follows a failed *send* of the request: Begin (mssql.go:401-404),
//     Commit (341-344), Rollback (371-374), Stmt.queryContext (783-785),
//     Stmt.exec (856-858). A failed send means the final packet, the one
//     carrying the end-of-message bit, was not written, and the server runs
//     no partial request. Its Is method matches driver.ErrBadConn, so
//     database/sql already retries it (error.go:109-133). What it wraps is a
//     text-only error ("failed to send SQL Batch: %v", mssql.go:587-590,
//     610-613), so nothing inside can overrule it.
//   - StreamError: detect.Lost. Invalid TDS stream, or "did not get cancellation
//     confirmation from the server" after ATTENTION (token.go:135-145): the
//     driver marks the connection bad (mssql.go:291-292) and the statement's
//     outcome is unknown. It has no Unwrap; the drain deadline it may embed
//     is not the caller's.
//   - ServerError: detect.Lost. A DONE token with the server-error bit: "the server
//     got a fatal error that aborts the process and severs the connection"
//     (error.go:91-99, token.go:1098-1099).
//   - Error (a server message): detect.Lost when its class (severity) is 20 or
//     higher, or its number is one that ends the session; otherwise detect.Alive.
//     Every entry of Error.All is checked, not only the last.
//
// Error numbers and severities: "Database engine error severities",
// https://learn.microsoft.com/sql/relational-databases/errors-events/database-engine-error-severities
// ("20-24: system problems ... fatal errors ... the application connection
// to the instance of the Database Engine might also terminate"; "19: ...
// the current batch process has been terminated"; 11-16 user-correctable;
// 13 deadlock; 14 security).
var mssqlLostNumbers = [...]int32{
	// 596 "Cannot continue the execution because the session is in the kill
	// state." Severity 21 (not verified here: no SQL Server; see docs/drivers.md); arrives inside ServerError.
	596,
	// 6005 "SHUTDOWN is in progress.", 6006 "Server shut down by %.*ls from
	// login %.*ls." Severity 10 in the 6000-6999 table
	// (https://learn.microsoft.com/sql/relational-databases/errors-events/database-engine-events-and-errors-6000-to-6999),
	// so the class rule misses them; the server is going away.
	6005, 6006,
}

// mssqlAliveNumbers are listed for documentation and to pin them in tests:
// their class is below 20, so the class rule already says detect.Alive.
//
//   - 1205 deadlock victim (severity 13; MSSQLSERVER_1205: "rolling back the
//     victim's transaction"): the connection survives.
//   - 18456 login failed (severity 14): an auth failure must not reset pools.
//   - 4060 cannot open database requested by the login (severity 11): a
//     configuration error, not a lost connection.
//
// The client-side transport numbers SqlClient reports (233 "no process is on
// the other end of the pipe", 10053/10054 WSAECONNABORTED/WSAECONNRESET) are
// never produced by go-mssqldb: it returns the Go network error instead,
// which the generic rules judge. They are not mapped.
var mssqlAliveNumbers = [...]int32{1205, 18456, 4060}

func mssqlRule(err error) detect.Verdict {
	switch e := err.(type) {
	case mssql.RetryableError, *mssql.RetryableError:
		return detect.LostUnsent
	case mssql.StreamError, *mssql.StreamError:
		return detect.Lost
	case mssql.ServerError, *mssql.ServerError:
		return detect.Lost
	case mssql.Error:
		return mssqlErrorVerdict(&e)
	case *mssql.Error:
		if e == nil {
			return detect.Continue
		}
		return mssqlErrorVerdict(e)
	}
	return detect.Continue
}

func mssqlErrorVerdict(e *mssql.Error) detect.Verdict {
	if mssqlMessageLost(e.Number, e.Class) {
		return detect.Lost
	}
	for i := range e.All {
		if mssqlMessageLost(e.All[i].Number, e.All[i].Class) {
			return detect.Lost
		}
	}
	return detect.Alive
}

func mssqlMessageLost(number int32, class uint8) bool {
	if class >= 20 {
		return true
	}
	for _, n := range mssqlLostNumbers {
		if number == n {
			return true
		}
	}
	return false
}
