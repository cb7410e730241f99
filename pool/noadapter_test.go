package pool_test

import (
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // pgx's own database/sql driver, without flapguard's adapter

	"github.com/flapguard/flapguard/pool"
)

// The usual way to use pgx with database/sql is its stdlib package; a
// user who swaps sql.Open for pool.Open but forgets pool/pgxadapter must be
// told, not handed a pool without socket control.
func TestForgottenPgxAdapterNamesTheImport(t *testing.T) {
	_, err := pool.Open("pgx", "postgres://app:secret@db.example/app", pool.Config{})
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), `import _ "github.com/flapguard/flapguard/pool/pgxadapter"`) {
		t.Fatalf("err = %v; want the adapter import named", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatal("the error shows the DSN password")
	}
}
