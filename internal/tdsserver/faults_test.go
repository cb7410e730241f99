package tdsserver

import (
	"context"
	"errors"
	"io"
	"strconv"
	"syscall"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
)

// waitBusy waits until some session is running a request.
func waitBusy(t *testing.T, srv *Server) {
	t.Helper()
	waitFor(t, "a request to be running", 5*time.Second, func() bool {
		for _, in := range srv.Sessions() {
			if in.Busy {
				return true
			}
		}
		return false
	})
}

// TestFreezeInFlightQuery reproduces a blackholed flow under a running
// query: the driver's ATTENTION is swallowed, so it waits its 5 s
// cancelDrainTimeout (token.go:118) after the 2 s deadline.
func TestFreezeInFlightQuery(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	c := conn(t, db)
	spid := spidOf(t, c)

	done := make(chan error, 1)
	var took time.Duration
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.ExecContext(ctx, "WAITFOR DELAY '00:00:30'")
		took = time.Since(start)
		done <- err
	}()
	waitBusy(t, srv)
	if n := srv.Freeze(); n != 1 {
		t.Fatalf("Freeze froze %d sessions, want 1", n)
	}
	if in := srv.Sessions(); len(in) != 1 || in[0].SPID != spid || !in[0].Frozen {
		t.Fatalf("sessions after Freeze: %+v", in)
	}

	// New sessions still work while the old one is frozen.
	db2 := openDB(t, srv, "")
	if err := db2.PingContext(testCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("new session during Freeze: %v", err)
	}

	err := <-done
	t.Logf("frozen in-flight query with a 2s context returned after %v: %v", took, err)
	if took < 6500*time.Millisecond || took > 9*time.Second {
		t.Fatalf("returned after %v, want about 7s (2s deadline + 5s cancelDrainTimeout)", took)
	}
	var se mssql.StreamError
	if !errors.As(err, &se) {
		t.Fatalf("err = %T %v, want mssql.StreamError (no cancellation confirmation)", err, err)
	}
	srv.Unfreeze()
	for _, in := range srv.Sessions() {
		if in.Frozen {
			t.Fatalf("still frozen after Unfreeze: %+v", in)
		}
	}
}

// TestHangAfterAccept reproduces go-mssqldb issue #254: PRELOGIN ignores
// the context, so Ping blocks past its deadline until the socket closes.
func TestHangAfterAccept(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{})
	srv.HangAfterAccept(true)
	db := openDB(t, srv, "")

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		done <- db.PingContext(ctx)
	}()
	waitFor(t, "the connection to be held", 5*time.Second, func() bool { return srv.HungConns() == 1 })
	if srv.SessionCount() != 0 {
		t.Fatalf("a hung connection became a session")
	}
	select {
	case err := <-done:
		t.Fatalf("Ping returned after %v with %v; want it still blocked at 3s", time.Since(start), err)
	case <-time.After(3*time.Second - time.Since(start)):
	}
	t.Logf("Ping with a 2s context still blocked after %v", time.Since(start))
	_ = srv.Close()
	select {
	case err := <-done:
		t.Logf("Ping returned %v after %v, once the server closed", err, time.Since(start))
		if err == nil {
			t.Fatal("Ping succeeded against a hung server")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ping still blocked 5s after Close")
	}
}

func TestCloseSessions(t *testing.T) {
	for _, rst := range []bool{false, true} {
		t.Run(map[bool]string{false: "FIN", true: "RST"}[rst], func(t *testing.T) {
			srv := startServer(t, Config{})
			c := conn(t, openDB(t, srv, ""))
			spidOf(t, c)

			// A raw session shows what went on the wire.
			rc := dialRaw(t, srv)
			rc.login(4096)

			if n := srv.CloseSessions(rst); n != 2 {
				t.Fatalf("CloseSessions closed %d, want 2", n)
			}
			waitFor(t, "sessions to end", 5*time.Second, func() bool { return srv.SessionCount() == 0 })

			_, err := rc.c.Read(make([]byte, 1))
			if rst && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("raw read after RST close: %v, want ECONNRESET", err)
			}
			if !rst && !errors.Is(err, io.EOF) {
				t.Fatalf("raw read after FIN close: %v, want EOF", err)
			}

			_, err = c.ExecContext(testCtx(t, 5*time.Second), "select 1")
			t.Logf("next query: %T: %v", err, err)
			if err == nil {
				t.Fatal("query on a closed session succeeded")
			}
			// The listener stays: a new connection works.
			if err := openDB(t, srv, "").PingContext(testCtx(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestKillSessions(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	busy, idle := conn(t, db), conn(t, db)
	spidOf(t, busy)
	spidOf(t, idle)

	done := make(chan error, 1)
	go func() {
		_, err := busy.ExecContext(testCtx(t, 20*time.Second), "WAITFOR DELAY '00:00:30'")
		done <- err
	}()
	waitBusy(t, srv)
	if n, err := srv.KillSessions(596, 21); err != nil || n != 2 {
		t.Fatalf("KillSessions = %d, %v", n, err)
	}
	check := func(name string, err error) {
		t.Helper()
		var me mssql.Error
		var se mssql.ServerError
		if !errors.As(err, &se) || !errors.As(err, &me) || me.Number != 596 || me.Class != 21 {
			t.Fatalf("%s: err = %T %v, want mssql.ServerError wrapping mssql.Error{596, class 21}", name, err, err)
		}
		t.Logf("%s: %T %v / %q", name, err, err, me.Message)
	}
	select {
	case err := <-done:
		check("in-flight WAITFOR", err)
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight WAITFOR not ended by KillSessions")
	}
	_, err := idle.ExecContext(testCtx(t, 5*time.Second), "select 1")
	check("next query on the idle session", err)
	waitFor(t, "killed sessions to end", 5*time.Second, func() bool { return srv.SessionCount() == 0 })

	if _, err := srv.KillSessions(596, 300); err == nil {
		t.Fatal("class 300 accepted")
	}
}

func TestKillStatement(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	victim, killer := conn(t, db), conn(t, db)
	vs := spidOf(t, victim)
	ctx := testCtx(t, 5*time.Second)
	if _, err := killer.ExecContext(ctx, "KILL "+strconv.Itoa(vs)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the victim to end", 5*time.Second, func() bool { return srv.SessionCount() == 1 })
	if _, err := victim.ExecContext(ctx, "select 1"); err == nil {
		t.Fatal("killed session still answers")
	}
	var me mssql.Error
	if _, err := killer.ExecContext(ctx, "KILL "+strconv.Itoa(spidOf(t, killer))); !errors.As(err, &me) || me.Number != 6104 {
		t.Fatalf("self KILL: %v", err)
	}
	if _, err := killer.ExecContext(ctx, "kill 9999"); !errors.As(err, &me) || me.Number != 6106 {
		t.Fatalf("KILL of an unknown SPID: %v", err)
	}
}
