//go:build !full

package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// Without -tags full, what needs it says so, with the command that builds
// it in, and never echoes a password.
func TestNeedsFull(t *testing.T) {
	for _, args := range [][]string{
		{"-server", "mysql"},
		{"-plot", "flap.png"},
		{"-dsn", "postgres://u:hunter2@db:5432/app"},
		{"-dsn", "postgresql://u:hunter2@db/app"},
	} {
		_, err := parseFlags(args, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "run: go run -tags full ./examples/flapdemo ") {
			t.Errorf("%v: err = %v, want a usage error with the -tags full command", args, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: error shows the password: %v", args, err)
		}
	}
}
