package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// options are the demo's validated flags.
type options struct {
	dsn      string // "" = embedded server behind fault proxies
	server   string // which embedded server (backends)
	driver   string // database/sql driver name for -dsn
	connStr  string // what the driver gets (mysql:// rewritten to its own form)
	secret   string // the DSN's password, redacted from every message
	scenario string
	duration time.Duration
	workers  int
	deadline time.Duration // 0 = none
	think    time.Duration
	events   bool
	json     bool
	plot     string
	quiet    bool // no live status lines (tests)
	verbose  bool // print the flapguard pool's events
}

// errUsage marks a bad command line (exit code 2).
var errUsage = errors.New("usage")

const maxWorkers = 1000

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("flapdemo", flag.ContinueOnError)
	// Errors are reported by the caller in one line; only -h prints usage.
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.dsn, "dsn", "", "run against a real server instead of the embedded one: sqlserver://…, mysql://user:pw@host:port/db or postgres://… (needs -tags full); no fault injection then")
	fs.StringVar(&o.server, "server", "tds", "embedded server when there is no -dsn: tds (a SQL Server wire-protocol test double, with the real go-mssqldb driver) or mysql (go-mysql-server; needs -tags full)")
	fs.StringVar(&o.scenario, "scenario", "rekey", "fault script: "+scenarioNames())
	fs.DurationVar(&o.duration, "duration", 12*time.Second, "how long each run issues requests")
	fs.IntVar(&o.workers, "workers", 8, "concurrent workers per run")
	fs.DurationVar(&o.deadline, "deadline", 2*time.Second, "per-request deadline; 0 = none (hung requests are then reported and abandoned)")
	fs.DurationVar(&o.think, "think", 50*time.Millisecond, "mean pause between one worker's requests (longer: connections sit idle in the pool)")
	fs.BoolVar(&o.events, "events", false, "also tell the flapguard pool about the tunnel (pool.Notify Down/Up) at the scripted times")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON instead of a table")
	fs.StringVar(&o.plot, "plot", "", "write a PNG of both runs' latencies to this file (needs -tags full)")
	fs.BoolVar(&o.quiet, "quiet", false, "no live status lines")
	fs.BoolVar(&o.verbose, "v", false, "also print the error behind each flapguard action, and every failed request's error in full")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: go run ./examples/flapdemo [flags]")
			fs.PrintDefaults()
			return o, err
		}
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return o, o.validate()
}

func (o *options) validate() error {
	switch {
	case o.workers < 1:
		return fmt.Errorf("%w: -workers must be at least 1 (got %d)", errUsage, o.workers)
	case o.workers > maxWorkers:
		return fmt.Errorf("%w: -workers must be at most %d (got %d)", errUsage, maxWorkers, o.workers)
	case o.duration < 0:
		return fmt.Errorf("%w: -duration must not be negative (got %v)", errUsage, o.duration)
	case o.duration < 3*time.Second:
		return fmt.Errorf("%w: -duration must be at least 3s so the scenario fits (got %v)", errUsage, o.duration)
	case o.duration > time.Hour:
		return fmt.Errorf("%w: -duration must be at most 1h (got %v)", errUsage, o.duration)
	case o.deadline < 0:
		return fmt.Errorf("%w: -deadline must not be negative (got %v; 0 means none)", errUsage, o.deadline)
	case o.deadline > time.Minute:
		return fmt.Errorf("%w: -deadline must be at most 1m (got %v)", errUsage, o.deadline)
	case o.think < 0 || o.think > time.Minute:
		return fmt.Errorf("%w: -think must be between 0 and 1m (got %v)", errUsage, o.think)
	}
	if _, ok := scenarios[o.scenario]; !ok {
		return fmt.Errorf("%w: unknown -scenario %q (want %s)", errUsage, o.scenario, scenarioNames())
	}
	if o.plot != "" && !fullBuild {
		return fmt.Errorf("%w: %v", errUsage, needsFull("-plot needs gonum/plot", "-plot "+o.plot))
	}
	if err := checkServer(o.server); err != nil && o.dsn == "" {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.dsn != "" {
		if err := o.parseDSN(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	return nil
}

// parseDSN maps the DSN's scheme to a driver and extracts the password so
// it can be redacted. It never puts the DSN itself into an error.
func (o *options) parseDSN() error {
	u, err := url.Parse(o.dsn)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return errors.New("-dsn must be a URL: sqlserver://…, postgres://… or mysql://user:pw@host:port/db")
	}
	if pw, ok := u.User.Password(); ok {
		o.secret = pw
	}
	switch strings.ToLower(u.Scheme) {
	case "sqlserver":
		o.driver, o.connStr = "sqlserver", o.dsn
	case "postgres", "postgresql":
		if !fullBuild {
			return needsFull("-dsn "+u.Scheme+":// needs pgx", "-dsn '…'")
		}
		o.driver, o.connStr = "pgx", o.dsn
	case "mysql":
		o.driver, o.connStr = "mysql", mysqlDSN(u)
	default:
		return fmt.Errorf("-dsn scheme %q is not sqlserver, postgres or mysql", u.Scheme)
	}
	return nil
}

// mysqlDSN rewrites mysql://user:pw@host:port/db?params into
// go-sql-driver/mysql's user:pw@tcp(host:port)/db?params.
func mysqlDSN(u *url.URL) string {
	var b strings.Builder
	if u.User != nil {
		b.WriteString(u.User.Username())
		if pw, ok := u.User.Password(); ok {
			b.WriteString(":" + pw)
		}
		b.WriteString("@")
	}
	host := u.Host
	if u.Port() == "" {
		host += ":3306"
	}
	b.WriteString("tcp(" + host + ")/" + strings.TrimPrefix(u.Path, "/"))
	if u.RawQuery != "" {
		b.WriteString("?" + u.RawQuery)
	}
	return b.String()
}

// redact removes the DSN password (raw and URL-escaped) from s.
func (o *options) redact(s string) string {
	if o.secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, o.secret, "xxxxx")
	if esc := url.QueryEscape(o.secret); esc != o.secret {
		s = strings.ReplaceAll(s, esc, "xxxxx")
	}
	if esc := url.PathEscape(o.secret); esc != o.secret {
		s = strings.ReplaceAll(s, esc, "xxxxx")
	}
	return s
}
