package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

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

	// Warm, if set, readies a driver conn that the pool reopened after a
	// reset whose cause it knows (the rebuild: the tunnels came up, a dead
	// path or dead flows were found) for the work its predecessors did,
	// before a request uses it: pgx
	// prepares the statements its statement cache had prepared on the
	// pool's earlier conns, so the first use of each costs one round trip
	// instead of two. It is called with the conn held by the pool; more
	// reports whether to go on, and turns false as soon as a request needs
	// a connection (so a warm-up never makes a request wait for more than
	// the step in progress). A non-nil error means the conn is unusable
	// (the pool drops it); the driver's own statement errors are Warm's to
	// absorb. Optional.
	Warm func(ctx context.Context, c driver.Conn, more func() bool) error

	// SocketOf, if set, returns the socket a driver conn talks over. It is
	// asked only for a conn the driver made without dialing through the
	// pool (pgx with a config registered by stdlib.RegisterConnConfig,
	// whose own DialFunc the pool cannot replace): the pool then hardens
	// that socket, can sever it and looks at it at borrow. Optional.
	SocketOf func(driver.Conn) net.Conn

	// WatchSocket, if set, is handed each socket the pool dials for a new
	// connection while orphan reaping is on, before the driver gets it,
	// and returns the conn the driver is to use (c itself, or a wrapper
	// that watches what the server sends). It calls found, at most once,
	// when it learns the server's id for the session from the wire (MySQL's
	// greeting, TDS packet headers) with a fingerprint the adapter's
	// SessionCheck understands: then SessionQuery is not run, and a new
	// connection costs no round trip beyond plain's. Optional.
	WatchSocket func(ctx context.Context, c net.Conn, found func(id int64, fp string)) net.Conn

	// Orphan reaping (see Config.Orphans). A session is identified by the
	// server's id for it and, against a later session that reuses the id
	// (SQL Server reuses SPIDs at once, PostgreSQL reuses pids), either a
	// fingerprint or its age. SessionOf returns the id the driver learned
	// at connect without a round trip (pgx: the backend PID from the
	// startup), 0 if it has none; otherwise, and only while reaping is on,
	// SessionQuery is run once at connect and returns two columns (bigint
	// id, text fingerprint). SessionCheck(id, fp, minAge) is a query
	// returning a count: whether session id still exists with fingerprint
	// fp (a quoted SQL string literal, "" when SessionOf gave the id) and
	// started at least minAge ago by the server's clock. KillSession(id)
	// ends it. ReapNeedsPermission: killing one's own sessions needs a
	// permission users often lack (SQL Server: ALTER ANY CONNECTION), so
	// OrphansAuto leaves reaping off.
	SessionOf           func(driver.Conn) int64
	SessionQuery        string
	SessionCheck        func(id int64, fp string, minAge time.Duration) string
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

// adapters names the adapter package for the driver names flapguard has one
// for, so a forgotten import is reported with the line to add.
var adapters = map[string]string{
	"sqlserver": "github.com/flapguard/flapguard/pool/mssqladapter",
	"mssql":     "github.com/flapguard/flapguard/pool/mssqladapter",
	"pgx":       "github.com/flapguard/flapguard/pool/pgxadapter",
	"pgx/v5":    "github.com/flapguard/flapguard/pool/pgxadapter",
	"mysql":     "github.com/flapguard/flapguard/pool/mysqladapter",
}

func isRegistered(name string) bool {
	return slices.Contains(sql.Drivers(), name)
}

// pgxInstead names the driver names of lib/pq ("postgres") and its
// lookalikes: flapguard reaches PostgreSQL through pgx, so the hint for
// them is the pgx adapter and its driver name, not an import of lib/pq.
var pgxInstead = map[string]bool{"postgres": true, "postgresql": true}

func errUnknownDriver(name string) error {
	if pgxInstead[name] {
		return fmt.Errorf("pool: unknown driver %q: flapguard reaches PostgreSQL through pgx: open with driver name \"pgx\" and add import _ %q (pgx reads the same URL and key=value DSNs as lib/pq)", name, adapters["pgx"])
	}
	if pkg, ok := adapters[name]; ok {
		return fmt.Errorf("pool: unknown driver %q: add import _ %q", name, pkg)
	}
	return fmt.Errorf("pool: unknown driver %q: no database/sql driver and no flapguard adapter is registered under that name (forgotten import?)", name)
}

func errNoAdapter(name string) error {
	if pgxInstead[name] {
		return fmt.Errorf("pool: driver %q has no flapguard adapter: for full protection open with driver name \"pgx\" and add import _ %q (pgx reads the same URL and key=value DSNs as lib/pq), or set Config.AllowSoftMode to keep this driver with soft reset and liveness only", name, adapters["pgx"])
	}
	if pkg, ok := adapters[name]; ok {
		return fmt.Errorf("pool: driver %q has no flapguard adapter registered: add import _ %q (without it the pool cannot sever, harden TCP or bound the driver's waits; set Config.AllowSoftMode to run without)", name, pkg)
	}
	return fmt.Errorf("pool: driver %q has no flapguard adapter: the pool cannot sever its sockets, harden TCP or bound its waits; use a driver with an adapter (sqlserver, pgx, mysql), OpenWithDialer, or set Config.AllowSoftMode for soft reset and liveness only", name)
}
