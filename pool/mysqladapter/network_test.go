package mysqladapter_test

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/pool"
)

// A network registered with mysql.RegisterDialContext (how Cloud SQL-style
// connectors plug in) works through the pool as with plain database/sql:
// the adapter must not set the driver's DialFunc, which overrides the
// registry (on main: "dial flapguard_mydial: unknown network"). The
// registered function does the dialing, with the caller's context.
func TestRegisteredNetwork(t *testing.T) {
	requireMariaDB(t)
	var dials atomic.Int64
	type key struct{}
	mysql.RegisterDialContext("flapguard_mydial", func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		if ctx.Value(key{}) != true {
			t.Error("the registered dialer did not get the caller's context")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
	defer mysql.DeregisterDialContext("flapguard_mydial")
	p, err := pool.Open("mysql", "root@flapguard_mydial(127.0.0.1:3306)/test", pool.Config{ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.WithValue(context.Background(), key{}, true)
	if _, err := p.DB().ExecContext(ctx, "DO 1"); err != nil {
		t.Fatalf("exec over the registered network: %v", err)
	}
	if dials.Load() != 1 {
		t.Fatalf("the registered dialer ran %d times; want 1", dials.Load())
	}
	// Borrowed again at once: nothing is vouched for without a socket to
	// look at, and the driver's own check runs; still one conn.
	if _, err := p.DB().ExecContext(ctx, "DO 1"); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.OpenConnections != 1 || dials.Load() != 1 {
		t.Fatalf("open=%d dials=%d; want the conn reused", st.OpenConnections, dials.Load())
	}
}

func requireMariaDB(t *testing.T) {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:3306")
	if err != nil {
		if os.Getenv("FLAPGUARD_LAB") == "require" || os.Getenv("CI") != "" {
			t.Fatalf("MariaDB on 127.0.0.1:3306 not reachable: %v", err)
		}
		t.Skipf("MariaDB on 127.0.0.1:3306 not reachable: %v", err)
	}
	c.Close()
}
