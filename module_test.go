package flapguard

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// Every requirement of this module lands in the module graph of every
// program that imports flapguard (go list -m all, go mod tidy, security
// scanners, minimum version selection of shared modules). So the library
// module requires what its packages need and light test dependencies only;
// a test that needs a server library (nats-server, go-mysql-server, GoAws)
// lives in a test-only module (compat/, internal/snse2e) or talks to a
// real server binary. A new requirement needs a line here and a reason.
//
// Measured with a scratch module importing pool and pool/pgxadapter, with
// a replace to this repository: `go list -m all` lists 33 modules (39
// with nats-server/v2 required here; pgx alone brings 15 besides the
// program itself).
func TestModuleRequirementsAreChosen(t *testing.T) {
	out, err := exec.Command("go", "mod", "edit", "-json").Output()
	if err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	var mod struct {
		Require []struct {
			Path     string
			Indirect bool
		}
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	chosen := map[string]string{
		"github.com/DATA-DOG/go-sqlmock":  "pool's tests",
		"github.com/cenkalti/backoff/v4":  "pool: retry backoff",
		"github.com/go-sql-driver/mysql":  "pool/mysqladapter",
		"github.com/jackc/pgx/v5":         "pool/pgxadapter",
		"github.com/microsoft/go-mssqldb": "pool/mssqladapter",
		"github.com/nats-io/nats.go":      "detect/natsfeed",
		"go.uber.org/goleak":              "goroutine leak checks in tests",
		"golang.org/x/sys":                "internal/sockopt, the lab",
		"pgregory.net/rapid":              "pool's decision tests (random walks); it requires nothing",
		"filippo.io/edwards25519":         "go-sql-driver/mysql",
		"github.com/golang-sql/civil":     "go-mssqldb",
		"github.com/golang-sql/sqlexp":    "go-mssqldb",
		"github.com/google/uuid":          "go-mssqldb",
		"github.com/shopspring/decimal":   "go-mssqldb",
		"golang.org/x/crypto":             "go-mssqldb, nats.go (nkeys)",
		"github.com/jackc/pgpassfile":     "pgx",
		"github.com/jackc/pgservicefile":  "pgx",
		"github.com/jackc/puddle/v2":      "pgx",
		"golang.org/x/sync":               "pgx",
		"golang.org/x/text":               "pgx",
		"github.com/klauspost/compress":   "nats.go",
		"github.com/nats-io/nkeys":        "nats.go",
		"github.com/nats-io/nuid":         "nats.go",
	}
	for _, r := range mod.Require {
		if _, ok := chosen[r.Path]; !ok {
			t.Errorf("go.mod requires %s (indirect %v): every user's module graph would carry it; move what needs it to a test-only module, or add it here with its reason", r.Path, r.Indirect)
		}
	}
}
