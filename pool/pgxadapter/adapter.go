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
// It also sets Config.Tracer (a DSN sets none) to learn which statements
// pgx's statement cache prepares, so that after a known-cause reset the
// rebuilt conns have them prepared before traffic returns (warm.go): the
// first use of each then costs one round trip instead of two.
// A program that does not import this package compiles no pgx code.
package pgxadapter

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/pool"
)

func init() {
	d := pool.Driver{
		NewConnector:  NewConnector,
		Classifier:    classifier,
		ClosedAtStart: closedAtStart,
		Warm:          warm,
		SocketOf:      socketOf,
		// A role may terminate its own backends without extra privileges.
		// The backend PID comes with the startup (pgconn.go:474-476,
		// docs/drivers.md): nothing is asked at connect. A reused pid is
		// told apart by its start time, which must precede our connect.
		SessionOf: func(c driver.Conn) int64 {
			if sc, ok := c.(*stdlib.Conn); ok {
				return int64(sc.Conn().PgConn().PID())
			}
			return 0
		},
		SessionCheck: func(id int64, _ string, minAge time.Duration) string {
			return fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND backend_start <= now() - interval '%d milliseconds'", id, minAge.Milliseconds())
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
//
// A name returned by stdlib.RegisterConnConfig opens the registered config
// as stdlib does: its DialFunc, TLS, tracer and every other setting are
// the caller's, and pgx keeps them private (stdlib/sql.go:331-335, read at
// connect, :372-386), so the pool cannot dial for it. It takes the socket
// pgx dialed instead (SocketOf): hardening, sever and the free check at
// borrow work; what is lost is the pool's dialer during the connect itself
// (Config.DialTimeout, a connect cut by the pool's ConnectTimeout closing
// the socket) and tracking of pgx's cancel-request sockets.
func NewConnector(dsn string, dial pool.DialFunc) (driver.Connector, error) {
	if registeredName(dsn) {
		return stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.DialFunc = pgconn.DialFunc(dial)
	if cfg.Tracer == nil { // a DSN sets none; see warm.go
		cfg.Tracer = &recorder{}
	}
	return stdlib.GetConnector(*cfg, stdlib.OptionShouldPing(shouldPing)), nil
}

// registeredName reports whether dsn is a name stdlib.RegisterConnConfig
// returned ("registeredConnConfig" and a number, stdlib/sql.go:354). Such
// a name is not a connection string pgx could parse, so nothing else is
// taken for one.
func registeredName(dsn string) bool {
	n, ok := strings.CutPrefix(dsn, "registeredConnConfig")
	if !ok || n == "" {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// socketOf is the socket under a pgx conn (pgconn.PgConn.Conn: the TLS
// conn when TLS is on, whose NetConn the pool looks through).
func socketOf(c driver.Conn) net.Conn {
	if sc, ok := c.(*stdlib.Conn); ok {
		return sc.Conn().PgConn().Conn()
	}
	return nil
}

// shouldPing keeps pgx's own rule (ping a conn whose last ResetSession was
// more than 1s ago, stdlib/sql.go:566-598) except where the pool vouches
// for the conn (pool.Pinged): it pinged it itself with its own deadline, or
// the conn was connected or used within Config.LivenessIdle. At most one
// round trip per borrow, as with plain pgx, and none on the first reuse of
// a new conn (pgx measures that one's idle time from a zero time).
func shouldPing(ctx context.Context, p stdlib.ShouldPingParams) bool {
	return !pool.Pinged(ctx) && p.IdleDuration > time.Second
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
