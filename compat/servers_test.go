package compat

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	gormpg "gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mysqladapter" // "mysql" with socket control
	_ "github.com/flapguard/flapguard/pool/pgxadapter"   // "pgx" with socket control
)

// server is one of the shared database servers every test runs against,
// with what differs between them.
type server struct {
	name   string // subtest name
	driver string // database/sql and flapguard driver name
	dsn    string
	// serialPK is the column type of an auto-increment primary key.
	serialPK string
	// sleep returns a query that runs for secs seconds, returns one
	// integer column, and contains tag so that it can be found among the
	// server's running queries.
	sleep func(secs int, tag string) string
	// running is a query with one parameter (a LIKE pattern) counting the
	// sessions whose current query matches it.
	running string
	// sessionsMatching lists the ids of the other sessions whose (last)
	// query matches a LIKE pattern; killSession ends one of them.
	sessionsMatching string
	killSession      func(id int64) string
	// dialector is GORM's dialect over an existing *sql.DB.
	dialector func(*sql.DB) gorm.Dialector
}

var servers = []*server{
	{
		name:     "postgres",
		driver:   "pgx",
		dsn:      envOr("PG_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"),
		serialPK: "BIGSERIAL PRIMARY KEY",
		sleep: func(secs int, tag string) string {
			return fmt.Sprintf("SELECT count(*) FROM pg_sleep(%d) WHERE '%s' <> ''", secs, tag)
		},
		running:          "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
		sessionsMatching: "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
		killSession:      func(id int64) string { return fmt.Sprintf("SELECT pg_terminate_backend(%d)", id) },
		dialector:        func(db *sql.DB) gorm.Dialector { return gormpg.New(gormpg.Config{Conn: db}) },
	},
	{
		name:     "mysql",
		driver:   "mysql",
		dsn:      mysqlDSN(envOr("MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test?timeout=5s")),
		serialPK: "BIGINT AUTO_INCREMENT PRIMARY KEY",
		sleep: func(secs int, tag string) string {
			return fmt.Sprintf("SELECT SLEEP(%d) + LENGTH('%s')", secs, tag)
		},
		running:          "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Query', 'Execute') AND INFO LIKE ? AND ID <> CONNECTION_ID()",
		sessionsMatching: "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
		killSession:      func(id int64) string { return fmt.Sprintf("KILL %d", id) },
		dialector:        func(db *sql.DB) gorm.Dialector { return gormmysql.New(gormmysql.Config{Conn: db}) },
	},
}

// mysqlDSN turns on parseTime, which GORM's time fields need.
func mysqlDSN(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return dsn // reported by the first Open
	}
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// mustReach: CI (CI=true) and the project's full run (FLAPGUARD_LAB=require)
// fail on an unreachable server; elsewhere the test is skipped.
func mustReach() bool {
	return os.Getenv("FLAPGUARD_LAB") == "require" || os.Getenv("CI") == "true"
}

var (
	reachMu sync.Mutex // protects reached
	reached = map[string]error{}
)

// admin returns a plain *sql.DB for srv, for setup, cleanup and watching
// the server; it fails or skips the test if srv cannot be reached (checked
// once per run).
func (srv *server) admin(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open(srv.driver, srv.dsn)
	if err != nil {
		t.Fatalf("%s: open: %v", srv.name, err)
	}
	t.Cleanup(func() { db.Close() })
	reachMu.Lock()
	perr, checked := reached[srv.name]
	if !checked {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		perr = db.PingContext(ctx)
		cancel()
		reached[srv.name] = perr
	}
	reachMu.Unlock()
	if perr != nil {
		if mustReach() {
			t.Fatalf("%s not reachable (CI=true or FLAPGUARD_LAB=require): %v", srv.name, perr)
		}
		t.Skipf("%s not reachable, skipping: %v", srv.name, perr)
	}
	return db
}

// forEachServer runs f as a subtest per server.
func forEachServer(t *testing.T, f func(t *testing.T, srv *server)) {
	t.Helper()
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) { f(t, srv) })
	}
}

// side is one of the two ways to reach a server: plain database/sql or
// flapguard. Each side has its own tables (prefix), so that both start
// from the same state and their results can be compared.
type side struct {
	name   string // "plain" or "flapguard"
	srv    *server
	db     *sql.DB
	pool   *pool.Pool // nil for plain
	prefix string     // of every table this side creates
	admin  *sql.DB
}

// table returns the name of this side's table called base.
func (s *side) table(base string) string { return s.prefix + base }

// runID makes this run's table names unique among concurrent runs on the
// shared servers; seq makes them unique among this run's tests.
var (
	runID = strings.ToLower(rand.Text()[:8])
	seq   atomic.Int64
)

