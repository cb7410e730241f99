//go:build linux

package lab

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBlackholeRestore(t *testing.T) {
	l := New(t)
	addr, _ := echoServer(t, l)
	c := dialApp(t, l, addr)
	if line, err := roundtrip(c, "before", 2*time.Second); err != nil || line != "before" {
		t.Fatalf("before: %q, %v", line, err)
	}

	if err := l.Blackhole(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundtrip(c, "during", time.Second); !isTimeout(err) {
		t.Fatalf("roundtrip through the blackhole = %v, want a timeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if c2, err := l.DialApp(ctx, "tcp", addr); err == nil || !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		if c2 != nil {
			c2.Close()
		}
		t.Fatalf("dial through the blackhole = %v, want the ctx deadline", err)
	}

	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	// The "during" line was queued, not lost: retransmission delivers it and
	// its echo once the path is back.
	if line, err := readLine(c, 10*time.Second); err != nil || line != "during" {
		t.Fatalf("after Restore, queued echo = %q, %v", line, err)
	}
	if line, err := roundtrip(c, "after", 2*time.Second); err != nil || line != "after" {
		t.Fatalf("after Restore: %q, %v", line, err)
	}

	// Flap: a short blackhole the same conn survives.
	flapDone := make(chan error, 1)
	go func() { flapDone <- l.Flap(700 * time.Millisecond) }()
	time.Sleep(100 * time.Millisecond) // inside the flap (correctness does not depend on it: see below)
	if line, err := roundtrip(c, "flap", 10*time.Second); err != nil || line != "flap" {
		t.Fatalf("across a flap: %q, %v", line, err)
	}
	if err := <-flapDone; err != nil {
		t.Fatal(err)
	}

	w := l.Faults()
	if len(w) != 2 || w[0].Kind != FaultBlackhole || w[1].Kind != FaultBlackhole {
		t.Fatalf("Faults() = %+v, want two blackhole windows", w)
	}
	for _, fw := range w {
		if fw.End.IsZero() || !fw.End.After(fw.Start) {
			t.Errorf("window %+v not closed", fw)
		}
	}
	if d := w[1].End.Sub(w[1].Start); d < 700*time.Millisecond {
		t.Errorf("flap window lasted %v, want >= 700ms", d)
	}
}

func TestRekeyKillsOldFlowsOnly(t *testing.T) {
	l := New(t)
	addr, _ := echoServer(t, l)
	old := dialApp(t, l, addr)
	if line, err := roundtrip(old, "old", 2*time.Second); err != nil || line != "old" {
		t.Fatalf("old conn: %q, %v", line, err)
	}

	killed, err := l.BeginRekey()
	if err != nil {
		t.Fatal(err)
	}
	oldFlow := Flow{App: old.LocalAddr().(*net.TCPAddr).AddrPort(), DB: old.RemoteAddr().(*net.TCPAddr).AddrPort()}
	found := false
	for _, f := range killed {
		found = found || f == oldFlow
	}
	if !found {
		t.Fatalf("BeginRekey killed %v, not the established %v", killed, oldFlow)
	}
	time.Sleep(300 * time.Millisecond) // the tunnel is down for a while
	if err := l.EndRekey(); err != nil {
		t.Fatal(err)
	}

	// New flows work at once...
	fresh := dialApp(t, l, addr)
	if line, err := roundtrip(fresh, "new", 2*time.Second); err != nil || line != "new" {
		t.Fatalf("new conn after EndRekey: %q, %v", line, err)
	}
	// ...while the old one is silently dead: no RST, no echo, ever.
	if _, err := roundtrip(old, "still-there?", 3*time.Second); !isTimeout(err) {
		t.Fatalf("old conn after EndRekey = %v, want a timeout (silently dropped)", err)
	}
	if line, err := readLine(old, 2*time.Second); !isTimeout(err) {
		t.Fatalf("old conn later read %q, %v: it came back", line, err)
	}
	if got := l.DeadFlows(); len(got) != len(killed) {
		t.Errorf("DeadFlows() = %v, want %v", got, killed)
	}
	w := l.Faults()
	if len(w) != 1 || w[0].Kind != FaultRekey || w[0].End.IsZero() {
		t.Errorf("Faults() = %+v, want one closed rekey window", w)
	}

	// ReviveFlows lets the old flow through again (retransmission resumes).
	if err := l.ReviveFlows(); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(old, 15*time.Second); err != nil || line != "still-there?" {
		t.Fatalf("old conn after ReviveFlows = %q, %v", line, err)
	}
}

func TestResetRefusesQuickly(t *testing.T) {
	l := New(t)
	addr, _ := echoServer(t, l)
	est := dialApp(t, l, addr)
	if err := l.Reset(true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	c, err := l.DialApp(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("dial under Reset succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dial under Reset = %v, want ECONNREFUSED or ECONNRESET", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v, want well under 1s", d)
	}
	// An established flow gets reset on its next packet.
	if _, err := roundtrip(est, "x", 3*time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("established conn under Reset = %v, want ECONNRESET", err)
	}
	if err := l.Reset(false); err != nil {
		t.Fatal(err)
	}
	c = dialApp(t, l, addr)
	if line, err := roundtrip(c, "ok", 2*time.Second); err != nil || line != "ok" {
		t.Fatalf("after Reset(false): %q, %v", line, err)
	}
}

func TestAsymmetric(t *testing.T) {
	l := New(t)
	addr, got := echoServer(t, l)
	c := dialApp(t, l, addr)
	if line, err := roundtrip(c, "warm", 2*time.Second); err != nil || line != "warm" {
		t.Fatalf("warm-up: %q, %v", line, err)
	}
	<-got

	// db->app dropped: the request arrives, the answer never does.
	if err := l.Asymmetric(DBToApp); err != nil {
		t.Fatal(err)
	}
	if _, err := roundtrip(c, "req1", time.Second); !isTimeout(err) {
		t.Fatalf("roundtrip with db->app dropped = %v, want a timeout", err)
	}
	select {
	case line := <-got:
		if line != "req1\n" {
			t.Fatalf("server got %q", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("with only db->app dropped, the request never reached the server")
	}
	if err := l.Asymmetric(NoDirection); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(c, 10*time.Second); err != nil || line != "req1" {
		t.Fatalf("echo after lifting: %q, %v", line, err)
	}

	// app->db dropped: the request never arrives.
	if err := l.Asymmetric(AppToDB); err != nil {
		t.Fatal(err)
	}
	if _, err := roundtrip(c, "req2", time.Second); !isTimeout(err) {
		t.Fatalf("roundtrip with app->db dropped = %v, want a timeout", err)
	}
	select {
	case line := <-got:
		t.Fatalf("with app->db dropped, the server still got %q", line)
	case <-time.After(time.Second):
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(c, 10*time.Second); err != nil || line != "req2" {
		t.Fatalf("echo after Restore: %q, %v", line, err)
	}
	w := l.Faults()
	if len(w) != 2 || w[0].Detail != "db->app" || w[1].Detail != "app->db" || w[1].End.IsZero() {
		t.Errorf("Faults() = %+v", w)
	}
	if err := l.Asymmetric(Direction(7)); err == nil {
		t.Error("Asymmetric accepted an unknown direction")
	}
}
