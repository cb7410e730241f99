// Command quickstart is the README's quick start, kept compiling: the two
// changed lines of a service that used sql.Open, and the one adapter
// import it needs (a program compiles only the drivers it imports).
package main

import (
	"context"
	"database/sql"
	"errors"
	"log"
	"os"

	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter" // "sqlserver" (go-mssqldb); pgxadapter: "pgx", mysqladapter: "mysql"
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
	// Lost before COMMIT: retried. Lost during COMMIT: reported, never run twice.
	err = p.RunTx(ctx, pool.RetryPolicy{}, nil, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE ledger SET balance = balance - 10 WHERE id = 1")
		return err
	})
	if errors.Is(err, pool.ErrOutcomeUnknown) {
		log.Print("the connection died during COMMIT: check before running it again")
	}
}
