package pool

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// A replayed DOWN (captured, sent again after the UP that answered it)
// must not undo that UP. Before Accept judged staleness, such a DOWN
// severed the pool (issue 22: 4 queries in flight failed).
func TestReplayedDownIsRefused(t *testing.T) {
	p, _, clk := supPool(t, func(c *Config) { c.Tunnels = []string{"t"} })
	at := clk.now()
	if err := p.Accept(detect.Event{Tunnel: "t", State: detect.Down, At: at.Add(-2 * time.Second)}); err != nil {
		t.Fatalf("first DOWN: %v", err)
	}
	if err := p.Accept(detect.Event{Tunnel: "t", State: detect.Up, At: at.Add(-time.Second)}); err != nil {
		t.Fatalf("UP: %v", err)
	}
	settle(t, p)
	severs := p.Stats().Severs
	err := p.Accept(detect.Event{Tunnel: "t", State: detect.Down, At: at.Add(-2 * time.Second)})
	if !errors.Is(err, detect.ErrIgnored) || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("replayed DOWN: %v; want ErrIgnored, stale", err)
	}
	p.sup.sync(func() { p.sup.step() })
	settle(t, p)
	if s := p.Stats(); s.Severs != severs || s.TunnelDown {
		t.Fatalf("the replayed DOWN changed the pool: %+v", s)
	}
	// A DOWN dated after the UP is news, and taken.
	if err := p.Accept(detect.Event{Tunnel: "t", State: detect.Down, At: at}); err != nil {
		t.Fatalf("a fresh DOWN: %v", err)
	}
}

func TestAcceptSaysWhyItIgnores(t *testing.T) {
	p, _, clk := supPool(t, func(c *Config) { c.Tunnels = []string{"t"} })
	for _, tc := range []struct {
		ev   detect.Event
		want string
	}{
		{detect.Event{Tunnel: "other", State: detect.Down}, "not one of this pool's tunnels"},
		{detect.Event{Tunnel: "t", State: 9}, "invalid"},
		{detect.Event{Tunnel: "t", State: detect.Down, At: clk.now().Add(-time.Hour)}, "EventMaxAge"},
	} {
		err := p.Accept(tc.ev)
		if !errors.Is(err, detect.ErrIgnored) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Accept(%v) = %v; want ErrIgnored mentioning %q", tc.ev, err, tc.want)
		}
	}
	p.Close()
	if err := p.Accept(detect.Event{Tunnel: "t", State: detect.Up}); !errors.Is(err, detect.ErrIgnored) {
		t.Fatalf("after Close: %v; want ErrIgnored", err)
	}
	if s := p.String(); !strings.Contains(s, "closed") {
		t.Fatalf("String after Close = %q; want it to say closed", s)
	}
}

// The pool's own log is rate-limited per kind: 5000 future-dated events
// gave 5000 WARN lines (859 KB) before (issue 22).
func TestPoolLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	p, _, clk := supPool(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	for range 5000 {
		p.Accept(detect.Event{Tunnel: "x", State: detect.Up, At: clk.now().Add(time.Hour)})
		p.Accept(detect.Event{Tunnel: "", State: detect.Up})
	}
	future := strings.Count(buf.String(), "dated in the future")
	ignored := strings.Count(buf.String(), "msg=\"flapguard: tunnel-ignored\"")
	t.Logf("5000 future-dated and 5000 invalid events: %d and %d log lines, %d bytes in all", future, ignored, buf.Len())
	if future > 2 || ignored > 2 {
		t.Fatalf("future-dated: %d lines, invalid: %d lines; want at most 2 each within a second", future, ignored)
	}
	if got := p.Stats().EventsIgnored; got != 5000 {
		t.Fatalf("EventsIgnored = %d; want every one counted (5000)", got)
	}
}

// A request waits at the gate DownWait in all, although database/sql
// meets the gate up to three times (a retired idle conn renewed at borrow
// fails with driver.ErrBadConn, and database/sql retries); it waited 10s
// with one idle conn and 15s with two before. A request whose own deadline
// ends at the gate gets an error that is both ErrTunnelDown and the
// context's error (it was a bare context error).
func TestGateWaitIsDownWaitInAll(t *testing.T) {
	const wait = 300 * time.Millisecond
	p, d, _ := supPool(t, func(c *Config) { c.DownWait = wait })
	idleConns(t, p, 2)
	d.kill()
	apply(t, p, down("t"))
	if !p.Stats().TunnelDown {
		t.Fatal("gate open after DOWN")
	}
	start := time.Now()
	_, err := p.DB().Exec("select 1")
	took := time.Since(start)
	t.Logf("no deadline: %v after %v", err, took)
	if !errors.Is(err, ErrTunnelDown) || took > 2*wait {
		t.Fatalf("no deadline: err %v after %v; want ErrTunnelDown within %v", err, took, 2*wait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait/3)
	defer cancel()
	_, err = p.DB().ExecContext(ctx, "select 1")
	if !errors.Is(err, ErrTunnelDown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline shorter than DownWait: %v; want both ErrTunnelDown and DeadlineExceeded", err)
	}
}
