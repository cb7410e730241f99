package pool

import (
	"fmt"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"pgregory.net/rapid"
)

// The decision machine is tested without goroutines, sockets or sleeps:
// by table (one input in a given state), and by random walks of inputs
// with invariants (pgregory.net/rapid). Its executor is tested in
// supervisor_test.go.

var t0 = time.Unix(1_000_000, 0)

func testMachine(mod func(*Config)) *machine {
	cfg := Config{Tunnels: []string{"t"}}
	if mod != nil {
		mod(&cfg)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic(err)
	}
	m := newMachine(&cfg)
	return &m
}

func kinds(acts []action) string {
	s := ""
	for _, a := range acts {
		if s != "" {
			s += " "
		}
		switch a.kind {
		case actGate:
			if a.shut {
				s += "shut"
			} else {
				s += "open"
			}
		case actCheck:
			s += "check"
			if a.hold {
				s += "(hold)"
			}
		case actReset:
			s += "reset"
		case actCut:
			s += fmt.Sprintf("cut%d", len(a.ids))
		case actRebuild:
			s += fmt.Sprintf("rebuild%d", a.n)
		case actConnect:
			s += fmt.Sprintf("connect%d", a.n)
		case actArm:
			s += fmt.Sprintf("arm%d", a.timer)
		case actReap:
			s += "reap"
		case actHealth:
			s += "health:" + a.health.String()
		case actIgnored:
			s += "ignored"
		}
	}
	return s
}

func ev(state detect.State) input {
	return input{kind: inEvent, ev: detect.Event{Tunnel: "t", State: state}}
}

func done(m *machine, ok bool, how string) input {
	return input{kind: inCheckDone, epoch: m.epoch, res: checkResult{pathOK: ok, how: how, idle: 3}}
}

// Each row: inputs applied in order (each at t0 + its index × step); the
// actions of the last input, and the gate after it.
func TestNextTable(t *testing.T) {
	type step func(m *machine) input
	in := func(i input) step { return func(*machine) input { return i } }
	ok := func(m *machine) input { return done(m, true, "ping") }
	fail := func(m *machine) input { return done(m, false, "connect") }
	stale := func(m *machine) input { r := done(m, true, "old"); r.epoch--; return r }
	for _, tc := range []struct {
		name  string
		steps []step
		want  string
		shut  bool
	}{
		{"DOWN starts a check that holds the gate", []step{in(ev(detect.Down))}, "shut check(hold)", true},
		{"a DOWN's check finds the path: open, watch", []step{in(ev(detect.Down)), ok}, "open arm1", false},
		{"a DOWN's check finds it dead: gate stays, idle conns retired", []step{in(ev(detect.Down)), fail}, "health:unreachable reset arm1", true},
		{"while down, a recheck", []step{in(ev(detect.Down)), fail, in(input{kind: inTimer, timer: timerCheck})}, "check", true},
		{"the path answers again: open, rebuild, reap", []step{in(ev(detect.Down)), fail, in(ev(detect.Up)), ok}, "open health:recovering rebuild3 reap", false},
		{"an UP while a DOWN's check runs reopens the gate; the check goes on", []step{in(ev(detect.Down)), in(ev(detect.Up))}, "open", false},
		{"... and a DOWN after it shuts it again", []step{in(ev(detect.Down)), in(ev(detect.Up)), in(ev(detect.Down))}, "shut", true},
		{"an UP is a hint: a check, no hold", []step{in(ev(detect.Up))}, "check", false},
		{"a rekey is a hint: a check, no hold", []step{in(ev(detect.Rekey))}, "check", false},
		{"a result of another check is dropped", []step{in(ev(detect.Down)), stale}, "ignored", true},
		{"a DOWN while a check runs waits for it (pending)", []step{in(ev(detect.Up)), in(ev(detect.Down))}, "", false},
		{"... and is checked after it, holding", []step{in(ev(detect.Up)), in(ev(detect.Down)), ok}, "shut check(hold)", true},
		{"a lost conn: suspect, a check", []step{in(input{kind: inConnLost})}, "health:suspect check", false},
		{"a failed connect is a hint", []step{in(input{kind: inConnectFailed})}, "check", false},
		{"a request waiting while the path is up does nothing", []step{in(input{kind: inWaiting})}, "", false},
		{"a request waiting while down checks now", []step{in(ev(detect.Down)), fail, in(ev(detect.Up)), ok, in(ev(detect.Down)), fail, in(input{kind: inWaiting})}, "check", true},
		{"flows dead, some alive: cut those only", []step{in(input{kind: inFlowsDone, res: checkResult{sampled: 3, dead: []uint64{7}}})}, "cut1 reap", false},
		{"every flow sampled dead: cut, reset, rebuild", []step{in(input{kind: inFlowsDone, res: checkResult{sampled: 2, dead: []uint64{7, 8}, idle: 2}})}, "cut2 reset rebuild2 health:recovering reap", false},
		{"one flow sampled, dead: that one only (a lossy path's missed ping)", []step{in(input{kind: inFlowsDone, res: checkResult{sampled: 1, dead: []uint64{7}}})}, "cut1 reap", false},
		{"progress while recovering: healthy", []step{in(ev(detect.Down)), fail, in(ev(detect.Up)), ok, in(input{kind: inProgress})}, "health:healthy reap", false},
		{"Close opens the gate for good", []step{in(ev(detect.Down)), fail, in(input{kind: inClose})}, "open", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMachine(nil)
			var acts []action
			for i, s := range tc.steps {
				acts = m.next(s(m), t0.Add(time.Duration(i)*10*time.Millisecond))
			}
			if got := kinds(acts); got != tc.want || m.gateShut() != tc.shut {
				t.Fatalf("actions %q, gate shut %v; want %q, %v", got, m.gateShut(), tc.want, tc.shut)
			}
		})
	}
}

