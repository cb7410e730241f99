package compat

import (
	"context"
	"database/sql/driver"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flapguard/flapguard/pool"
)

// sql.Conn.Raw hands flapguard's own conn to the callback;
// pool.DriverConn unwraps it (through Raw() driver.Conn, the otelsql
// convention) to the driver's conn, and returns a driver's conn (the plain
// side's) as it is. So the same callback works on both sides.

// onServer runs f as a subtest for the server called name only.
func onServer(t *testing.T, name string, f func(t *testing.T, srv *server)) {
	t.Helper()
	for _, srv := range servers {
		if srv.name == name {
			t.Run(name, func(t *testing.T) { f(t, srv) })
			return
		}
	}
	t.Fatalf("no server %q", name)
}

// pgxConn is the callback's way to pgx: what the pool's users will write.
func pgxConn(dc any) (*pgx.Conn, error) {
	sc, ok := pool.DriverConn(dc).(*stdlib.Conn)
	if !ok {
		return nil, fmt.Errorf("pool.DriverConn(%T) = %T, not *stdlib.Conn", dc, pool.DriverConn(dc))
	}
	return sc.Conn(), nil
}

type copyResult struct {
	DriverConn  string
	SameSession bool
	Copied      int64
	DupErr      string
	ConnAfter   []int64
	DBAfter     []int64
}

// TestRawPgxCopyFrom: pgx's CopyFrom on the driver conn reached through
// Raw, on the session database/sql holds; a failing COPY; the rows seen
// afterwards through the same sql.Conn and through the pool.
func TestRawPgxCopyFrom(t *testing.T) {
	onServer(t, "postgres", func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r copyResult) {
			tbl := s.createTable(t, "copy", "id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty INT NOT NULL")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := s.db.Conn(ctx)
			must(t, "conn", err)
			defer conn.Close()
			var pid uint32
			must(t, "backend pid", conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid))

			rows := make([][]any, 500)
			for i := range rows {
				rows[i] = []any{int64(i + 1), fmt.Sprintf("row-%03d", i), int32(i % 7)}
			}
			cols := []string{"id", "name", "qty"}
			must(t, "raw copy", conn.Raw(func(dc any) error {
				r.DriverConn = fmt.Sprintf("%T", pool.DriverConn(dc))
				pc, err := pgxConn(dc)
				if err != nil {
					return err
				}
				r.SameSession = pc.PgConn().PID() == pid
				r.Copied, err = pc.CopyFrom(ctx, pgx.Identifier{tbl}, cols, pgx.CopyFromRows(rows))
				return err
			}))
			if r.Copied == 0 {
				t.Fatal("CopyFrom copied nothing")
			}
			err = conn.Raw(func(dc any) error {
				pc, err := pgxConn(dc)
				if err != nil {
					return err
				}
				_, err = pc.CopyFrom(ctx, pgx.Identifier{tbl}, cols, pgx.CopyFromRows(rows[:3]))
				return err
			})
			r.DupErr = wantErr(t, "copy duplicates", err)

			sum := "SELECT count(*), coalesce(sum(qty), 0), coalesce(max(id), 0) FROM " + tbl
			r.ConnAfter, r.DBAfter = make([]int64, 3), make([]int64, 3)
			must(t, "conn after", conn.QueryRowContext(ctx, sum).Scan(&r.ConnAfter[0], &r.ConnAfter[1], &r.ConnAfter[2]))
			must(t, "db after", s.db.QueryRowContext(ctx, sum).Scan(&r.DBAfter[0], &r.DBAfter[1], &r.DBAfter[2]))
			return r
		})
	})
}

type notifyResult struct {
	DriverConn string
	Received   []string
	FromOther  bool
	TimeoutErr string
	ConnAfter  string
	DBAfter    stillWorks
}

