package pool

import (
	"context"
	"database/sql/driver"
	"net"
	"strconv"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"
)

// go-mssqldb is flapguard's primary driver, so its support is built in:
// Open("sqlserver", dsn, cfg) and Open("mssql", dsn, cfg) work with only
// this package imported. ("azuresql" lives in go-mssqldb's azuread package
// with the Azure SDK behind it; it works through Open with soft reset and
// liveness, or with full control through OpenFunc and
// azuread.NewConnector + its Dialer field.)
func init() {
	for name, process := range map[string]bool{"sqlserver": false, "mssql": true} {
		RegisterDriver(name, Driver{
			NewConnector: func(dsn string, dial DialFunc) (driver.Connector, error) {
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
			SessionQuery: "SELECT CAST(@@SPID AS bigint), CONVERT(varchar(30), c.connect_time, 126) + '|' + CAST(c.client_tcp_port AS varchar(10)) " +
				"FROM sys.dm_exec_connections c WHERE c.session_id = @@SPID",
			SessionCheck: func(id int64, fp string) string {
				return "SELECT COUNT(*) FROM sys.dm_exec_connections c WHERE c.session_id = " + strconv.FormatInt(id, 10) +
					" AND CONVERT(varchar(30), c.connect_time, 126) + '|' + CAST(c.client_tcp_port AS varchar(10)) = " + fp
			},
			KillSession:         func(id int64) string { return "KILL " + strconv.FormatInt(id, 10) },
			ReapNeedsPermission: true, // KILL needs ALTER ANY CONNECTION
		})
	}
}

type mssqlDialer DialFunc

func (d mssqlDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

var _ mssql.Dialer = mssqlDialer(nil)
