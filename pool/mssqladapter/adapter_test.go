package mssqladapter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flapguard/flapguard/internal/pooltest"
	"github.com/flapguard/flapguard/internal/tdsserver"
	"github.com/flapguard/flapguard/pool"
)

// The real go-mssqldb driver against the TDS test double on loopback. The
// lab repeats both with real packet drops (S6, S7).

func startTDS(t *testing.T) *tdsserver.Server {
	t.Helper()
	srv := tdsserver.New(tdsserver.Config{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func TestMSSQLInFlightReturnsAtDeadline(t *testing.T) {
	srv := startTDS(t)
	p, err := pool.Open("sqlserver", srv.DSN(), pool.Config{ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, func() { srv.Freeze() }) // the server goes silent mid-query
	const deadline = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err = p.DB().ExecContext(ctx, "waitfor delay '00:00:10'")
	took := time.Since(start)
	t.Logf("in-flight query on a frozen session, deadline %v: returned after %v: %v", deadline, took, err)
	if took > deadline+250*time.Millisecond {
		t.Fatalf("returned after %v; goal deadline + 100ms (go-mssqldb alone waits 5s more for ATTENTION)", took)
	}
	if !errors.Is(err, pool.ErrOutcomeUnknown) {
		t.Fatalf("err = %v; want ErrOutcomeUnknown", err)
	}
	srv.Unfreeze()
	if err := p.DB().Ping(); err != nil {
		t.Fatalf("ping after: %v", err)
	}
}

func TestMSSQLConnectToFrozenServerHonoursContext(t *testing.T) {
	srv := startTDS(t)
	srv.HangAfterAccept(true) // accepts TCP, never answers PRELOGIN (go-mssqldb issue #254)
	p, err := pool.Open("sqlserver", srv.DSN(), pool.Config{ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const timeout = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err = p.DB().PingContext(ctx)
	took := time.Since(start)
	t.Logf("connect to a frozen server, ctx %v: returned after %v: %v", timeout, took, err)
	if err == nil || took > timeout+250*time.Millisecond {
		t.Fatalf("returned after %v with %v; goal ctx + 100ms with an error", took, err)
	}
}

// The checks every adapter runs against its real server (internal/pooltest),
// here with the real go-mssqldb driver against the TDS double: reset, sever
// with a query in flight, liveness over a blackholed flow, and orphan
// reaping (OrphansOn: the double answers sys.dm_exec_connections and KILL,
// and asks for no permission).
func TestMSSQLSuite(t *testing.T) {
	srv := startTDS(t)
	addr := srv.Addr().String()
	pooltest.Run(t, pooltest.Target{
		Driver:           "sqlserver",
		Addr:             addr,
		DSN:              tdsserver.DSNFor,
		SleepSQL:         "WAITFOR DELAY '00:00:30'",
		SessionIDSQL:     "SELECT @@SPID",
		SessionExistsSQL: "SELECT COUNT(*) FROM sys.dm_exec_connections WHERE session_id = @p1",
		AdminDriver:      "sqlserver",
		Orphans:          pool.OrphansOn,
	})
}
