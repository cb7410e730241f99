// Package pgxadapter gives pgx (github.com/jackc/pgx/v5, through its
// database/sql driver stdlib) full flapguard protection. Import it for its
// side effect, the way database/sql drivers are imported:
//
//	import _ "github.com/flapguard/flapguard/pool/pgxadapter"
//
//	p, err := pool.Open("pgx", "postgres://app@db.example:5432/app", pool.Config{})
//
// The pool then dials every socket through pgx's Config.DialFunc, so it can
// harden, track and sever them, and it reads pgx's errors with Classifier.
// A program that does not import this package compiles no pgx code.
package pgxadapter

import (
	"database/sql/driver"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/pool"
)

func init() {
	d := pool.Driver{
		NewConnector:  NewConnector,
		Classifier:    Classifier,
		ClosedAtStart: closedAtStart,
		// A role may terminate its own backends without extra privileges.
		SessionQuery: "SELECT pid::bigint, coalesce(client_port, -1)::text || '@' || backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
		SessionCheck: func(id int64, fp string) string {
			return fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND coalesce(client_port, -1)::text || '@' || backend_start::text = %s", id, fp)
		},
		KillSession: func(id int64) string {
			return fmt.Sprintf("SELECT pg_terminate_backend(%d)", id)
		},
	}
	// stdlib registers both names with database/sql (stdlib/sql.go:116-118).
	pool.RegisterDriver("pgx", d)
	pool.RegisterDriver("pgx/v5", d)
}

// NewConnector returns a pgx stdlib connector for dsn whose sockets are
// dialed with dial. pgx also dials through it to send cancel requests.
// DSN settings keep their meaning; connect_timeout still bounds the whole
// connection attempt (pgconn/pgconn.go:262).
func NewConnector(dsn string, dial pool.DialFunc) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.DialFunc = pgconn.DialFunc(dial)
	return stdlib.GetConnector(*cfg), nil
}

// closedAtStart lets the pool believe pgx's "safe to retry" only for an
// operation that began on an already closed conn (stdlib/sql.go:502 and
// :520 answer ErrBadConn then, truly before sending anything). Measured
// with pgx v5.12.0 against PostgreSQL 15 (TestSafeToRetryAfterSend): a
// peer RST while `SELECT nextval('s'), pg_sleep(1)` runs makes Conn.Exec
// return *pgconn.connLockError "conn closed" with SafeToRetry() == true,
// stdlib turns that into driver.ErrBadConn (stdlib/sql.go:512), and plain
// database/sql runs the statement again: a duplicated write.
func closedAtStart(c driver.Conn) bool {
	sc, ok := c.(*stdlib.Conn)
	return ok && sc.Conn().IsClosed()
}
