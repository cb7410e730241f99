package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/internal/tdsserver"
)

// No SQL Server runs on the test machines; flapguard's TDS test double
// does, over real loopback sockets, with the real go-mssqldb driver.
func TestRunAgainstTDSDouble(t *testing.T) {
	srv := tdsserver.New(tdsserver.Config{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dsn := strings.Replace(srv.DSN(), "sa:pw@", "sa:Sup3rS3cret@", 1)
	if dsn == srv.DSN() {
		t.Fatalf("DSN %q has no sa:pw@ to replace", srv.DSN())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"-dsn", dsn}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errOut)
	}
	got := out.String()
	t.Logf("output:\n%s", got)
	if strings.Contains(got+errOut.String(), "Sup3rS3cret") {
		t.Fatal("password printed")
	}
	if !strings.Contains(got, "sa:xxxxx@") {
		t.Errorf("redacted DSN not printed")
	}
	spids := regexp.MustCompile(`served by session (\d+)`).FindAllStringSubmatch(got, -1)
	if len(spids) != 2 {
		t.Fatalf("want 2 session reports, got %q", spids)
	}
	if spids[0][1] == spids[1][1] {
		t.Errorf("same session %s before and after Reset: the pool was not renewed", spids[0][1])
	}
	if !strings.Contains(got, "generation 2, resets 1, connections made 2") {
		t.Errorf("stats line missing or wrong")
	}
}

func TestRunNeedsDSN(t *testing.T) {
	t.Setenv("SQLSERVER_DSN", "")
	var out, errOut bytes.Buffer
	err := run(context.Background(), nil, &out, &errOut)
	if !errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want errUsage", err)
	}
	if !strings.Contains(errOut.String(), "pass -dsn or set $SQLSERVER_DSN") {
		t.Errorf("stderr %q does not say how to give a DSN", errOut.String())
	}
}

func TestRunUsesEnv(t *testing.T) {
	// An unreachable server: the run must fail on connecting, proving it
	// took the DSN from the environment.
	t.Setenv("SQLSERVER_DSN", "sqlserver://u:EnvS3cret@127.0.0.1:1?dial+timeout=1")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-timeout", "3s"}, &out, &errOut)
	if err == nil || errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want a connection error", err)
	}
	if !strings.Contains(out.String(), "127.0.0.1:1") {
		t.Errorf("stdout %q does not show the env DSN", out.String())
	}
	if strings.Contains(out.String()+errOut.String()+err.Error(), "EnvS3cret") {
		t.Fatal("password printed")
	}
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sqlserver://app:p%40ss@db:1433?database=x", "sqlserver://app:xxxxx@db:1433?database=x"},
		{"sqlserver://db:1433?database=x&password=hunter2", "sqlserver://db:1433?database=x&password=xxxxx"},
		{"server=db;user id=app;password=hunter2;database=x", "server=db;user id=app;password=xxxxx;database=x"},
		{"odbc:server=db;uid=app;PWD={hun;ter2};database=x", "odbc:server=db;uid=app;PWD=xxxxx;database=x"},
		{"server=db;user id=app", "server=db;user id=app"},
	} {
		got := redactDSN(tc.in)
		if got != tc.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"hunter2", "p%40ss", "p@ss", "hun;ter2"} {
			if strings.Contains(got, secret) {
				t.Errorf("redactDSN(%q) = %q leaks %q", tc.in, got, secret)
			}
		}
	}
}
