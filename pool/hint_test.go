package pool

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
)

// The lib/pq habit, pool.Open("postgres", …), is pointed to the pgx
// adapter, whether lib/pq is absent (unknown driver) or imported (a driver
// without an adapter); the password in the DSN never shows.
func TestPostgresDriverNamePointsToPgx(t *testing.T) {
	const want = `driver name "pgx" and add import _ "github.com/flapguard/flapguard/pool/pgxadapter"`
	for _, name := range []string{"postgres", "postgresql"} {
		_, err := Open(name, "postgres://app:s3cret@db.example/app", Config{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v; want the pgx adapter named", name, err)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): the error shows the password: %v", name, err)
		}
	}
	// lib/pq imported: "postgres" is registered with database/sql but has
	// no adapter. Registering "postgres" here would stay for the whole test
	// binary (database/sql cannot unregister), so the error is asked for
	// directly, and the path through Open is taken with another name.
	if err := errNoAdapter("postgres"); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "AllowSoftMode") {
		t.Errorf("errNoAdapter(postgres) = %v; want the pgx adapter and AllowSoftMode named", err)
	}
	sql.Register("hint-test-nopq", nopDriver{})
	_, err := Open("hint-test-nopq", "x", Config{})
	if err == nil || !strings.Contains(err.Error(), "has no flapguard adapter") || strings.Contains(err.Error(), "lib/pq") {
		t.Errorf("Open(another driver without adapter) = %v; want the generic no-adapter error", err)
	}
}

type nopDriver struct{}

func (nopDriver) Open(string) (driver.Conn, error) { return nil, errors.New("nop") }
