// Command flapdemo runs the same small-query workload through a plain
// database/sql pool and a flapguard pool while a scripted VPN flap (down,
// then up again with every old flow silently dead) hits both, and prints
// what each side's users saw.
//
//	go run ./examples/flapdemo                  # embedded SQL Server test double, 15 s
//	go run ./examples/flapdemo -v               # also each flapguard action's error, and every error's full text
//	go run ./examples/flapdemo -events          # also tell flapguard about the tunnel
//	go run ./examples/flapdemo -scenario flap -deadline 0
//	go run -tags full ./examples/flapdemo -server mysql -plot flap.png  # go-mysql-server, and a plot
//	go run ./examples/flapdemo -dsn 'sqlserver://u:pw@db:1433?database=app'   # a real server, real network
//
// With no -dsn it starts an embedded server on loopback and puts an
// in-process fault proxy (internal/faultproxy) in front of it for each run;
// nothing needs installing and no root is needed. The default server is
// flapguard's TDS test double (internal/tdsserver), which speaks SQL
// Server's wire protocol to the real go-mssqldb driver: SQL Server behind a
// tunnel is the case flapguard is for. -server mysql runs go-mysql-server
// (pure Go, in memory) with go-sql-driver/mysql instead. It, -plot
// (gonum/plot) and -dsn postgres:// (pgx) need -tags full: see lean.go.
//
// Before it starts it prints a legend; while it runs, a status line every
// 2 s, the scripted faults, each run's failures when they happen (a request
// that hangs is announced once, when it passes its deadline by a second,
// not when it returns at last) and every action of the flapguard pool, one
// line each (its Config.OnEvent); at the end a table in which each request
// counts once (succeeded, failed, or hung) and the outcome in plain words.
//
// Exit codes: 0 done, 1 the demo could not run (server unreachable...),
// 2 bad command line, 130 interrupted (the partial table is printed).
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
