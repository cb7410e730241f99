//go:build full

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// What -tags full adds. .ci/run runs these without -race (TestDemoGMS
// cannot pass under it: see race_on_test.go).

// The go-mysql-server backend shows the same claim through
// go-sql-driver/mysql and flapguard's mysqladapter: plain database/sql
// fails a request per dead pooled connection after the rekey, flapguard
// none.
func TestDemoGMS(t *testing.T) {
	skipWholeDemo(t)
	if raceEnabled {
		t.Skip("go-mysql-server v0.20.0 races internally (see race_on_test.go); run without -race")
	}
	res := runJSON(t, "-server", "mysql")
	plain, fg := res.Runs[0], res.Runs[1]
	if plain.FailedAfterUp == 0 {
		t.Errorf("plain: want the seed failure reproduced, got %+v", plain)
	}
	if fg.FailedAfterUp != 0 || fg.Hung != 0 {
		t.Errorf("flapguard: want no failure after UP, got %+v", fg)
	}
}

// -plot writes a PNG of both runs.
func TestDemoPlot(t *testing.T) {
	skipWholeDemo(t)
	png := filepath.Join(t.TempDir(), "flap.png")
	runJSON(t, "-deadline", "0", "-plot", png)
	b, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10_000 {
		t.Errorf("plot: %d bytes, err %v", len(b), err)
	}
}

func TestDSNSchemesPostgres(t *testing.T) {
	testDSNSchemes(t, []dsnCase{
		{"postgres://u:pw@db:5432/app", "pgx", "postgres://u:pw@db:5432/app"},
		{"postgresql://u@db/app", "pgx", "postgresql://u@db/app"},
	})
}

func TestRunBadInputPostgres(t *testing.T) {
	testRunBadInput(t, []badInput{
		{[]string{"-dsn", "postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=2", "-quiet"}, 1, "flapdemo: plain run: cannot reach the -dsn server: "},
	})
}
