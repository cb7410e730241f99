package main

import (
	"testing"

	"github.com/flapguard/flapguard/examples/internal/bankdemo"
)

// TestRunLocal runs the whole example against the machine's PostgreSQL
// (127.0.0.1:5432, user postgres, database test).
func TestRunLocal(t *testing.T) {
	bankdemo.CheckRunLocal(t, postgres, "127.0.0.1:5432", "postgres@127.0.0.1:5432/test")
}

func TestBadCommandLine(t *testing.T) {
	bankdemo.CheckBadCommandLine(t, postgres, "postgres://u:Hunter2@[::1")
}

func TestUnreachableServer(t *testing.T) {
	bankdemo.CheckUnreachable(t, postgres, func(addr string) string {
		return "postgres://app:Hunter2@" + addr + "/x?connect_timeout=2"
	})
}
