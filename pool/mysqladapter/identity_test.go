package mysqladapter_test

import (
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/pool"
)

// A login the server refuses comes back as the driver's *mysql.MySQLError
// itself, so a type assertion holds as with plain database/sql (on main it
// came wrapped in *detect.ConnectError).
func TestConnectErrorIsTheDriversOwn(t *testing.T) {
	requireMariaDB(t)
	p, err := pool.Open("mysql", "flapguard_nosuchuser:x9notapw@tcp(127.0.0.1:3306)/test", pool.Config{ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.DB().Exec("DO 1")
	me, ok := err.(*mysql.MySQLError)
	if !ok || me.Number != 1045 {
		t.Fatalf("got %T %v; want *mysql.MySQLError 1045 itself", err, err)
	}
}
