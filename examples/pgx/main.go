// Command pgx shows flapguard with PostgreSQL through pgx's database/sql
// driver: the drop-in, pool events, a money transfer with RunTx and its
// retry rules, and tunnel events (here from SIGUSR1/SIGUSR2).
//
//	go run ./examples/pgx                     # local server: postgres@127.0.0.1:5432/test
//	go run ./examples/pgx -dsn 'postgres://app:pw@db.example:5432/app'
//	go run ./examples/pgx -hold 1m            # then: kill -USR1 <pid> (DOWN), kill -USR2 <pid> (UP)
//
// The program is examples/internal/bankdemo, the same for MySQL
// (examples/mysql); this file holds only what differs for pgx. It runs to
// completion in a few seconds against a reachable server. It creates the
// tables flapguard_example_accounts and flapguard_example_transfers (and a
// demo trigger) in the target database, so point it at a scratch database.
//
// Exit codes: 0 done, 1 the server could not be reached or a step failed,
// 2 bad command line.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/flapguard/flapguard/examples/internal/bankdemo"
	"github.com/flapguard/flapguard/examples/internal/excmd"
	_ "github.com/flapguard/flapguard/pool/pgxadapter" // registers "pgx" with full socket control
)

var postgres = bankdemo.Driver{
	Name:       "pgx",
	Server:     "PostgreSQL",
	DSNEnv:     "PG_DSN",
	DefaultDSN: excmd.LocalDSNs["pgx"],
	DSNHelp:    "pgx DSN (URL or key=value)",
	Where: func(dsn string) (string, string, error) {
		pc, err := pgx.ParseConfig(dsn) // its errors redact the password themselves
		if err != nil {
			return "", "", err
		}
		addr := fmt.Sprintf("%s:%d", pc.Host, pc.Port)
		return fmt.Sprintf("%s@%s/%s", pc.User, addr, pc.Database), addr, nil
	},

	Schema: []string{
		`CREATE TABLE IF NOT EXISTS flapguard_example_accounts (id int PRIMARY KEY, balance int NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS flapguard_example_transfers (id text PRIMARY KEY, from_id int NOT NULL, to_id int NOT NULL, amount int NOT NULL)`,
		`INSERT INTO flapguard_example_accounts VALUES (1, 100), (2, 100) ON CONFLICT (id) DO UPDATE SET balance = 100`,
		// Demo only: a deferred trigger that ends its own session at
		// COMMIT for transfers whose id starts with "doomed-", so the
		// connection is lost while COMMIT is in flight.
		`CREATE OR REPLACE FUNCTION flapguard_example_die_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_terminate_backend(pg_backend_pid());
			PERFORM pg_sleep(5); -- the termination lands here
			RETURN NULL;
		END $$`,
		`DROP TRIGGER IF EXISTS flapguard_example_die_at_commit ON flapguard_example_transfers`,
		`CREATE CONSTRAINT TRIGGER flapguard_example_die_at_commit AFTER INSERT ON flapguard_example_transfers
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id LIKE 'doomed-%')
			EXECUTE FUNCTION flapguard_example_die_at_commit()`,
	},
	InsertTransfer: `INSERT INTO flapguard_example_transfers VALUES ($1, 1, 2, $2)`,
	Debit:          `UPDATE flapguard_example_accounts SET balance = balance - $1 WHERE id = 1`,
	Credit:         `UPDATE flapguard_example_accounts SET balance = balance + $1 WHERE id = 2`,
	CountTransfer:  `SELECT count(*) FROM flapguard_example_transfers WHERE id = $1`,

	// The session terminates itself; the trigger above handles COMMIT.
	LoseBeforeCommit: func(ctx context.Context, _ *sql.DB, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_terminate_backend(pg_backend_pid()), pg_sleep(5)`)
		return err
	},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return bankdemo.Run(ctx, postgres, args, stdout, stderr)
}

func main() { excmd.Main("pgx", run) }
