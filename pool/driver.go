package pool

import (
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/flapguard/flapguard/detect"
)

// Driver tells the pool how to give a database/sql driver full protection:
// how to build a connector whose sockets the pool dials, and how to read the
// driver's errors. The built-in go-mssqldb support and the adapters in
// pool/pgxadapter and pool/mysqladapter are Drivers.
type Driver struct {
	// NewConnector builds a connector for dsn that dials every socket with
	// dial. Required.
	NewConnector func(dsn string, dial DialFunc) (driver.Connector, error)

	// Classifier reads this driver's errors (asked after Config.Classifier
	// and before detect.Default). Optional.
	Classifier detect.Classifier

	// SlowCancel: the driver waits long for the server to acknowledge a
	// cancelled request (go-mssqldb: 5s for ATTENTION). The pool then closes
	// the socket Config.CancelGrace after the caller's context ends.
	SlowCancel bool

	// ClosedAtStart, if set, reports whether the driver conn was already
	// closed when an operation began. It is set for drivers whose "nothing
	// was sent, safe to retry" errors cannot be trusted on their own: the
	// pool then believes such an error only when the conn was closed
	// before the operation started, and otherwise reports the outcome as
	// unknown (pgx v5.12: a peer RST in the middle of an Exec returns a
	// SafeToRetry error although the statement ran; see pgxadapter).
	ClosedAtStart func(driver.Conn) bool

	// Orphan reaping (see Config.Orphans). SessionQuery returns the
	// server's id for the current session and a fingerprint that tells it
	// apart from a later session that reuses the id (SQL Server reuses
	// SPIDs at once, PostgreSQL reuses pids): two columns, (bigint, text).
	// SessionCheck(id, fp) is a query returning a count: whether session id
	// still exists with fingerprint fp (fp is given as a quoted SQL string
	// literal). KillSession(id) ends it. ReapNeedsPermission: killing one's
	// own sessions needs a permission users often lack (SQL Server: ALTER
	// ANY CONNECTION), so OrphansAuto leaves reaping off.
	SessionQuery        string
	SessionCheck        func(id int64, fpLiteral string) string
	KillSession         func(id int64) string
	ReapNeedsPermission bool
}

var (
	driversMu sync.RWMutex // protects drivers
	drivers   = map[string]Driver{}
)

// RegisterDriver makes name usable with Open with full socket control. It is
// meant to be called from an init function, the way database/sql drivers
// register. It panics if d.NewConnector is nil or name is registered twice,
// as sql.Register does: both are programming errors found at start-up.
func RegisterDriver(name string, d Driver) {
	if d.NewConnector == nil {
		panic("pool: RegisterDriver " + name + " with nil NewConnector")
	}
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[name]; dup {
		panic("pool: RegisterDriver called twice for " + name)
	}
	drivers[name] = d
}

func lookupDriver(name string) (Driver, bool) {
	driversMu.RLock()
	defer driversMu.RUnlock()
	d, ok := drivers[name]
	return d, ok
}

// Drivers returns the names with full socket control, for diagnostics.
func Drivers() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	return names
}

func errUnknownDriver(name string) error {
	return fmt.Errorf("pool: unknown driver %q (forgotten import? for pgx and mysql import _ \"github.com/flapguard/flapguard/pool/pgxadapter\" or .../pool/mysqladapter)", name)
}
