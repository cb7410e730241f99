package tdsserver

import (
	"context"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "select 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	t.Log(n)
	res, err := db.ExecContext(ctx, "INSERT INTO t (id) VALUES (@p1)", 5)
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := res.RowsAffected()
	t.Log(ra)
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE id = @p1", 5).Scan(&n); err != nil {
		t.Fatal(err)
	}
	t.Log(n, srv.Sessions())
}