// A second automatic reset inside the cooldown is owed, not made, and made
// when the cooldown ends (one limiter, one owed).
func TestOneLimiterOwesOneReset(t *testing.T) {
	m := testMachine(nil)
	dead := func(id uint64) input {
		return input{kind: inFlowsDone, res: checkResult{sampled: 2, dead: []uint64{id, id + 100}}}
	}
	if got := kinds(m.next(dead(1), t0)); got != "cut2 reset rebuild0 health:recovering reap" {
		t.Fatalf("first: %q", got)
	}
	if got := kinds(m.next(dead(2), t0.Add(100*time.Millisecond))); got != "cut2 arm3 reap" {
		t.Fatalf("inside the cooldown: %q; want the cut, the reset owed (timer armed)", got)
	}
	if got := kinds(m.next(dead(3), t0.Add(200*time.Millisecond))); got != "cut2 reap" {
		t.Fatalf("again inside the cooldown: %q; want no second owed timer", got)
	}
	if got := kinds(m.next(input{kind: inTimer, timer: timerOwed}, t0.Add(time.Second))); got != "reset" {
		t.Fatalf("at the cooldown's end: %q; want the owed reset", got)
	}
	if got := kinds(m.next(input{kind: inTimer, timer: timerOwed}, t0.Add(3*time.Second))); got != "" {
		t.Fatalf("nothing owed: %q", got)
	}
}

// Checks that keep finding nothing are spaced further apart: 1000 toggles
// in one second on a working path cost a handful of checks.
func TestStormOfTogglesCostsBoundedChecks(t *testing.T) {
	m := testMachine(nil)
	checks, running := 0, false
	var timerAt time.Time
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if !timerAt.IsZero() && !now.Before(timerAt) {
			timerAt = time.Time{}
			for _, a := range m.next(input{kind: inTimer, timer: timerCheck}, now) {
				if a.kind == actCheck {
					checks++
					running = true
				}
			}
		}
		if running && i%3 == 0 { // a check takes 3ms
			running = false
			for _, a := range m.next(done(m, true, "ping"), now) {
				if a.kind == actCheck {
					checks++
					running = true
				}
				if a.kind == actArm && a.timer == timerCheck && (timerAt.IsZero() || now.Add(a.d).Before(timerAt)) {
					timerAt = now.Add(a.d)
				}
			}
		}
		st := detect.Down
		if i%2 == 1 {
			st = detect.Up
		}
		for _, a := range m.next(ev(st), now) {
			switch {
			case a.kind == actCheck:
				checks++
				running = true
			case a.kind == actReset || a.kind == actCut:
				t.Fatalf("toggle %d: %v on a working path", i, kinds([]action{a}))
			case a.kind == actArm && a.timer == timerCheck && (timerAt.IsZero() || now.Add(a.d).Before(timerAt)):
				timerAt = now.Add(a.d)
			}
		}
	}
	t.Logf("1000 toggles in 1s on a working path: %d checks", checks)
	if checks > 25 {
		t.Fatalf("%d checks; want them spaced (at most 25)", checks)
	}
}

