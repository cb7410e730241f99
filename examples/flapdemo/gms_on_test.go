//go:build gms

package main

import (
	"testing"
)

// The go-mysql-server backend (-server mysql, built with -tags gms) shows
// the same claim through go-sql-driver/mysql and flapguard's mysqladapter:
// plain database/sql fails a request per dead pooled connection after the
// rekey, flapguard none. .ci/run runs this without -race.
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
