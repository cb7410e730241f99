package tdsserver

import (
	"database/sql"
	"testing"

	_ "github.com/microsoft/go-mssqldb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer starts a server on loopback that the test closes.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	srv := New(cfg)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// openDB opens the real go-mssqldb driver on srv; extra is appended to the
// DSN's query string (for example "&packet+size=512").
func openDB(t *testing.T, srv *Server, extra string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlserver", srv.DSN()+extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
