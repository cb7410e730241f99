package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"
)

// nullConnector is a driver that does nothing, so a benchmark over it
// measures only database/sql and the pool's wrapper.
type nullConnector struct{}

type nullConn struct{}

func (nullConnector) Connect(context.Context) (driver.Conn, error) { return nullConn{}, nil }
func (nullConnector) Driver() driver.Driver                        { return nil }

func (nullConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (nullConn) Close() error                        { return nil }
func (nullConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }
func (nullConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}
func (nullConn) ResetSession(context.Context) error { return nil }
func (nullConn) IsValid() bool                      { return true }

func benchExec(b *testing.B, db *sql.DB) {
	ctx := context.Background()
	db.SetMaxIdleConns(1)
	if _, err := db.ExecContext(ctx, "x"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.ExecContext(ctx, "x"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNullExec compares one Exec through plain database/sql with the
// same through a Pool (liveness at borrow, generation check, op counting).
// Target: ≤ 100 ns/op more and no extra allocation.
func BenchmarkNullExec(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		db := sql.OpenDB(nullConnector{})
		defer db.Close()
		benchExec(b, db)
	})
	b.Run("flapguard", func(b *testing.B) {
		p := OpenDB(nullConnector{}, Config{})
		defer p.Close()
		benchExec(b, p.DB())
	})
}
