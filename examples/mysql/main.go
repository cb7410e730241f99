// Command mysql shows flapguard with MySQL/MariaDB through
// go-sql-driver/mysql: the drop-in, pool events, a money transfer with
// RunTx and its retry rules, and tunnel events (here from SIGUSR1/SIGUSR2).
//
//	go run ./examples/mysql                   # local server: root@tcp(127.0.0.1:3306)/test
//	go run ./examples/mysql -dsn 'app:pw@tcp(db.example:3306)/app'
//	go run ./examples/mysql -hold 1m          # then: kill -USR1 <pid> (DOWN), kill -USR2 <pid> (UP)
//
// The program is examples/internal/bankdemo, the same for PostgreSQL
// (examples/pgx); this file holds only what differs for MySQL. It runs to
// completion in a few seconds against a reachable server. It creates the
// InnoDB tables flapguard_example_accounts and flapguard_example_transfers
// in the target database, so point it at a scratch database. The user
// needs no privilege beyond those tables: it only KILLs its own
// connections.
//
// Exit codes: 0 done, 1 the server could not be reached or a step failed,
// 2 bad command line.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/examples/internal/bankdemo"
	"github.com/flapguard/flapguard/examples/internal/excmd"
	_ "github.com/flapguard/flapguard/pool/mysqladapter" // registers "mysql" with full socket control
)

var mariadb = bankdemo.Driver{
	Name:       "mysql",
	Server:     "MySQL",
	DSNEnv:     "MYSQL_DSN",
	DefaultDSN: excmd.LocalDSNs["mysql"],
	DSNHelp:    "go-sql-driver/mysql DSN, user:password@tcp(host:port)/db",
	Where: func(dsn string) (string, string, error) {
		mc, err := mysql.ParseDSN(dsn) // its errors do not quote the DSN
		if err != nil {
			return "", "", err
		}
		return fmt.Sprintf("%s@%s(%s)/%s", mc.User, mc.Net, mc.Addr, mc.DBName), mc.Addr, nil
	},

	Schema: []string{
		`CREATE TABLE IF NOT EXISTS flapguard_example_accounts (id int PRIMARY KEY, balance int NOT NULL) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS flapguard_example_transfers (id varchar(64) PRIMARY KEY, from_id int NOT NULL, to_id int NOT NULL, amount int NOT NULL) ENGINE=InnoDB`,
		`INSERT INTO flapguard_example_accounts VALUES (1, 100), (2, 100) ON DUPLICATE KEY UPDATE balance = 100`,
	},
	InsertTransfer: `INSERT INTO flapguard_example_transfers VALUES (?, 1, 2, ?)`,
	Debit:          `UPDATE flapguard_example_accounts SET balance = balance - ? WHERE id = 1`,
	Credit:         `UPDATE flapguard_example_accounts SET balance = balance + ? WHERE id = 2`,
	CountTransfer:  `SELECT COUNT(*) FROM flapguard_example_transfers WHERE id = ?`,

	// Before COMMIT: the session is killed and the next statement finds it
	// gone. At COMMIT: killed just before COMMIT is sent, so COMMIT goes
	// to a connection whose answer never comes, which from the client's
	// side is exactly a path dying under COMMIT.
	LoseBeforeCommit: func(ctx context.Context, db *sql.DB, tx *sql.Tx) error {
		if err := killSelf(ctx, db, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `SELECT 1`)
		return err
	},
	LoseAtCommit: killSelf,
}

// killSelf ends the transaction's server session from another connection,
// the way a server restart or a dead path would, without touching the
// network.
func killSelf(ctx context.Context, db *sql.DB, tx *sql.Tx) error {
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT CONNECTION_ID()`).Scan(&id); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id))
	return err
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return bankdemo.Run(ctx, mariadb, args, stdout, stderr)
}

func main() { excmd.Main("mysql", run) }
