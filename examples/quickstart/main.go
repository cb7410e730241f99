// Command quickstart is the README's quick start, kept compiling: the two
// changed lines of a service that used sql.Open, with the adapter import
// for each supported driver.
package main

import (
	"context"
	"database/sql"
	"errors"
	"log"
	"os"

	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter" // "sqlserver", "mssql" (go-mssqldb)
	_ "github.com/flapguard/flapguard/pool/mysqladapter" // "mysql" (go-sql-driver/mysql)
	_ "github.com/flapguard/flapguard/pool/pgxadapter"   // "pgx" (pgx v5 stdlib)
)

func main() {
	// was: db, err := sql.Open("sqlserver", os.Getenv("DSN"))
	p, err := pool.Open("sqlserver", os.Getenv("DSN"), pool.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	db := p.DB() // the same *sql.DB as before: hand it to existing code, sqlx, GORM

	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		log.Fatal(err)
	}
	// Retry only what is safe: a transaction lost before COMMIT is retried,
	// one lost during COMMIT is reported, never run twice.
	err = p.RunTx(ctx, pool.RetryPolicy{}, nil, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE ledger SET balance = balance - 10 WHERE id = 1")
		return err
	})
	if errors.Is(err, pool.ErrOutcomeUnknown) {
		log.Print("the connection died during COMMIT: check before running it again")
	}
}