// openSide opens one side on srv. It does not close it: the caller (or
// openSides) decides how, since the close tests close the *sql.DB alone.
func openSide(t *testing.T, srv *server, admin *sql.DB, flapguard bool) *side {
	t.Helper()
	s := &side{srv: srv, admin: admin}
	n := seq.Add(1)
	if flapguard {
		p, err := pool.Open(srv.driver, srv.dsn, pool.Config{})
		if err != nil {
			t.Fatalf("pool.Open: %v", err)
		}
		s.name, s.db, s.pool = "flapguard", p.DB(), p
		s.prefix = fmt.Sprintf("fgc_%s_%d_f_", runID, n)
	} else {
		db, err := sql.Open(srv.driver, srv.dsn)
		if err != nil {
			t.Fatalf("sql.Open: %v", err)
		}
		s.name, s.db = "plain", db
		s.prefix = fmt.Sprintf("fgc_%s_%d_p_", runID, n)
	}
	return s
}

// close closes the side as its owner would: the Pool for flapguard.
func (s *side) close() {
	if s.pool != nil {
		s.pool.Close()
		return
	}
	s.db.Close()
}

// openSides opens plain and flapguard on srv, closed when the test ends.
func openSides(t *testing.T, srv *server) []*side {
	t.Helper()
	admin := srv.admin(t)
	var sides []*side
	for _, fg := range []bool{false, true} {
		s := openSide(t, srv, admin, fg)
		t.Cleanup(s.close)
		sides = append(sides, s)
	}
	return sides
}

// dropLater drops this side's tables when the test ends, through the admin
// connection (the side's own *sql.DB may be closed by then), in reverse
// order of the calls, so that a referencing table goes first.
func (s *side) dropLater(t *testing.T, tables ...string) {
	t.Helper()
	t.Cleanup(func() {
		for i := len(tables) - 1; i >= 0; i-- {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := s.admin.ExecContext(ctx, "DROP TABLE IF EXISTS "+tables[i]); err != nil {
				t.Errorf("drop %s: %v", tables[i], err)
			}
			cancel()
		}
	})
}

// createTable creates this side's table base with the given columns
// ("%PK" stands for the server's auto-increment primary key) and drops it
// when the test ends. It returns the table's name.
func (s *side) createTable(t *testing.T, base, columns string) string {
	t.Helper()
	name := s.table(base)
	ddl := fmt.Sprintf("CREATE TABLE %s (%s)", name, strings.ReplaceAll(columns, "%PK", s.srv.serialPK))
	s.dropLater(t, name)
	if _, err := s.db.Exec(ddl); err != nil {
		t.Fatalf("%s: %v", ddl, err)
	}
	return name
}

// gorm opens GORM over the side's *sql.DB, as an application would hand
// p.DB() to it: errors translated (gorm.ErrDuplicatedKey needs the driver's
// own error type), tables named with the side's prefix, log lines to t.Log.
func (s *side) gorm(t *testing.T) *gorm.DB {
	t.Helper()
	gdb, err := gorm.Open(s.srv.dialector(s.db), &gorm.Config{
		TranslateError: true,
		NamingStrategy: gormNaming(s.prefix),
		Logger:         gormLogger(t),
	})
	if err != nil {
		t.Fatalf("gorm.Open: %v", err)
	}
	return gdb
}

// waitRunning waits until a query containing tag runs on the server. The
// query's own goroutine reports on early if it returns first (a scenario
// mistake: the query was never cancelled).
func (s *side) waitRunning(t *testing.T, tag string, early <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		if err := s.admin.QueryRowContext(ctx, s.srv.running, "%"+tag+"%").Scan(&n); err != nil {
			t.Fatalf("waiting for %q to run: %v", tag, err)
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("query %q never seen running on %s", tag, s.srv.name)
		case err := <-early:
			t.Fatalf("query %q returned before it was seen running: %v", tag, err)
		case <-tick.C:
		}
	}
}

// killLater ends, when the test ends, the server sessions still running a
// query containing tag (a cancelled client may leave its query sleeping on
// the server, and the servers are shared).
func (s *side) killLater(t *testing.T, tag string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rows, err := s.admin.QueryContext(ctx, s.srv.sessionsMatching, "%"+tag+"%")
		if err != nil {
			t.Logf("cleanup: list sessions: %v", err)
			return
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if rows.Scan(&id) == nil {
				ids = append(ids, id)
			}
		}
		rows.Close()
		for _, id := range ids {
			// The session may end by itself meanwhile: not an error.
			s.admin.ExecContext(ctx, s.srv.killSession(id))
		}
	})
}

// newTag returns a string unique to this run, to find a query on the server.
func newTag(what string) string {
	return fmt.Sprintf("fgc_%s_%d_%s", runID, seq.Add(1), what)
}
