package tdsserver

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// The statements flapguard's orphan reaping sends (pool/mssql.go), through
// the real driver: a session reads its own id and fingerprint; the count
// finds it by id, by id and fingerprint, and not with another fingerprint,
// another id, or after KILL.
func TestDMVExecConnections(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	ctx := testCtx(t, 5*time.Second)
	c := conn(t, db)
	var id int64
	var fp string
	err := c.QueryRowContext(ctx, "SELECT CAST(@@SPID AS bigint), CONVERT(varchar(30), c.connect_time, 126) + '|' + CAST(c.client_tcp_port AS varchar(10)) "+
		"FROM sys.dm_exec_connections c WHERE c.session_id = @@SPID").Scan(&id, &fp)
	if err != nil {
		t.Fatal(err)
	}
	if id != int64(spidOf(t, c)) {
		t.Fatalf("id %d, want the session's SPID", id)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\|\d+$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not style 126 + '|' + port", fp)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	check := func(id int64, fp string) string {
		return fmt.Sprintf("SELECT COUNT(*) FROM sys.dm_exec_connections c WHERE c.session_id = %d AND "+
			"CONVERT(varchar(30), c.connect_time, 126) + '|' + CAST(c.client_tcp_port AS varchar(10)) = '%s'", id, fp)
	}
	for _, tc := range []struct {
		q    string
		args []any
		want int
	}{
		{"SELECT COUNT(*) FROM sys.dm_exec_connections WHERE session_id = @p1", []any{id}, 1},
		{"select count(*) from sys.dm_exec_connections where session_id = " + fmt.Sprint(id+1000), nil, 0},
		{check(id, fp), nil, 1},
		{check(id, fp+"9"), nil, 0},
		{check(id+1000, fp), nil, 0},
	} {
		if got := count(tc.q, tc.args...); got != tc.want {
			t.Errorf("%s %v = %d, want %d", tc.q, tc.args, got, tc.want)
		}
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed session to leave sys.dm_exec_connections", 5*time.Second, func() bool { return count(check(id, fp)) == 0 })
}
