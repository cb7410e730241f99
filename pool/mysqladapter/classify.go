package mysqladapter

import (
	"errors"
	"io"
	"reflect"

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/detect"
)

// Classifier reads go-sql-driver/mysql errors. It walks the whole error
// chain together with the generic rules of detect.Default (see
// detect.WithRules) and returns Continue for errors it does not recognise.
// File:line references are into github.com/go-sql-driver/mysql@v1.10.1.
//
//   - driver.ErrBadConn: LostUnsent (generic rule). The driver returns it
//     only when the first packet of a command wrote 0 bytes
//     (packets.go:147-157 errBadConnNoWrite, turned into ErrBadConn by
//     markBadConn, connection.go:129-136, for the commands that begin an
//     interaction), for an operation on a conn it already closed
//     (connection.go:143-145, 435-437, ...), and with rejectReadOnly when
//     the server refused a write on a read-only node (packets.go:600-612):
//     in all of them the server did not run the statement.
//   - mysql.ErrInvalidConn: Lost. A read failed after the command was sent
//     (packets.go:53-59, 95-101: the driver closes the conn and logs the
//     real error), or the conn was closed under a transaction
//     (transaction.go:17-38).
//   - the unexported errBadConnNoWrite ("bad connection", packets.go:156)
//     when it escapes markBadConn (a second command of one interaction, or
//     a statement close): Lost, since an earlier packet may have gone.
//   - mysql.ErrPktSync, ErrPktSyncMul, io.ErrShortWrite: Lost; the driver
//     closes the conn on them (packets.go:69-74, 108-114, 158-164).
//     ErrMalformPkt: Lost; it comes from handshake parsing (auth.go) or a
//     malformed error packet (packets.go:590): the stream is out of sync.
//   - *mysql.MySQLError, by number (MariaDB/MySQL error references):
//   - 1053 ER_SERVER_SHUTDOWN, 1927 ER_CONNECTION_KILLED (MariaDB),
//     3169 ER_SESSION_WAS_KILLED (MySQL 8), 4031
//     ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+), 2006
//     CR_SERVER_GONE_ERROR, 2013 CR_SERVER_LOST (client codes this driver
//     does not produce, but proxies such as ProxySQL relay): Lost.
//   - 1317 ER_QUERY_INTERRUPTED (KILL QUERY), 1969 ER_STATEMENT_TIMEOUT
//     (MariaDB max_statement_time), 3024 ER_QUERY_TIMEOUT (MySQL
//     max_execution_time): Alive, the session survives.
//   - 1062 duplicate key, 1213 deadlock, 1205 lock wait timeout, 1040 too
//     many connections, 1045 access denied, 1049 unknown database, and
//     every other number: Alive.
//   - the caller's context error, which the driver returns after its watcher
//     closed the socket (packets.go:53-57, connection.go:722-770): Alive
//     (generic rule; see detect.Default).
var classifier = detect.WithRules(mysqlRule)

// Classifier returns the classifier the pool uses for this driver's errors
// (rules above). Use it with detect.Classify to judge an error yourself.
func Classifier() detect.Classifier { return classifier }

// errBadConnNoWriteText is the text of the driver's unexported
// errBadConnNoWrite (errors.go:37). driver.ErrBadConn reads "driver: bad
// connection", so the two cannot be confused.
const errBadConnNoWriteText = "bad connection"

func mysqlRule(err error) detect.Verdict {
	switch err {
	case mysql.ErrInvalidConn, mysql.ErrPktSync, mysql.ErrPktSyncMul, mysql.ErrMalformPkt, io.ErrShortWrite:
		return detect.Lost
	}
	if e, ok := err.(*mysql.MySQLError); ok {
		if e == nil {
			return detect.Continue
		}
		switch e.Number {
		case 1053, 1927, 3169, 4031, 2006, 2013:
			return detect.Lost
		}
		return detect.Alive
	}
	if isBadConnNoWrite(err) {
		return detect.Lost
	}
	return detect.Continue
}

// errorsNewType is the dynamic type of errors.New values.
var errorsNewType = reflect.TypeOf(errors.New(""))

// isBadConnNoWrite matches the driver's unexported sentinel by its type (an
// errors.New value) and text. Error is only called on errors.New values,
// for which it cannot allocate or panic.
func isBadConnNoWrite(err error) bool {
	return reflect.TypeOf(err) == errorsNewType && err.Error() == errBadConnNoWriteText
}