// Random walks of inputs, with the invariants of verify-then-act checked
// after every step.
func TestMachineInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := testMachine(func(c *Config) {
			c.Tunnels = []string{"a", "b"}
			c.ProbeInterval = rapid.SampledFrom([]time.Duration{-1, time.Second}).Draw(rt, "probeInterval")
		})
		now := t0
		var resets []time.Time
		results := map[uint64]bool{} // epochs answered
		var lastEvent detect.State
		for range rapid.IntRange(1, 200).Draw(rt, "steps") {
			now = now.Add(time.Duration(rapid.IntRange(0, 300).Draw(rt, "ms")) * time.Millisecond)
			var in input
			switch k := rapid.IntRange(0, 8).Draw(rt, "input"); {
			case k <= 1:
				st := rapid.SampledFrom([]detect.State{detect.Down, detect.Up, detect.Rekey}).Draw(rt, "state")
				in = input{kind: inEvent, ev: detect.Event{Tunnel: rapid.SampledFrom([]string{"a", "b", detect.AllTunnels}).Draw(rt, "tunnel"), State: st}}
				if st != detect.Rekey {
					lastEvent = st
				}
			case k == 2:
				if !m.running {
					continue
				}
				epoch := m.epoch
				if rapid.Bool().Draw(rt, "stale") {
					epoch--
				}
				in = input{kind: inCheckDone, epoch: epoch, res: checkResult{pathOK: rapid.Bool().Draw(rt, "ok"), idle: 2}}
			case k == 3:
				n := rapid.IntRange(0, 3).Draw(rt, "sampled")
				d := rapid.IntRange(0, n).Draw(rt, "dead")
				res := checkResult{sampled: n}
				for i := range d {
					res.dead = append(res.dead, uint64(i+1))
				}
				in = input{kind: inFlowsDone, res: res}
			case k == 4:
				in = input{kind: rapid.SampledFrom([]inputKind{inConnLost, inConnectFailed, inStall, inWaiting}).Draw(rt, "hint")}
			case k == 5:
				in = input{kind: inProgress}
			default:
				in = input{kind: inTimer, timer: rapid.SampledFrom(timerNames).Draw(rt, "timer")}
			}
			wasRunning, epoch := m.running, m.epoch
			acts := m.next(in, now)
			checkFailed := in.kind == inCheckDone && !in.res.pathOK && wasRunning && in.epoch == epoch
			for _, a := range acts {
				switch a.kind {
				case actReset:
					// Only a failed check, dead flows, or a reset owed by one.
					if !checkFailed && !(in.kind == inFlowsDone && len(in.res.dead) > 0) && !(in.kind == inTimer && in.timer == timerOwed) {
						rt.Fatalf("reset after %+v, which is no checked fact", in)
					}
					resets = append(resets, now)
				case actCut:
					if in.kind != inFlowsDone || len(a.ids) != len(in.res.dead) {
						rt.Fatalf("cut after %+v: only flows checked dead are cut", in)
					}
				case actCheck:
					if a.epoch != m.epoch || !m.running {
						rt.Fatalf("a check started with epoch %d, machine at %d running %v", a.epoch, m.epoch, m.running)
					}
				}
			}
			if in.kind == inCheckDone && wasRunning && in.epoch == epoch {
				if results[epoch] {
					rt.Fatalf("check %d answered twice", epoch)
				}
				results[epoch] = true
			}
			// The gate: shut only while a check runs or the path was checked down.
			if m.gateShut() && !m.running && m.path != pathDown {
				rt.Fatalf("gate shut with no check running and the path not checked down")
			}
			// The last event an UP and a good check: the gate is open.
			if in.kind == inCheckDone && in.res.pathOK && wasRunning && in.epoch == epoch && lastEvent == detect.Up && !m.tunnels.down() && m.gateShut() {
				rt.Fatalf("gate shut after a good check, the tunnels reporting up")
			}
			// The limiter: at most one automatic reset per cooldown, plus the owed one.
			for i := 2; i < len(resets); i++ {
				if resets[i].Sub(resets[i-2]) < m.cooldown {
					rt.Fatalf("three resets within %v: %v", m.cooldown, resets[i-2:i+1])
				}
			}
			if m.running && m.pending != 0 && m.epoch == epoch && !wasRunning {
				rt.Fatalf("a check started with a hint still pending")
			}
		}
		// Health reaches Healthy once the path answers and work succeeds,
		// with or without the prober.
		if m.running {
			m.next(input{kind: inCheckDone, epoch: m.epoch, res: checkResult{pathOK: true}}, now)
		}
		for m.running || m.pending != 0 {
			now = now.Add(time.Second)
			m.next(input{kind: inTimer, timer: timerCheck}, now)
			if m.running {
				m.next(input{kind: inCheckDone, epoch: m.epoch, res: checkResult{pathOK: true}}, now)
			}
		}
		if m.path == pathDown {
			m.next(input{kind: inWaiting}, now)
			m.next(input{kind: inCheckDone, epoch: m.epoch, res: checkResult{pathOK: true}}, now)
		}
		m.next(input{kind: inFlowsDone}, now)
		m.next(input{kind: inProgress}, now)
		if m.health != Healthy || m.gateShut() {
			rt.Fatalf("after a good check and progress: health %v, gate shut %v", m.health, m.gateShut())
		}
	})
}

