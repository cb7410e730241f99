//go:build linux

package labrun

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	mssql "github.com/microsoft/go-mssqldb"

	"github.com/flapguard/flapguard/internal/lab"
	"github.com/flapguard/flapguard/internal/tdsserver"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
	_ "github.com/flapguard/flapguard/pool/mysqladapter"
	_ "github.com/flapguard/flapguard/pool/pgxadapter"
)

func init() {
	// go-sql-driver/mysql logs every broken connection to stderr; the lab
	// breaks hundreds on purpose. The tables say what happened.
	mysql.SetLogger(log.New(io.Discard, "", 0))
}

// tracker records the sockets a plain side dials, so its hung requests can
// be released at the end of a scenario (a plain pool has no Sever).
type tracker struct {
	dial  lab.DialFunc
	mu    sync.Mutex
	conns []net.Conn
}

func (tr *tracker) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := tr.dial(ctx, network, addr)
	if err == nil {
		tr.mu.Lock()
		tr.conns = append(tr.conns, c)
		tr.mu.Unlock()
	}
	return c, err
}

func (tr *tracker) closeAll() int {
	tr.mu.Lock()
	cs := tr.conns
	tr.conns = nil
	tr.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return len(cs)
}

// Target is a server in the lab and how to build both sides for it.
type Target struct {
	Server string // "postgres", "mariadb", "tds"
	Query  string // the workload's cheap statement
	Sleep  func(d time.Duration) string
	Build  func(t testing.TB, cfg pool.Config, workers int) (plain, fg *Side)
}

func sized(db *sql.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
}

func newPool(t testing.TB, driverName, dsn string, cfg pool.Config, workers int) *Side {
	if os.Getenv("FLAPGUARD_LAB_EVENTS") != "" && cfg.OnEvent == nil {
		// Diagnostics: every pool event in the test's log.
		t0 := time.Now()
		cfg.OnEvent = func(ev pool.Event) { t.Logf("pool event +%v: %s", time.Since(t0).Round(time.Millisecond), ev) }
	}
	p, err := pool.Open(driverName, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sized(p.DB(), workers)
	t.Cleanup(func() { p.Close() })
	return &Side{Name: "flapguard", DB: p.DB(), Pool: p, Sever: func() int { p.Sever("scenario end"); return 0 }}
}

// PostgresTarget: plain is pgx stdlib with pgx's default dialer (a zero
// net.Dialer); flapguard is pool.Open("pgx") with the zero Config.
func PostgresTarget(l *lab.Lab, pg *lab.Postgres) Target {
	countApp := func(app string) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			var n int
			err := pg.Admin().QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n)
			return n, err
		}
	}
	return Target{
		Server: "postgres",
		Query:  "SELECT 1",
		Sleep:  func(d time.Duration) string { return fmt.Sprintf("SELECT pg_sleep(%g)", d.Seconds()) },
		Build: func(t testing.TB, cfg pool.Config, workers int) (*Side, *Side) {
			pcfg, err := pgx.ParseConfig(pg.DSN() + "&application_name=plain")
			if err != nil {
				t.Fatal(err)
			}
			tr := &tracker{dial: l.AppDialer(&net.Dialer{})}
			pcfg.DialFunc = tr.DialContext
			db := stdlib.OpenDB(*pcfg)
			sized(db, workers)
			t.Cleanup(func() { tr.closeAll(); db.Close() })
			plain := &Side{Name: "plain", DB: db, Sever: tr.closeAll, Sessions: countApp("plain")}
			cfg.Dial = l.DialApp
			fg := newPool(t, "pgx", pg.DSN()+"&application_name=flapguard", cfg, workers)
			fg.Sessions = countApp("flapguard")
			return plain, fg
		},
	}
}

// MariaDBTarget: plain is go-sql-driver/mysql as users configure it; the two
// sides log in as different users so their sessions can be told apart.
func MariaDBTarget(t testing.TB, l *lab.Lab, m *lab.MariaDB) Target {
	for _, u := range []string{"plain", "flapguard"} {
		for _, q := range []string{
			fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY ''", u),
			fmt.Sprintf("GRANT ALL ON test.* TO '%s'@'%%'", u),
		} {
			if _, err := m.Admin().Exec(q); err != nil {
				t.Fatalf("mariadb: %s: %v", q, err)
			}
		}
	}
	countUser := func(u string) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			var n int
			err := m.Admin().QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", u).Scan(&n)
			return n, err
		}
	}
	return Target{
		Server: "mariadb",
		Query:  "SELECT 1",
		Sleep:  func(d time.Duration) string { return fmt.Sprintf("SELECT SLEEP(%g)", d.Seconds()) },
		Build: func(t testing.TB, cfg pool.Config, workers int) (*Side, *Side) {
			tr := &tracker{dial: l.AppDialer(&net.Dialer{})}
			mc := m.Config(tr.DialContext)
			mc.User = "plain"
			conn, err := mysql.NewConnector(mc)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(conn)
			sized(db, workers)
			t.Cleanup(func() { tr.closeAll(); db.Close() })
			plain := &Side{Name: "plain", DB: db, Sever: tr.closeAll, Sessions: countUser("plain")}
			cfg.Dial = l.DialApp
			fg := newPool(t, "mysql", strings.Replace(m.DSN(), "root@", "flapguard@", 1), cfg, workers)
			fg.Sessions = countUser("flapguard")
			return plain, fg
		},
	}
}

type mssqlDialer lab.DialFunc

func (d mssqlDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

// StartTDS runs the TDS test double in the lab's db namespace.
func StartTDS(t testing.TB, l *lab.Lab) (*tdsserver.Server, string) {
	srv := tdsserver.New(tdsserver.Config{})
	ln, err := l.ListenDB("tcp", l.DBAddr().String()+":1433")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// TDSTarget: plain is go-mssqldb with its default keepalive (30s) on the
// lab dialer; flapguard is pool.Open("sqlserver").
func TDSTarget(l *lab.Lab, srv *tdsserver.Server, addr string) Target {
	dsn := func(user string) string {
		return "sqlserver://" + user + ":pw@" + addr + "?database=test&encrypt=disable"
	}
	countUser := func(u string) func(context.Context) (int, error) {
		return func(context.Context) (int, error) {
			n := 0
			for _, s := range srv.Sessions() {
				if s.User == u {
					n++
				}
			}
			return n, nil
		}
	}
	return Target{
		Server: "tds",
		Query:  "select 1",
		Sleep: func(d time.Duration) string {
			return fmt.Sprintf("waitfor delay '00:00:%02d'", int(d.Seconds()))
		},
		Build: func(t testing.TB, cfg pool.Config, workers int) (*Side, *Side) {
			c, err := mssql.NewConnector(dsn("plain"))
			if err != nil {
				t.Fatal(err)
			}
			// go-mssqldb's default dialer: keepalive 30s (mssql.go:40-46, docs/drivers.md).
			tr := &tracker{dial: l.AppDialer(&net.Dialer{KeepAlive: 30 * time.Second})}
			c.Dialer = mssqlDialer(tr.DialContext)
			db := sql.OpenDB(c)
			sized(db, workers)
			t.Cleanup(func() { tr.closeAll(); db.Close() })
			plain := &Side{Name: "plain", DB: db, Sever: tr.closeAll, Sessions: countUser("plain")}
			cfg.Dial = l.DialApp
			fg := newPool(t, "sqlserver", dsn("flapguard"), cfg, workers)
			fg.Sessions = countUser("flapguard")
			return plain, fg
		},
	}
}
