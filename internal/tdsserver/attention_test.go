package tdsserver

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestWaitforInterruptedByDeadline: the driver sends ATTENTION when the
// context ends (token.go:1240); the server must cut the WAITFOR short and
// confirm, so the query returns at about the deadline.
func TestWaitforInterruptedByDeadline(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	if err := db.PingContext(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := db.ExecContext(ctx, "WAITFOR DELAY '00:00:20'")
	took := time.Since(start)
	t.Logf("WAITFOR with a %v deadline returned after %v: %v", deadline, took, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded (cancellation confirmed)", err)
	}
	if took < deadline || took > deadline+time.Second {
		t.Fatalf("returned after %v, want about %v", took, deadline)
	}
	if _, err := db.ExecContext(testCtx(t, 5*time.Second), "select 1"); err != nil {
		t.Fatalf("query after the cancelled one: %v", err)
	}
}

func TestWaitforCompletes(t *testing.T) {
	srv := startServer(t, Config{})
	db := openDB(t, srv, "")
	start := time.Now()
	res, err := db.ExecContext(testCtx(t, 5*time.Second), "waitfor delay '00:00:00.2'")
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("WAITFOR of 200ms returned after %v", took)
	}
	if n, _ := res.RowsAffected(); n != 0 {
		t.Fatalf("WAITFOR RowsAffected = %d", n)
	}
	if _, err := db.ExecContext(testCtx(t, 5*time.Second), "waitfor delay '25:00'"); err == nil {
		t.Fatal("WAITFOR '25:00' accepted")
	}
}

// TestAttentionOnTheWire checks both places an ATTENTION can land: during a
// running request (one reply: DONE with DONE_ATTN, no result) and after the
// reply went out (a separate DONE_ATTN reply), which go-mssqldb reads as its
// "second response" (token.go:1290).
func TestAttentionOnTheWire(t *testing.T) {
	srv := startServer(t, Config{})
	rc := dialRaw(t, srv)
	rc.login(4096)

	rc.send(packSQLBatch, 0, 4096, batchPayload("WAITFOR DELAY '00:00:30'"))
	waitFor(t, "the WAITFOR to run", 5*time.Second, func() bool {
		in := srv.Sessions()
		return len(in) == 1 && in[0].Busy
	})
	start := time.Now()
	rc.send(packAttention, 0, 4096, nil)
	p, _ := rc.recv()
	if len(p) != 13 || lastDoneStatus(p) != doneAttn {
		t.Fatalf("reply to ATTENTION during WAITFOR: % x", p)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("ATTENTION took %v to interrupt WAITFOR", took)
	}

	rc.send(packSQLBatch, 0, 4096, batchPayload("select 1"))
	if p, _ := rc.recv(); lastDoneStatus(p) != doneCount {
		t.Fatalf("select 1 reply: % x", p)
	}
	rc.send(packAttention, 0, 4096, nil)
	if p, _ := rc.recv(); len(p) != 13 || lastDoneStatus(p) != doneAttn {
		t.Fatalf("reply to idle ATTENTION: % x", p)
	}
	rc.send(packSQLBatch, statusResetConn, 4096, batchPayload("select 1"))
	if p, _ := rc.recv(); p[0] != tokEnvChange || p[3] != envResetAck || lastDoneStatus(p) != doneCount {
		t.Fatalf("reply with RESETCONNECTION: % x", p)
	}
}

// TestFreezeOnTheWire shows without timing that a frozen session sends
// nothing and swallows requests and ATTENTION: after Unfreeze, the first
// reply is the one to the request sent after Unfreeze.
func TestFreezeOnTheWire(t *testing.T) {
	srv := startServer(t, Config{})
	rc := dialRaw(t, srv)
	rc.login(4096)
	spid := srv.Sessions()[0].SPID

	// A request running when the freeze starts: its answer is never sent.
	rc.send(packSQLBatch, 0, 4096, batchPayload("WAITFOR DELAY '00:00:00.2'"))
	waitBusy(t, srv)
	srv.Freeze()
	waitFor(t, "the WAITFOR's reply to be dropped", 5*time.Second, func() bool {
		return srv.Sessions()[0].Dropped == 1
	})

	rc.send(packSQLBatch, 0, 4096, batchPayload("select 1"))
	rc.send(packAttention, 0, 4096, nil)
	rc.send(packSQLBatch, 0, 4096, batchPayload("INSERT INTO frozen VALUES (1)"))
	waitFor(t, "the frozen session to swallow 3 messages", 5*time.Second, func() bool {
		in := srv.Sessions()
		return len(in) == 1 && in[0].Swallowed == 3
	})
	srv.Unfreeze()
	rc.send(packSQLBatch, 0, 4096, batchPayload("SELECT @@SPID"))
	p, _ := rc.recv()
	row := []byte{tokRow, 2, byte(spid), byte(spid >> 8)}
	if !bytes.Contains(p, row) || lastDoneStatus(p) != doneCount {
		t.Fatalf("first reply after Unfreeze is not SELECT @@SPID's: % x", p)
	}
	if got := srv.TableIDs("frozen"); len(got) != 0 {
		t.Fatalf("a request sent while frozen ran: %v", got)
	}
}
