package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.workers != 8 || o.deadline != 2*time.Second || o.duration != 12*time.Second || o.scenario != "rekey" || o.dsn != "" {
		t.Fatalf("defaults = %+v", o)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-workers", "0"}, "-workers must be at least 1"},
		{[]string{"-workers", "-3"}, "-workers must be at least 1"},
		{[]string{"-workers", "100000"}, "at most"},
		{[]string{"-duration", "-5s"}, "-duration must not be negative"},
		{[]string{"-duration", "1s"}, "at least 3s"},
		{[]string{"-deadline", "-1s"}, "-deadline must not be negative"},
		{[]string{"-think", "-1s"}, "-think"},
		{[]string{"-scenario", "meteor"}, `unknown -scenario "meteor"`},
		{[]string{"-server", "oracle"}, `unknown -server "oracle"`},
		{[]string{"-duration", "soon"}, "invalid value"},
		{[]string{"-nope"}, "not defined"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-dsn", "oracle://u:hunter2@db/x"}, `scheme "oracle"`},
		{[]string{"-dsn", "u:hunter2@tcp(db:3306)/x"}, "must be a URL"},
		{[]string{"-dsn", "::::"}, "must be a URL"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", tc.args, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %q does not say %q", tc.args, err, tc.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: error shows the password: %q", tc.args, err)
		}
	}
}

func TestDSNSchemes(t *testing.T) {
	testDSNSchemes(t, []dsnCase{
		{"sqlserver://sa:pw@db:1433?database=app", "sqlserver", "sqlserver://sa:pw@db:1433?database=app"},
		{"mysql://root:pw@127.0.0.1:3306/test?parseTime=true", "mysql", "root:pw@tcp(127.0.0.1:3306)/test?parseTime=true"},
		{"mysql://root@db/test", "mysql", "root@tcp(db:3306)/test"},
	})
}

type dsnCase struct{ dsn, driver, conn string }

func testDSNSchemes(t *testing.T, cases []dsnCase) {
	t.Helper()
	for _, tc := range cases {
		o, err := parseFlags([]string{"-dsn", tc.dsn}, io.Discard)
		if err != nil {
			t.Errorf("%s: %v", tc.dsn, err)
			continue
		}
		if o.driver != tc.driver || o.connStr != tc.conn {
			t.Errorf("%s: driver %q conn %q, want %q %q", tc.dsn, o.driver, o.connStr, tc.driver, tc.conn)
		}
	}
}

func TestRedact(t *testing.T) {
	o, err := parseFlags([]string{"-dsn", "sqlserver://u:p%40ss%2Fw@db:1433?database=app"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.secret != "p@ss/w" {
		t.Fatalf("secret = %q", o.secret)
	}
	for _, msg := range []string{"dial p@ss/w failed", "url sqlserver://u:p%40ss%2Fw@db", "x p@ss%2Fw y"} {
		if got := o.redact(msg); strings.Contains(got, "ss/w") || strings.Contains(got, "ss%2Fw") {
			t.Errorf("redact(%q) = %q", msg, got)
		}
	}
}

// TestRunBadInput checks the whole command's behaviour on bad input: one
// line on stderr, exit code 2 or 1, no panic, no password.
func TestRunBadInput(t *testing.T) {
	testRunBadInput(t, []badInput{
		{[]string{"-workers", "0"}, 2, "flapdemo: -workers must be at least 1 (got 0)"},
		{[]string{"-dsn", "ftp://u:hunter2@h/x"}, 2, `flapdemo: -dsn scheme "ftp" is not sqlserver`},
		{[]string{"-server", "oracle"}, 2, `flapdemo: unknown -server "oracle" (want `},
		// Nothing listens on port 1: the server is unreachable.
		{[]string{"-dsn", "mysql://u:hunter2@127.0.0.1:1/x", "-quiet"}, 1, "flapdemo: plain run: cannot reach the -dsn server: "},
		{[]string{"-dsn", "sqlserver://u:hunter2@127.0.0.1:1?dial+timeout=2", "-quiet"}, 1, "flapdemo: plain run: cannot reach the -dsn server: "},
	})
}

type badInput struct {
	args []string
	code int
	want string
}

func testRunBadInput(t *testing.T, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		var out, errOut strings.Builder
		code := run(t.Context(), tc.args, &out, &errOut)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut.String())
		}
		lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
			t.Errorf("%v: stderr = %q, want one line starting %q", tc.args, errOut.String(), tc.want)
		}
		if strings.Contains(errOut.String()+out.String(), "hunter2") {
			t.Errorf("%v: output shows the password", tc.args)
		}
	}
}
