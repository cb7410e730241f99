// Command sqlserver is the flapguard drop-in for a service that talks to
// SQL Server through database/sql and go-mssqldb. Two lines change (marked
// "flapguard:" below); every function that takes a *sql.DB stays as it is.
//
//	go run ./examples/sqlserver -dsn 'sqlserver://app:secret@db.example:1433?database=app'
//	SQLSERVER_DSN='sqlserver://…' go run ./examples/sqlserver
//
// Running it needs a real SQL Server (or anything that speaks TDS: its test,
// main_test.go, uses flapguard's TDS test double). It connects, reports the
// server session that served it, resets the pool, and reports again: the
// session id changes (a new connection) and no query failed.
//
// Exit codes: 0 done, 1 the server could not be reached or a query failed,
// 2 bad command line.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "sqlserver:", err)
		os.Exit(1)
	}
}

// errUsage marks a bad command line (exit code 2); the message was printed.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sqlserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", os.Getenv("SQLSERVER_DSN"), "go-mssqldb DSN, e.g. sqlserver://user:password@host:1433?database=app (default $SQLSERVER_DSN)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sqlserver: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if *dsn == "" {
		fmt.Fprintln(stderr, "sqlserver: no DSN: pass -dsn or set $SQLSERVER_DSN (e.g. sqlserver://user:password@host:1433?database=app)")
		return errUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "sqlserver: -timeout must be positive")
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	fmt.Fprintln(stdout, "server:", redactDSN(*dsn))

	// Before:
	//	db, err := sql.Open("sqlserver", *dsn)
	//	defer db.Close()
	p, err := pool.Open("sqlserver", *dsn, pool.Config{}) // flapguard: 1 of 2
	if err != nil {
		return err // flapguard's errors never carry the DSN's password
	}
	defer p.Close()
	db := p.DB() // flapguard: 2 of 2

	// Unchanged from here: existing code takes the *sql.DB.
	if err := report(ctx, db, stdout); err != nil {
		return err
	}

	// What flapguard adds: when the VPN flaps, discard the whole pool (a
	// tunnel event or the pool's own prober does this by itself; see
	// examples/pgx for events). db stays the same *sql.DB.
	p.Reset("example: simulate a tunnel flap")
	if err := report(ctx, db, stdout); err != nil {
		return err
	}
	s := p.Stats()
	fmt.Fprintf(stdout, "generation %d, resets %d, connections made %d\n", s.Generation, s.Resets, s.Connects)
	return nil
}

// report is the service's own code: it knows nothing about flapguard.
func report(ctx context.Context, db *sql.DB, w io.Writer) error {
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var spid int64
	if err := db.QueryRowContext(ctx, "SELECT @@SPID").Scan(&spid); err != nil {
		return fmt.Errorf("select @@spid: %w", err)
	}
	fmt.Fprintln(w, "served by session", spid)
	return nil
}

var kvPassword = regexp.MustCompile(`(?i)((?:^|[;:])\s*(?:password|pwd)\s*=\s*)("[^"]*"|'[^']*'|\{[^}]*\}|[^;]*)`)

// redactDSN hides the password of a DSN in any of go-mssqldb's forms:
// sqlserver:// URLs (user info or a password= query parameter), ADO
// ("server=…;password=…") and ODBC ("odbc:…;pwd=…").
func redactDSN(dsn string) string {
	if strings.HasPrefix(strings.ToLower(dsn), "sqlserver://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "sqlserver://(unparsable DSN)"
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "pwd") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
