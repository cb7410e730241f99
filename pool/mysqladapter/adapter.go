// Package mysqladapter gives go-sql-driver/mysql full flapguard protection.
// Import it for its side effect:
//
//	import _ "github.com/flapguard/flapguard/pool/mysqladapter"
//
//	p, err := pool.Open("mysql", "app:pw@tcp(db.example:3306)/app", pool.Config{})
//
// The pool then dials every socket through the driver's Config.DialFunc, so
// it can harden, track and sever them, and it reads the driver's errors
// with Classifier. A program that does not import this package compiles no
// MySQL code.
package mysqladapter

import (
	"database/sql/driver"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/pool"
)

func init() {
	pool.RegisterDriver("mysql", pool.Driver{
		NewConnector: NewConnector,
		Classifier:   classifier,
		// A user may kill its own threads without extra privileges. The
		// connection id is read from the server's greeting on the socket
		// the pool dialed (session.go): no round trip. Only where that
		// cannot be done (a network registered with the driver, Windows)
		// is it asked once at connect while reaping is on. HOST is
		// "client-host:port" as the server saw it.
		WatchSocket:  watchSocket,
		SessionQuery: "SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()",
		SessionCheck: sessionCheck,
		KillSession: func(id int64) string {
			return fmt.Sprintf("KILL CONNECTION %d", id)
		},
	})
}

// NewConnector returns a go-sql-driver/mysql connector for dsn whose
// sockets are dialed with dial. Avoid readTimeout/writeTimeout in the DSN
// for long queries: they are per-read deadlines for the connection's whole
// life; the pool's TCP_USER_TIMEOUT bounds a dead path without them.
func NewConnector(dsn string, dial pool.DialFunc) (driver.Connector, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, dsnHint(dsn, err)
	}
	if !goNetwork(cfg.Net) {
		// A network registered with mysql.RegisterDialContext (a Cloud
		// SQL-style connector, "user@mydial(addr)/db"): a DialFunc would
		// override it (connector.go:98-110: DialFunc first, the registry
		// only without one) and the dial would fail with "unknown
		// network". The driver keeps dialing through the registered
		// function, as with plain database/sql. The registry cannot be read
		// from outside the driver (driver.go:42-43), so the pool cannot
		// wrap that function and has no socket for these conns: no sever,
		// no TCP hardening, no cancel guard and no free check at borrow
		// (the driver's own CheckConnLiveness still runs in ResetSession).
		// Soft reset and liveness at borrow work as without an adapter;
		// docs/drivers.md says so.
		return mysql.NewConnector(cfg)
	}
	cfg.DialFunc = dial
	return mysql.NewConnector(cfg)
}

// goNetwork reports whether net is one Go's net package dials, as opposed
// to a name registered with mysql.RegisterDialContext.
func goNetwork(net string) bool {
	switch net {
	case "tcp", "tcp4", "tcp6", "unix", "unixpacket":
		return true
	}
	return false
}
