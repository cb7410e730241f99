package pool_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/flapguard/flapguard/pool"
)

// The liveness check at borrow sends a ping (the driver's own cheap probe)
// and nothing else: no SQL of the pool's own reaches the server, and a
// reset sends nothing either. go-sqlmock fails on any unexpected call.
func TestLivenessSendsOnlyAPing(t *testing.T) {
	dsn := fmt.Sprintf("flapguard-liveness-%d", time.Now().UnixNano()) // one per run (-count)
	_, mock, err := sqlmock.NewWithDSN(dsn, sqlmock.MonitorPingsOption(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.Open("sqlmock", dsn, pool.Config{ProbeInterval: -1, LivenessIdle: time.Millisecond, AllowSoftMode: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if st := p.Stats(); st.SocketControl {
		t.Fatal("a driver without a dial hook claims socket control")
	}
	db := p.DB()
	ctx := context.Background()

	mock.ExpectQuery("SELECT 1").WillReturnRows(sqlmock.NewRows([]string{"x"}).AddRow(1))
	mock.ExpectPing() // the liveness check of the idle conn
	mock.ExpectQuery("SELECT 2").WillReturnRows(sqlmock.NewRows([]string{"x"}).AddRow(2))

	var x int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&x); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // idle past LivenessIdle
	if err := db.QueryRowContext(ctx, "SELECT 2").Scan(&x); err != nil || x != 2 {
		t.Fatalf("second query: %v %d", err, x)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.LivenessChecks != 1 || st.LivenessFailures != 0 {
		t.Fatalf("liveness checks %d failures %d; want 1 and 0", st.LivenessChecks, st.LivenessFailures)
	}
	p.Reset("test")
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatalf("reset sent something: %v", err)
	}
}
