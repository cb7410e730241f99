package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Frameworks (GORM, sqlx, ent) close the *sql.DB, not the Pool: that alone
// must stop everything the pool runs. Both orders, and both together, are
// safe.
func TestDBCloseAloneStopsThePool(t *testing.T) {
	for _, order := range []string{"db only", "db then pool", "pool then db", "both at once"} {
		t.Run(order, func(t *testing.T) {
			d := &fakeDriver{addr: silentListener(t)}
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			p, err := OpenWithDialer(func(dial DialFunc) (driver.Connector, error) { d.dial = dial; return d, nil }, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.DB().Ping(); err != nil {
				t.Fatal(err)
			}
			switch order {
			case "db only":
				p.DB().Close()
			case "db then pool":
				p.DB().Close()
				p.Close()
			case "pool then db":
				p.Close()
				p.DB().Close()
			case "both at once":
				var wg sync.WaitGroup
				wg.Go(func() { p.Close() })
				wg.Go(func() { p.DB().Close() })
				wg.Wait()
			}
			if !p.closed.Load() {
				t.Fatal("the pool does not know it is closed")
			}
			if err := p.DB().Ping(); err == nil || !strings.Contains(err.Error(), "database is closed") {
				t.Fatalf("ping after close: %v", err)
			}
		})
	}
}

// db.Driver().Open opens the DSN it is given with the driver's own
// driver.Driver, never a connection to the pool's server in disguise.
func TestDriverOpenUsesItsDSN(t *testing.T) {
	m := &dsnRecorder{}
	p := OpenDB(m, Config{ProbeInterval: -1})
	defer p.Close()
	if _, err := p.DB().Driver().Open("other-server"); !errors.Is(err, errRecorded) || m.dsn != "other-server" {
		t.Fatalf("Driver().Open: err %v, opened %q; want the given DSN opened by the driver", err, m.dsn)
	}
	q := OpenDB(noDriverConnector{}, Config{ProbeInterval: -1})
	defer q.Close()
	if _, err := q.DB().Driver().Open("x"); err == nil {
		t.Fatal("a connector without a driver.Driver opened something")
	}
}

var (
	errRecorded       = errors.New("recorded")
	registerNoAdapter sync.Once // sql.Register panics on a second call (go test -count 2)
)

type dsnRecorder struct{ dsn string }

func (m *dsnRecorder) Connect(context.Context) (driver.Conn, error) { return nil, errors.New("no") }
func (m *dsnRecorder) Driver() driver.Driver                        { return m }
func (m *dsnRecorder) Open(dsn string) (driver.Conn, error)         { m.dsn = dsn; return nil, errRecorded }

type noDriverConnector struct{}

func (noDriverConnector) Connect(context.Context) (driver.Conn, error) { return nil, errors.New("no") }
func (noDriverConnector) Driver() driver.Driver                        { return nil }

// A driver database/sql knows but no adapter registered is an error that
// names the import, unless soft mode is asked for.
func TestForgottenAdapterIsAnError(t *testing.T) {
	registerNoAdapter.Do(func() { sql.Register("flapguard-test-noadapter", &dsnRecorder{}) })
	_, err := Open("flapguard-test-noadapter", "x", Config{})
	if err == nil || !strings.Contains(err.Error(), "no flapguard adapter") || !strings.Contains(err.Error(), "AllowSoftMode") {
		t.Fatalf("err = %v; want it to say there is no adapter and how to run without", err)
	}
	p, err := Open("flapguard-test-noadapter", "x", Config{AllowSoftMode: true})
	if err != nil {
		t.Fatalf("soft mode: %v", err)
	}
	defer p.Close()
	if p.Stats().SocketControl {
		t.Fatal("soft mode claims socket control")
	}
	for name, pkg := range map[string]string{"pgx": "pool/pgxadapter", "mysql": "pool/mysqladapter"} {
		_, err := Open(name, "x", Config{})
		t.Logf("%s: %v", name, err)
		if err == nil || !strings.Contains(err.Error(), `import _ "github.com/flapguard/flapguard/`+pkg+`"`) {
			t.Fatalf("%s without its adapter: err = %v; want the import line", name, err)
		}
	}
}

func TestDriverConnUnwrapsThroughWrappers(t *testing.T) {
	p, d := openFake(t, quietConfig(), false)
	c, err := p.DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		if _, ok := dc.(*conn); !ok {
			t.Fatalf("Raw handed %T, want the pool's conn", dc)
		}
		got, ok := DriverConn(outerWrapper{dc.(driver.Conn)}).(*fakeConn)
		if !ok || got.d != d {
			t.Fatalf("DriverConn = %T, want the driver's *fakeConn", DriverConn(dc))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := DriverConn(42); v != 42 {
		t.Fatalf("DriverConn(non-wrapper) = %v", v)
	}
}

// outerWrapper stands for another wrapping driver (otelsql) around ours.
type outerWrapper struct{ driver.Conn }

func (w outerWrapper) Raw() driver.Conn { return w.Conn }
