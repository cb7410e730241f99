package pool

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// The executor under testing/synctest: its timers run on the bubble's
// virtual clock, so these tests wait on no real timer and cannot pass by
// a lucky schedule.

// openBubble opens a pool over the fake driver (no sockets) inside the
// current bubble.
func openBubble(t *testing.T, cfg Config) (*Pool, *fakeDriver) {
	d := &fakeDriver{}
	p := OpenDB(d, cfg)
	t.Cleanup(func() { p.Close() })
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}
	return p, d
}

// A path checked down is checked again every 50ms (downEvery), and the
// gate opens within one such period of the path's return.
func TestExecutorRechecksADeadPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, d := openBubble(t, Config{ProbeInterval: time.Hour, LivenessIdle: -1, DownWait: -1})
		d.kill()
		v, err := p.NotifyWait(context.Background(), detect.Event{Tunnel: "t", State: detect.Down})
		if err != nil || !v.Checked || v.PathOK || !p.Stats().TunnelDown {
			t.Fatalf("DOWN on a dead path: %v %v gate %v", v, err, p.Stats().TunnelDown)
		}
		probes := p.Stats().Probes
		time.Sleep(time.Second)
		synctest.Wait()
		n := p.Stats().Probes - probes
		t.Logf("checks in one second of a dead path: %d", n)
		if n < 15 || n > 25 {
			t.Fatalf("%d checks in 1s while down; want one every 50ms (about 20)", n)
		}
		d.revive()
		back := time.Now()
		for p.Stats().TunnelDown {
			time.Sleep(time.Millisecond)
		}
		if took := time.Since(back); took > downEvery+time.Millisecond {
			t.Fatalf("gate opened %v after the path came back; want within %v", took, downEvery)
		}
	})
}

// Without a prober a request waiting at the gate starts the check: the
// gate opens at once when the path is back, not at the end of DownWait.
func TestExecutorWaiterStartsTheCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, d := openBubble(t, Config{ProbeInterval: -1, LivenessIdle: -1, DownWait: 5 * time.Second})
		p.DB().SetMaxIdleConns(0)
		d.kill()
		p.NotifyWait(context.Background(), detect.Event{Tunnel: "t", State: detect.Down})
		time.Sleep(time.Second) // no timed checks: nothing looks
		synctest.Wait()
		d.revive()
		start := time.Now()
		if err := p.DB().Ping(); err != nil {
			t.Fatalf("request after the path came back: %v", err)
		}
		if took := time.Since(start); took > 0 {
			t.Fatalf("the waiting request took %v of virtual time; its kick should check at once", took)
		}
	})
}

// The limiter on the executor: dead flows found twice within the cooldown
// make one reset now and one owed, made when the cooldown ends.
func TestExecutorOwedResetIsMade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := openBubble(t, Config{ProbeInterval: -1, ResetCooldown: time.Second})
		dead := input{kind: inFlowsDone, res: checkResult{sampled: 2, dead: []uint64{1, 2}}}
		p.sup.sync(func() { p.sup.apply(dead) })
		p.sup.sync(func() { p.sup.apply(dead) })
		if r := p.Stats().Resets; r != 1 {
			t.Fatalf("%d resets within the cooldown; want 1", r)
		}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if r := p.Stats().Resets; r != 1 {
			t.Fatalf("%d resets before the cooldown ended; want 1", r)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if r := p.Stats().Resets; r != 2 {
			t.Fatalf("%d resets after the cooldown; want the owed one made (2)", r)
		}
	})
}
