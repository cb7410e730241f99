package pgxadapter_test

import (
	"context"
	"database/sql"
	"runtime"
	"testing"

	"github.com/flapguard/flapguard/pool"
)

const benchDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BenchmarkPostgres16 runs `SELECT 1` from 16 goroutines over loopback
// PostgreSQL, plain database/sql + pgx vs a flapguard Pool. Compare ns/op
// (lower is more throughput); the target is flapguard ≥ 0.97× plain's
// throughput. go test -run XXX -bench Postgres16 -count 6 ./pool/pgxadapter/
func BenchmarkPostgres16(b *testing.B) {
	run := func(b *testing.B, db *sql.DB) {
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		if err := db.Ping(); err != nil {
			b.Skipf("PostgreSQL not reachable: %v", err)
		}
		ctx := context.Background()
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var x int
			for pb.Next() {
				if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&x); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("plain", func(b *testing.B) {
		db, err := sql.Open("pgx", benchDSN)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db)
	})
	b.Run("flapguard", func(b *testing.B) {
		p, err := pool.Open("pgx", benchDSN, pool.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		run(b, p.DB())
	})
}
