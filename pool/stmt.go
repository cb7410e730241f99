package pool

import (
	"context"
	"database/sql/driver"
)

// stmt wraps a prepared statement so its executions are guarded and their
// errors classified like the conn's own. go-mssqldb runs every query
// through a Stmt (its Conn has no ExecContext/QueryContext, mssql.go:1317),
// so without this its queries would bypass the pool.
type stmt struct {
	driver.Stmt
	c    *conn
	link *rawConn // the driver conn it was prepared on
}

// stmtCC is a stmt whose driver statement converts its own arguments;
// database/sql looks for driver.ColumnConverter on the statement.
type stmtCC struct{ *stmt }

func (s stmtCC) ColumnConverter(idx int) driver.ValueConverter {
	return s.Stmt.(driver.ColumnConverter).ColumnConverter(idx) //lint:ignore SA1019 forwarded as is: database/sql still looks for it on the statement
}

var (
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
	_ driver.ColumnConverter   = stmtCC{} //lint:ignore SA1019 database/sql still looks for ColumnConverter on a driver statement; the wrapper must keep it
)

func wrapStmt(c *conn, st driver.Stmt) driver.Stmt {
	s := &stmt{Stmt: st, c: c, link: c.l()}
	//lint:ignore SA1019 database/sql still looks for ColumnConverter on a driver statement; the wrapper must keep it
	if _, ok := st.(driver.ColumnConverter); ok {
		return stmtCC{s}
	}
	return s
}

// current reports whether the statement belongs to the conn's current
// driver conn. A conn renewed after a reset no longer has it; the error
// (driver.ErrBadConn: nothing was sent) makes database/sql drop this
// connection and prepare again on another.
func (s *stmt) current() error {
	if s.c.l() != s.link {
		return driver.ErrBadConn
	}
	return nil
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.current(); err != nil {
		return nil, err
	}
	trust := s.c.trustUnsent()
	g := s.c.guard(ctx)
	var res driver.Result
	var err error
	if se, ok := s.Stmt.(driver.StmtExecContext); ok {
		res, err = se.ExecContext(ctx, args)
	} else {
		var vals []driver.Value
		if vals, err = namedToValues(args); err == nil {
			if err = ctx.Err(); err == nil {
				res, err = s.Stmt.Exec(vals) //lint:ignore SA1019 deliberate fallback: the driver has nothing newer
			}
		}
	}
	g.done()
	return res, s.c.observeOp(ctx, err, trust)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.current(); err != nil {
		return nil, err
	}
	trust := s.c.trustUnsent()
	g := s.c.guard(ctx)
	var rows driver.Rows
	var err error
	if sq, ok := s.Stmt.(driver.StmtQueryContext); ok {
		rows, err = sq.QueryContext(ctx, args)
	} else {
		var vals []driver.Value
		if vals, err = namedToValues(args); err == nil {
			if err = ctx.Err(); err == nil {
				rows, err = s.Stmt.Query(vals) //lint:ignore SA1019 deliberate fallback: the driver has nothing newer
			}
		}
	}
	return s.c.queried(ctx, g, rows, err, trust)
}

// CheckNamedValue asks the driver's statement, then the driver's conn,
// as database/sql would have.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if nc, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return nc.CheckNamedValue(nv)
	}
	return s.c.CheckNamedValue(nv)
}
