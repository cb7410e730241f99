//go:build linux

package soak

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/internal/lab"
	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mysqladapter"
	_ "github.com/flapguard/flapguard/pool/pgxadapter"
)

// The ledger: accounts 1..numAccounts start with initialBalance each.
const (
	numAccounts    = 50
	initialBalance = 1000
	maxOpenConns   = 16 // per pool; fewer than the workers, so they queue
)

// dialect is what differs between the SQL servers.
type dialect struct {
	name     string
	driver   string
	ph       func(i int) string // placeholder i (1-based)
	sleep    func(d time.Duration) string
	sumQuery string // total and count of the ledger, as two integers
	schema   []string
	// insert is the statement and arguments inserting client id id.
	insert func(id int64, worker int) (string, []any)
	// slowInsert is the same insert, but the server spends d on it before
	// it commits: a write a fault can catch in flight, whose outcome is
	// then truly unknown. nil: the server cannot do that.
	slowInsert func(id int64, worker int, d time.Duration) (string, []any)
}

var postgresDialect = dialect{
	name:     "postgres",
	driver:   "pgx",
	ph:       func(i int) string { return "$" + strconv.Itoa(i) },
	sleep:    func(d time.Duration) string { return fmt.Sprintf("SELECT pg_sleep(%.3f)", d.Seconds()) },
	sumQuery: "SELECT sum(balance)::bigint, count(*) FROM soak_accounts",
	insert: func(id int64, worker int) (string, []any) {
		return "INSERT INTO soak_inserts VALUES ($1, $2)", []any{id, worker}
	},
	slowInsert: func(id int64, worker int, d time.Duration) (string, []any) {
		return "INSERT INTO soak_inserts SELECT $1::bigint, $2::int FROM pg_sleep($3::float8)", []any{id, worker, d.Seconds()}
	},
	schema: []string{
		"DROP TABLE IF EXISTS soak_inserts, soak_accounts, soak_transfers",
		// No unique index on cid or tid: it would turn a duplicate into an
		// error and hide it. Counting per id finds them.
		"CREATE TABLE soak_inserts (cid bigint NOT NULL, worker int NOT NULL)",
		"CREATE TABLE soak_accounts (id int PRIMARY KEY, balance bigint NOT NULL)",
		"CREATE TABLE soak_transfers (tid bigint NOT NULL, src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL)",
		fmt.Sprintf("INSERT INTO soak_accounts SELECT g, %d FROM generate_series(1, %d) g", initialBalance, numAccounts),
	},
}

var mariadbDialect = dialect{
	name:     "mariadb",
	driver:   "mysql",
	ph:       func(int) string { return "?" },
	sleep:    func(d time.Duration) string { return fmt.Sprintf("SELECT SLEEP(%.3f)", d.Seconds()) },
	sumQuery: "SELECT CAST(SUM(balance) AS SIGNED), COUNT(*) FROM soak_accounts",
	insert: func(id int64, worker int) (string, []any) {
		return "INSERT INTO soak_inserts VALUES (?, ?)", []any{id, worker}
	},
	slowInsert: func(id int64, worker int, d time.Duration) (string, []any) {
		// The row is inserted whatever SLEEP returns (1 if interrupted).
		return "INSERT INTO soak_inserts SELECT ?, ? FROM (SELECT SLEEP(?)) AS s", []any{id, worker, d.Seconds()}
	},
	schema: func() []string {
		s := []string{
			"DROP TABLE IF EXISTS soak_inserts, soak_accounts, soak_transfers",
			"CREATE TABLE soak_inserts (cid bigint NOT NULL, worker int NOT NULL) ENGINE=InnoDB",
			"CREATE TABLE soak_accounts (id int PRIMARY KEY, balance bigint NOT NULL) ENGINE=InnoDB",
			"CREATE TABLE soak_transfers (tid bigint NOT NULL, src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL) ENGINE=InnoDB",
		}
		vals := make([]string, numAccounts)
		for i := range vals {
			vals[i] = fmt.Sprintf("(%d, %d)", i+1, initialBalance)
		}
		return append(s, "INSERT INTO soak_accounts VALUES "+strings.Join(vals, ", "))
	}(),
}

