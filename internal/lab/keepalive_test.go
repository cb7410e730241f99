//go:build linux

package lab

import (
	"testing"
	"time"

	"github.com/flapguard/flapguard/internal/sockopt"
)

// The check the pool runs on a flow with a request in flight
// (pool/probe.go, probeFlow): the kernel's own keepalive probe, asked for
// now by setting TCP_KEEPIDLE on the live socket, answered or not. Across
// the lab's router, with real packets dropped: a live flow idle for a
// second answers within milliseconds; a flow a rekey killed does not.
func TestKeepAliveProbeTellsLiveFromDeadFlows(t *testing.T) {
	l := New(t)
	addr, _ := echoServer(t, l)
	c := dialApp(t, l, addr)
	if line, err := roundtrip(c, "hello", 2*time.Second); err != nil || line != "hello" {
		t.Fatalf("roundtrip: %q, %v", line, err)
	}
	answered := func(wait time.Duration) (time.Duration, bool) {
		before, ok := sockopt.Heard(c)
		if !ok {
			t.Fatal("no TCP_INFO on the app's socket")
		}
		asked := time.Now()
		restore, sent := sockopt.KeepAliveProbe(c)
		defer restore()
		if !sent {
			t.Fatal("no keepalive probe could be asked for on an idle flow")
		}
		for time.Since(asked) < wait {
			if ago, _ := sockopt.Heard(c); ago+5*time.Millisecond < before+time.Since(asked) {
				return time.Since(asked), true
			}
			time.Sleep(time.Millisecond)
		}
		return wait, false
	}
	time.Sleep(1100 * time.Millisecond) // idle past the kernel's smallest TCP_KEEPIDLE
	took, ok := answered(500 * time.Millisecond)
	t.Logf("live flow: keepalive answered %v after %v", ok, took)
	if !ok {
		t.Fatal("a live flow's keepalive probe was not answered within 500ms")
	}
	if _, err := l.BeginRekey(); err != nil {
		t.Fatal(err)
	}
	if err := l.EndRekey(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	took, ok = answered(500 * time.Millisecond)
	t.Logf("dead flow: keepalive answered %v after %v", ok, took)
	if ok {
		t.Fatal("a flow the rekey killed answered its keepalive probe")
	}
	// Once answered or given up on, the socket's own keepalive setting is
	// back: no probe every second from now on.
	if line, err := roundtrip(dialApp(t, l, addr), "fresh", 2*time.Second); err != nil || line != "fresh" {
		t.Fatalf("a new flow after the rekey: %q, %v", line, err)
	}
}
