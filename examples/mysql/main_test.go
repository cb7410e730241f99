package main

import (
	"testing"

	"github.com/flapguard/flapguard/examples/internal/bankdemo"
)

// TestRunLocal runs the whole example against the machine's MariaDB
// (127.0.0.1:3306, user root without a password, database test).
func TestRunLocal(t *testing.T) {
	bankdemo.CheckRunLocal(t, mariadb, "127.0.0.1:3306", "root@tcp(127.0.0.1:3306)/test")
}

func TestBadCommandLine(t *testing.T) {
	bankdemo.CheckBadCommandLine(t, mariadb, "u:Hunter2@tcp(127.0.0.1:3306)/x?timeout=never")
}

func TestUnreachableServer(t *testing.T) {
	bankdemo.CheckUnreachable(t, mariadb, func(addr string) string {
		return "app:Hunter2@tcp(" + addr + ")/x?timeout=2s"
	})
}