// serverSession is one session of the app as the server sees it.
type serverSession struct {
	id    int64
	port  int // client port
	state string
}

// target is one server under soak with its pool.
type target struct {
	d       dialect
	admin   func() *sql.DB // fault-free path (lab Admin)
	restart func() error
	// sessions lists the server's sessions of the soak's pool.
	sessions func(ctx context.Context) ([]serverSession, error)
	dsn      string

	p      *pool.Pool
	socks  *sockets
	events *eventLog
	warns  *warnLog
}

func postgresTarget(l *lab.Lab, pg *lab.Postgres) *target {
	tg := &target{d: postgresDialect, admin: pg.Admin, restart: pg.Restart,
		dsn: pg.DSN() + "&application_name=soak"}
	tg.sessions = func(ctx context.Context) ([]serverSession, error) {
		return querySessions(ctx, pg.Admin(),
			"SELECT pid::bigint, coalesce(client_port, -1), coalesce(state, '') FROM pg_stat_activity "+
				"WHERE application_name = 'soak' AND backend_type = 'client backend' AND client_addr = $1::inet",
			func(port any) int { return toInt(port) }, l.AppAddr().String())
	}
	return tg
}

// mariadbTarget logs the pool in as its own user 'soak', so the server's
// PROCESSLIST tells its sessions from the admin's.
func mariadbTarget(t *testing.T, l *lab.Lab, m *lab.MariaDB) *target {
	for _, q := range []string{
		"CREATE USER IF NOT EXISTS 'soak'@'%' IDENTIFIED BY ''",
		"GRANT ALL ON test.* TO 'soak'@'%'",
	} {
		if _, err := m.Admin().Exec(q); err != nil {
			t.Fatalf("mariadb: %s: %v", q, err)
		}
	}
	tg := &target{d: mariadbDialect, admin: m.Admin, restart: m.Restart,
		dsn: strings.Replace(m.DSN(), "root@", "soak@", 1)}
	app := l.AppAddr().String()
	tg.sessions = func(ctx context.Context) ([]serverSession, error) {
		return querySessions(ctx, m.Admin(),
			"SELECT ID, HOST, COMMAND FROM information_schema.PROCESSLIST WHERE USER = 'soak'",
			func(host any) int {
				// HOST is "ip:port" as the server saw the client.
				h := string(toBytes(host))
				ap, err := netip.ParseAddrPort(h)
				if err != nil || ap.Addr().String() != app {
					return -1
				}
				return int(ap.Port())
			})
	}
	return tg
}

func querySessions(ctx context.Context, db *sql.DB, q string, port func(any) int, args ...any) ([]serverSession, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []serverSession
	for rows.Next() {
		var s serverSession
		var p any
		if err := rows.Scan(&s.id, &p, &s.state); err != nil {
			return nil, err
		}
		s.port = port(p)
		out = append(out, s)
	}
	return out, rows.Err()
}

func toBytes(v any) []byte {
	switch v := v.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	return []byte(fmt.Sprint(v))
}

func toInt(v any) int {
	n, err := strconv.Atoi(string(toBytes(v)))
	if err != nil {
		return -1
	}
	return n
}

// createSchema makes the tables over the admin path.
func (tg *target) createSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range tg.d.schema {
		if _, err := tg.admin().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: schema: %s: %v", tg.d.name, q, err)
		}
	}
}

// open opens the flapguard pool through the lab, zero Config apart from
// the dialer and the event hook.
func (tg *target) open(t *testing.T, l *lab.Lab, t0 time.Time) {
	tg.socks = &sockets{dial: l.DialApp}
	tg.events = newEventLog()
	tg.warns = &warnLog{t0: t0}
	p, err := pool.Open(tg.d.driver, tg.dsn, pool.Config{Dial: tg.socks.DialContext, OnEvent: tg.events.on, Logger: slog.New(tg.warns)})
	if err != nil {
		t.Fatalf("%s: pool.Open: %v", tg.d.name, err)
	}
	p.DB().SetMaxOpenConns(maxOpenConns)
	p.DB().SetMaxIdleConns(maxOpenConns)
	t.Cleanup(func() { p.Close() })
	tg.p = p
}
