package bankdemo

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/examples/internal/excmd"
)

// The checks each command's tests run with its own Driver: the shared
// program is tested once per driver, against that driver's real server.

// CheckRunLocal runs the whole program against the machine's server at
// addr (d.DefaultDSN) and checks its output; server is the "server:" line
// it must print. It skips when nothing listens at addr.
func CheckRunLocal(t *testing.T, d Driver, addr, server string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Skipf("%s not reachable at %s: %v", d.Server, addr, err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	start := time.Now()
	err := Run(ctx, d, []string{"-dsn", d.DefaultDSN}, &out, &errOut)
	t.Logf("took %v; output:\n%s%s", time.Since(start), &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"server: " + server,
		"balances: account 1 = 100, account 2 = 100",
		"transfer committed on attempt 1",
		"balances: account 1 = 90, account 2 = 110",
		"balances: account 1 = 80, account 2 = 120",
		"checked by transfer id: not committed, safe to run again",
		"event: conn-lost",
		"signal: " + downSignal.String() + " -> tunnel * down",
		"event: tunnel gen=",
		"tunnel down reported: the pool checked the path, it answers: 0 connections cut, 0 resets",
		"signal: " + upSignal.String() + " -> tunnel * up",
		"a query issued while down took",
		"== done:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// How many attempts the first demo takes depends on whether the
	// prober, reacting to the loss, severs the connection the retry got:
	// at least 2. The transfer whose COMMIT was lost is not retried.
	for _, re := range []string{
		`transfer committed on attempt [2-4] \(the first lost its connection before COMMIT\)`,
		`COMMIT lost on attempt [1-4]: errors.Is\(err, pool.ErrOutcomeUnknown\) = true, not retried`,
	} {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("output does not match %s", re)
		}
	}
	// The doomed transfer did not commit: the balances after it are those
	// before it.
	if i := strings.Index(got, "not committed, safe to run again"); i < 0 || !strings.Contains(got[i:], "balances: account 1 = 80, account 2 = 120") {
		t.Errorf("balances changed by a transfer reported as not committed")
	}
}

// CheckBadCommandLine: a DSN the driver cannot parse (with the password
// Hunter2 in it), a bad flag value and an extra argument are usage errors,
// and the password is printed nowhere.
func CheckBadCommandLine(t *testing.T, d Driver, badDSN string) {
	t.Helper()
	for _, args := range [][]string{
		{"-dsn", badDSN},
		{"-hold", "soon"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), d, args, &out, &errOut)
		if !errors.Is(err, excmd.ErrUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
		if strings.Contains(out.String()+errOut.String(), "Hunter2") {
			t.Errorf("run(%q) printed the password: %s", args, errOut.String())
		}
	}
}

// CheckUnreachable: a server that refuses connections is a plain error
// that names the server, without the password Hunter2 that dsnAt puts in
// the DSN for addr.
func CheckUnreachable(t *testing.T, d Driver, dsnAt func(addr string) string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	var out, errOut bytes.Buffer
	err = Run(context.Background(), d, []string{"-dsn", dsnAt(addr)}, &out, &errOut)
	if err == nil || errors.Is(err, excmd.ErrUsage) {
		t.Fatalf("err = %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), "cannot reach "+d.Server) {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(out.String()+errOut.String()+err.Error(), "Hunter2") {
		t.Error("password printed")
	}
}
