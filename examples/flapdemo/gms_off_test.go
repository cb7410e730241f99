//go:build !gms

package main

import (
	"io"
	"strings"
	"testing"
)

// Without -tags gms, -server mysql says how to get it.
func TestServerMySQLNeedsTag(t *testing.T) {
	_, err := parseFlags([]string{"-server", "mysql"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "go run -tags gms ./examples/flapdemo -server mysql") {
		t.Fatalf("err = %v, want the command that builds go-mysql-server in", err)
	}
}
