package pool

import "database/sql/driver"

// DriverConn unwraps what sql.Conn.Raw hands its callback down to the
// driver's own conn, through every wrapper that follows the Raw()
// driver.Conn convention (flapguard's, otelsql's, ...):
//
//	err := sqlConn.Raw(func(dc any) error {
//		pc := pool.DriverConn(dc).(*stdlib.Conn).Conn() // pgx: CopyFrom, WaitForNotification, ...
//		_, err := pc.CopyFrom(ctx, pgx.Identifier{"t"}, cols, src)
//		return err
//	})
//
// A value that is not a wrapper is returned as it is.
//
// What goes through the raw conn bypasses the pool's bookkeeping: a lost
// connection found there is not classified or reported, the cancel guard
// does not watch it, and its operations do not count as proof that the
// path works. The pool still owns the conn: do not Close it (database/sql
// would then fail its next use with driver.ErrBadConn, and retry that
// elsewhere if nothing was sent); if it breaks, return an error wrapping
// driver.ErrBadConn from the Raw callback and database/sql discards it.
func DriverConn(c any) any {
	for range 16 { // a cycle of wrappers must not hang the caller
		w, ok := c.(interface{ Raw() driver.Conn })
		if !ok {
			return c
		}
		inner := w.Raw()
		if inner == nil {
			return c
		}
		c = inner
	}
	return c
}