// An UP while the path is checked down makes the next check connect as
// many conns as the rebuild needs (kept for it), so the pool is full again
// when traffic returns; any other check connects one.
func TestUpWhileDownChecksWithTheRebuildsConnects(t *testing.T) {
	m := testMachine(nil)
	m.next(ev(detect.Down), t0)
	m.next(done(m, false, "connect"), t0) // idle 3: the rebuild owes 3
	var n int
	for _, a := range m.next(ev(detect.Up), t0.Add(time.Millisecond)) {
		if a.kind == actCheck {
			n = a.n
		}
	}
	if n != 3 {
		t.Fatalf("the UP's check connects %d; want 3 (the rebuild's)", n)
	}
	m.next(done(m, false, "connect"), t0.Add(2*time.Millisecond)) // the UP was early
	for _, a := range m.next(input{kind: inTimer, timer: timerCheck}, t0.Add(60*time.Millisecond)) {
		if a.kind == actCheck && a.n != 1 {
			t.Fatalf("a timed recheck connects %d; want 1", a.n)
		}
	}
}

// An UP that comes while a check of the down path runs gives that check
// the rebuild's connects at once (actConnect), once; the check's own
// connects may be SYNs lost in the void until their retransmission.
func TestUpWhileDownCheckRunsConnectsNow(t *testing.T) {
	m := testMachine(nil)
	m.next(ev(detect.Down), t0)
	m.next(done(m, false, "connect"), t0)                                        // idle 3: the rebuild owes 3
	m.next(input{kind: inTimer, timer: timerCheck}, t0.Add(60*time.Millisecond)) // a timed check of the down path runs
	if !m.running {
		t.Fatal("no check runs after the timer")
	}
	var got []action
	for _, a := range m.next(ev(detect.Up), t0.Add(70*time.Millisecond)) {
		if a.kind == actConnect || a.kind == actCheck {
			got = append(got, a)
		}
	}
	if len(got) != 1 || got[0].kind != actConnect || got[0].n != 3 || got[0].epoch != m.epoch {
		t.Fatalf("an UP during the check: %+v; want one actConnect n=3 for epoch %d", got, m.epoch)
	}
	for _, a := range m.next(ev(detect.Up), t0.Add(80*time.Millisecond)) {
		if a.kind == actConnect {
			t.Fatalf("a second UP during the same check connects again: %+v", a)
		}
	}
}

// A check started while a hint waits (spaced) answers that hint too: a
// routine look at the path, started while a lost conn's flows check was
// pending, looks at the flows, so the pool does not stay Suspect.
func TestStartedCheckAnswersThePendingHint(t *testing.T) {
	m := testMachine(nil)
	m.next(input{kind: inConnLost}, t0)
	m.next(done(m, true, "ping"), t0) // a hinted check that found the path working: the next hint is spaced
	m.next(input{kind: inFlowsDone}, t0)
	m.next(input{kind: inConnLost}, t0.Add(time.Millisecond))
	if m.running || m.pending != checkFlows {
		t.Fatalf("running %v pending %v; want the second hint spaced (pending)", m.running, m.pending)
	}
	var k checkKind
	for _, a := range m.next(input{kind: inTimer, timer: timerRoutine}, t0.Add(2*time.Millisecond)) {
		if a.kind == actCheck {
			k = a.check
		}
	}
	if k != checkFlows || m.pending != 0 {
		t.Fatalf("the routine check is kind %v (pending left %v); want checkFlows, nothing pending", k, m.pending)
	}
}

// A check of a down path staggers its connects for downWindow during the
// first downFastFor of the outage; later, one connect per check; a check
// of a working path has no window (its verdict staggers on its own).
func TestDownPathWindowEndsAfterDownFastFor(t *testing.T) {
	m := testMachine(nil)
	windowOf := func(acts []action) (time.Duration, bool) {
		for _, a := range acts {
			if a.kind == actCheck {
				return a.window, true
			}
		}
		return 0, false
	}
	if w, ok := windowOf(m.next(ev(detect.Down), t0)); !ok || w != 0 {
		t.Fatalf("a DOWN's check on a working path: window %v (started %v); want 0", w, ok)
	}
	m.next(done(m, false, "connect"), t0.Add(10*time.Millisecond))
	if w, ok := windowOf(m.next(input{kind: inTimer, timer: timerCheck}, t0.Add(time.Second))); !ok || w != downWindow {
		t.Fatalf("a recheck 1s into the outage: window %v (started %v); want %v", w, ok, downWindow)
	}
	m.next(done(m, false, "connect"), t0.Add(time.Second+10*time.Millisecond))
	if w, ok := windowOf(m.next(input{kind: inTimer, timer: timerCheck}, t0.Add(downFastFor+time.Second))); !ok || w != 0 {
		t.Fatalf("a recheck past downFastFor: window %v (started %v); want 0 (one connect)", w, ok)
	}
}
