package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunLocal runs the whole example against the machine's PostgreSQL
// (127.0.0.1:5432, user postgres, database test).
func TestRunLocal(t *testing.T) {
	if c, err := net.DialTimeout("tcp", "127.0.0.1:5432", time.Second); err != nil {
		t.Skipf("PostgreSQL not reachable at 127.0.0.1:5432: %v", err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	start := time.Now()
	err := run(ctx, []string{"-dsn", defaultDSN}, &out, &errOut)
	t.Logf("took %v; output:\n%s%s", time.Since(start), &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"server: postgres@127.0.0.1:5432/test",
		"balances: account 1 = 100, account 2 = 100",
		"transfer committed on attempt 1",
		"balances: account 1 = 90, account 2 = 110",
		"balances: account 1 = 80, account 2 = 120",
		"checked by transfer id: not committed, safe to run again",
		"event: conn-lost",
		"signal: user defined signal 1 -> tunnel * down",
		"event: tunnel gen=",
		"tunnel down: old connections severed",
		"signal: user defined signal 2 -> tunnel * up",
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

func TestBadCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"-dsn", "postgres://u:Hunter2@[::1"},
		{"-hold", "soon"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want errUsage", args, err)
		}
		if strings.Contains(out.String()+errOut.String(), "Hunter2") {
			t.Errorf("run(%q) printed the password: %s", args, errOut.String())
		}
	}
}

func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-dsn", "postgres://app:Hunter2@" + addr + "/x?connect_timeout=2"}, &out, &errOut)
	if err == nil || errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), "cannot reach PostgreSQL") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(out.String()+errOut.String()+err.Error(), "Hunter2") {
		t.Error("password printed")
	}
}
