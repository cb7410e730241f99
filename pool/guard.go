package pool

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"
	"sync"
	"time"
)

// cancelGuard closes a connection's socket Config.CancelGrace after the
// caller's context ends, if the driver is still busy. Only drivers that wait
// long for a cancel acknowledgement need it: go-mssqldb sends ATTENTION and
// waits cancelDrainTimeout = 5s (token.go:118), so a query on a blackholed
// conn with a 2s deadline would return at 7s.
type cancelGuard struct {
	l    *rawConn
	p    *Pool
	stop func() bool

	mu       sync.Mutex // protects finished and timer
	finished bool
	timer    *time.Timer
}

// guard arms a cancelGuard for one operation; it returns nil (a valid
// receiver for done) when none is needed, so the common path allocates
// nothing.
func (c *conn) guard(ctx context.Context) *cancelGuard {
	if c.l().socks == nil || !c.p.drv.SlowCancel || c.p.cfg.CancelGrace == off || ctx.Done() == nil {
		return nil
	}
	g := &cancelGuard{l: c.l(), p: c.p}
	g.stop = context.AfterFunc(ctx, g.fire)
	return g
}

func (g *cancelGuard) fire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.finished {
		return
	}
	g.timer = time.AfterFunc(g.p.cfg.CancelGrace, g.sever)
}

func (g *cancelGuard) sever() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.finished {
		return
	}
	g.finished = true
	// Mark bad first: the driver must not get this conn back in the pool.
	g.l.bad.Store(true)
	n := g.l.socks.closeAll()
	g.p.stats.severedSockets.Add(uint64(n))
}

// done disarms the guard; the operation has returned.
func (g *cancelGuard) done() {
	if g == nil {
		return
	}
	g.stop()
	g.mu.Lock()
	g.finished = true
	if g.timer != nil {
		g.timer.Stop()
	}
	g.mu.Unlock()
}

// guardedRows keeps a cancelGuard armed while rows are read, and forwards
// every optional Rows interface, returning database/sql's own defaults
// where the driver's rows lack one.
type guardedRows struct {
	driver.Rows
	g *cancelGuard
}

var (
	_ driver.RowsNextResultSet              = (*guardedRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*guardedRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*guardedRows)(nil)
	_ driver.RowsColumnTypeLength           = (*guardedRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*guardedRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*guardedRows)(nil)
)

func (r *guardedRows) Close() error {
	err := r.Rows.Close()
	r.g.done()
	return err
}

func (r *guardedRows) HasNextResultSet() bool {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.HasNextResultSet()
	}
	return false
}

func (r *guardedRows) NextResultSet() error {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return io.EOF
}

func (r *guardedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]() // database/sql's default
}

func (r *guardedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *guardedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *guardedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *guardedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
