// Package mssqladapter gives go-mssqldb (github.com/microsoft/go-mssqldb)
// full flapguard protection. Import it for its side effect, the way
// database/sql drivers are imported:
//
//	import _ "github.com/flapguard/flapguard/pool/mssqladapter"
//
//	p, err := pool.Open("sqlserver", "sqlserver://app:secret@db.example?database=app", pool.Config{})
//
// It registers "sqlserver" and "mssql" (the latter with go-mssqldb's
// process-query-text behaviour, as the driver does). The pool then dials
// every socket through the connector's Dialer, so it can harden, track and
// sever them; bounds go-mssqldb's 5s wait for a cancel acknowledgement; and
// reads the driver's errors with Classifier. A program that does not import
// this package compiles no go-mssqldb code.
//
// "azuresql" lives in go-mssqldb's azuread package with the Azure SDK behind
// it; use pool.OpenWithDialer with azuread.NewConnector and its Dialer field.
package mssqladapter

import (
	"context"
	"database/sql/driver"
	"net"
	"strconv"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
)

// classifier reads go-mssqldb's errors together with the generic rules.
var classifier = detect.WithRules(mssqlRule)

// Classifier returns the classifier the pool uses for go-mssqldb's errors
// (see classify.go for its rules). Use it with detect.Classify to judge an
// error yourself.
func Classifier() detect.Classifier { return classifier }

func init() {
	for name, process := range map[string]bool{"sqlserver": false, "mssql": true} {
		pool.RegisterDriver(name, pool.Driver{
			Classifier: classifier,
			NewConnector: func(dsn string, dial pool.DialFunc) (driver.Connector, error) {
				cfg, err := msdsn.Parse(dsn)
				if err != nil {
					return nil, err
				}
				var c *mssql.Connector
				if process {
					c = mssql.NewConnectorWithProcessQueryText(cfg)
				} else {
					c = mssql.NewConnectorConfig(cfg)
				}
				// With a custom Dialer the DSN's keepAlive is ignored
				// (mssql.go:209); the pool's dialer sets keepalive itself.
				c.Dialer = mssqlDialer(dial)
				return c, nil
			},
			// go-mssqldb answers a cancelled context with ATTENTION and then
			// waits cancelDrainTimeout = 5s for confirmation (token.go:118).
			SlowCancel: true,
			// The SPID is read from the packet headers of the login's
			// responses on the socket the pool dialed (session.go): no
			// round trip. Only with full encryption (encrypt=true, strict),
			// where the headers travel inside TLS, is it asked once at
			// connect while reaping is on (OrphansOn).
			WatchSocket: watchSocket,
			SessionQuery: "SELECT CAST(@@SPID AS bigint), CONVERT(varchar(30), c.connect_time, 126) + '|' + CAST(c.client_tcp_port AS varchar(10)) " +
				"FROM sys.dm_exec_connections c WHERE c.session_id = @@SPID",
			SessionCheck:        sessionCheck,
			KillSession:         func(id int64) string { return "KILL " + strconv.FormatInt(id, 10) },
			ReapNeedsPermission: true, // KILL needs ALTER ANY CONNECTION
		})
	}
}

type mssqlDialer pool.DialFunc

func (d mssqlDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

var _ mssql.Dialer = mssqlDialer(nil)