// TestRawPgxListenNotify: LISTEN on the driver conn reached through Raw,
// notifications sent through the pool (another connection) received in
// order with WaitForNotification, then a wait that times out (pgx closes
// its conn when a wait's context ends) and what the sql.Conn and the pool
// do after it.
func TestRawPgxListenNotify(t *testing.T) {
	onServer(t, "postgres", func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r notifyResult) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			channel := s.prefix + "events"
			conn, err := s.db.Conn(ctx)
			must(t, "conn", err)
			defer conn.Close()
			payloads := []string{"one", "two", `{"three":3}`}
			must(t, "raw listen", conn.Raw(func(dc any) error {
				r.DriverConn = fmt.Sprintf("%T", pool.DriverConn(dc))
				pc, err := pgxConn(dc)
				if err != nil {
					return err
				}
				if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
					return err
				}
				for _, p := range payloads {
					if _, err := s.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, p); err != nil {
						return err
					}
				}
				r.FromOther = true
				for range payloads {
					n, err := pc.WaitForNotification(ctx)
					if err != nil {
						return err
					}
					r.Received = append(r.Received, n.Channel[len(s.prefix):]+": "+n.Payload)
					r.FromOther = r.FromOther && n.PID != pc.PgConn().PID()
				}
				wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer wcancel()
				_, err = pc.WaitForNotification(wctx)
				r.TimeoutErr = wantErr(t, "wait with nothing sent", err)
				return nil
			}))
			if len(r.Received) == 0 {
				t.Fatal("no notification received")
			}
			r.ConnAfter = errKind(conn.QueryRowContext(ctx, "SELECT 1").Scan(new(int)))
			conn.Close()
			r.DBAfter = sqlAfterCancel(t, s.db)
			return r
		})
	})
}

type mysqlRawResult struct {
	DriverConn  string
	Implements  []string
	SameSession bool
	RawValue    string
	SQLValue    int64
	RawErr      string
}

// TestRawMySQL: the go-sql-driver/mysql conn (an unexported type) reached
// through Raw is the session database/sql holds: a variable set on it
// directly is seen through the sql.Conn, its optional interfaces are those
// of the plain driver conn, and an error from it comes back through Raw
// unchanged.
func TestRawMySQL(t *testing.T) {
	onServer(t, "mysql", func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r mysqlRawResult) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := s.db.Conn(ctx)
			must(t, "conn", err)
			defer conn.Close()
			var id int64
			must(t, "connection id", conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id))

			must(t, "raw", conn.Raw(func(dc any) error {
				d := pool.DriverConn(dc)
				r.DriverConn = fmt.Sprintf("%T", d)
				for _, i := range []struct {
					name string
					ok   bool
				}{
					{"Pinger", is[driver.Pinger](d)},
					{"ExecerContext", is[driver.ExecerContext](d)},
					{"QueryerContext", is[driver.QueryerContext](d)},
					{"ConnPrepareContext", is[driver.ConnPrepareContext](d)},
					{"ConnBeginTx", is[driver.ConnBeginTx](d)},
					{"NamedValueChecker", is[driver.NamedValueChecker](d)},
					{"SessionResetter", is[driver.SessionResetter](d)},
					{"Validator", is[driver.Validator](d)},
				} {
					r.Implements = append(r.Implements, fmt.Sprintf("%s=%v", i.name, i.ok))
				}
				ex, ok1 := d.(driver.ExecerContext)
				q, ok2 := d.(driver.QueryerContext)
				if !ok1 || !ok2 {
					return fmt.Errorf("driver conn %T cannot execute", d)
				}
				if _, err := ex.ExecContext(ctx, "SET @fgc_raw = 6 * 7", nil); err != nil {
					return err
				}
				rows, err := q.QueryContext(ctx, "SELECT CONNECTION_ID(), @fgc_raw", nil)
				if err != nil {
					return err
				}
				defer rows.Close()
				vals := make([]driver.Value, 2)
				if err := rows.Next(vals); err != nil {
					return err
				}
				r.SameSession = text(vals[0]) == fmt.Sprint(id)
				r.RawValue = fmt.Sprintf("%T %s", vals[1], text(vals[1]))
				return nil
			}))
			must(t, "variable through sql.Conn", conn.QueryRowContext(ctx, "SELECT @fgc_raw").Scan(&r.SQLValue))
			r.RawErr = wantErr(t, "raw error", conn.Raw(func(dc any) error {
				_, err := pool.DriverConn(dc).(driver.ExecerContext).ExecContext(ctx, "SELECT * FROM no_such_table_"+s.prefix, nil)
				return err
			}))
			return r
		})
	})
}

// text shows a driver value; the text protocol gives []byte.
func text(v driver.Value) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

func is[T any](v any) bool {
	_, ok := v.(T)
	return ok
}
