package pooltest_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mssqladapter"
	_ "github.com/flapguard/flapguard/pool/mysqladapter"
	_ "github.com/flapguard/flapguard/pool/pgxadapter"
)

const secret = "s3cr3tPW"

// walk visits every error in err's tree (Unwrap() error and
// Unwrap() []error), as errors.Is and errors.As do.
func walk(err error, visit func(error)) {
	if err == nil {
		return
	}
	visit(err)
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		walk(x.Unwrap(), visit)
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			walk(e, visit)
		}
	}
}

func noSecret(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	walk(err, func(e error) {
		for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, secret) {
				t.Fatalf("%s: the password shows in the error chain (%T): %s", what, e, s)
			}
		}
	})
}

// No DSN password in any error pool.Open or a first connect returns, for
// each driver and DSN form, anywhere in the error's Unwrap chain.
func TestNoPasswordInAnyErrorChain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String() // refused once closed
	ln.Close()
	host, port, _ := net.SplitHostPort(closed)
	bad := map[string][]string{ // DSNs Open must refuse
		"pgx": {
			"postgres://app:" + secret + "@" + closed + "/db?sslmode=bogus",
			"host=" + host + " port=notaport user=app password=" + secret,
			"postgres://app:" + secret + "@[::1:bad/db",
		},
		"mysql": {
			"app:" + secret + "@tcp(" + closed + ")/db?bogus=%zz",
			"app:" + secret + "@tcp(" + closed + "/db",
		},
		"sqlserver": {
			"sqlserver://app:" + secret + "@" + host + ":notaport?database=x",
			"server=" + host + ";user id=app;password=" + secret + ";port=notaport",
		},
	}
	for drv, dsns := range bad {
		for _, dsn := range dsns {
			_, err := pool.Open(drv, dsn, pool.Config{})
			noSecret(t, drv+" Open("+strings.ReplaceAll(dsn, secret, "…")+")", err)
		}
	}
	good := map[string][]string{ // DSNs that parse; the server is not there
		"pgx": {
			"postgres://app:" + secret + "@" + closed + "/db?sslmode=disable",
			"host=" + host + " port=" + port + " user=app password=" + secret + " sslmode=disable",
		},
		"mysql":     {"app:" + secret + "@tcp(" + closed + ")/db"},
		"sqlserver": {"sqlserver://app:" + secret + "@" + closed + "?database=x", "server=" + host + ";port=" + port + ";user id=app;password=" + secret},
	}
	for drv, dsns := range good {
		for _, dsn := range dsns {
			var events []error
			p, err := pool.Open(drv, dsn, pool.Config{ProbeInterval: -1, OnEvent: func(ev pool.Event) {
				if ev.Err != nil {
					events = append(events, ev.Err)
				}
			}})
			if err != nil {
				t.Fatalf("%s: Open: %v", drv, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err = p.DB().PingContext(ctx)
			cancel()
			p.Close()
			noSecret(t, drv+" Ping", err)
			for _, e := range events {
				noSecret(t, drv+" event", e)
			}
		}
	}
}
