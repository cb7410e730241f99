package mysqladapter_test

import (
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/internal/pooltest"
	_ "github.com/flapguard/flapguard/pool/mysqladapter"
)

// Against the machine's MariaDB on 127.0.0.1:3306 (root, no password, db test).
func TestRealMariaDB(t *testing.T) {
	pooltest.Run(t, pooltest.Target{
		Driver:           "mysql",
		Addr:             "127.0.0.1:3306",
		DSN:              func(addr string) string { return "root@tcp(" + addr + ")/test" },
		SleepSQL:         "SELECT SLEEP(30)",
		SessionIDSQL:     "SELECT CONNECTION_ID()",
		SessionExistsSQL: "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
		AdminDriver:      "mysql",
	})
}
