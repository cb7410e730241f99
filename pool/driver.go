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

	// SessionIDQuery returns the server's id for the current session as a
	// single value (for orphan reaping), e.g. "SELECT pg_backend_pid()".
	SessionIDQuery string

	// KillSession returns the statement that ends another session of ours,
	// e.g. "SELECT pg_terminate_backend(1234)". It is given the value
	// SessionIDQuery returned, formatted with %v, and must validate it.
	KillSession func(id int64) string
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
