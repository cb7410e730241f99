//go:build linux

package labrun

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/flapguard/flapguard/internal/lab"
	"github.com/flapguard/flapguard/pool"
)

// EnvStarvedDuration sets how long each CPU-starved run (S10) lasts, as a
// Go duration. Default 30s.
const EnvStarvedDuration = "FLAPGUARD_LAB_STARVED_DURATION"

// EnvStarvedShare sets S10's quota, in CPUs (e.g. 0.05: 5ms of CPU per
// 100ms period), on both paths. Default defaultStarvedShare: 0.05 under
// -race (as CI runs), 0.02 without (the lab report; 0.015 on the LAN):
// the race detector multiplies the app's CPU use, and 0.05 without it
// throttled only 6 of 83 periods.
const EnvStarvedShare = "FLAPGUARD_LAB_STARVED_SHARE"

// starvedPeriod is the quota's period.
const starvedPeriod = 100 * time.Millisecond

// TestStarved is S10 (issue 24): a CPU-starved client and no fault, on the
// LAN and on the 1%-loss 40ms WAN, with S9's bursty traffic (so pooled
// connections sit idle past 1s and are pinged before use). The starvation
// is a cgroup CPU quota on the test process, which is the app and runs
// both sides (lab.StarveCPU: 25% of one CPU per 100ms period, so its
// goroutines and timers stall for up to 75ms at a time), applied once the
// path and the pools are up and lifted at the end. A quota rather than a
// pinned busy loop: it starves only the app, not the lab's servers and
// path emulator (whose delays would then be the servers', not the
// client's), nor the other work on a shared machine, and it starves the
// same way on any machine. Bounds, as S9's (checkLossy): failures ≤ plain
// (+1 for chance on the lossy path), 0 resets, liveness false alarms ≤ 1%
// of checks, p99 ≤ 1.25× plain's.
//
// Measured on the lab's 2-core machine while other agents loaded it (30s
// runs; plain / flapguard; failures 0 / 0 and 0 resets in every run):
//   - without -race, 0.02 CPU (the lab report's setting), closed loop: LAN
//     p99 229 / 201ms (unstarved: a few ms), 36 of 86 periods throttled,
//     0 of 83 liveness checks failed; WAN 1%: p99 337 / 381ms, 53 of 118
//     throttled. Open loop: LAN p99 435 / 435ms, WAN 503 / 443ms, 0 false
//     liveness.
//   - without -race, 0.05 CPU: the WAN open run was throttled in only 6 of
//     83 periods (too little to call starved: hence 0.02 without -race).
//   - under -race, 0.25 CPU: never throttled (0 of 107 periods); 0.05 CPU,
//     10s LAN: 16 of 33 periods throttled, p99 338 / 280ms.
//   - 5 of 5 under -race (as CI runs it), open loop, 0.05 CPU, 30s each:
//     every run passed every bound, 0 failures either side, 0 resets, 0
//     false liveness (of 76-80 checks each); p99 plain / flapguard, LAN:
//     224/215, 219/241, 187/156, 229/229, 251/253ms (31-36 of 75-90
//     periods throttled); WAN 1%: 539/518, 486/418, 656/599, 467/423,
//     577/541ms (48-56 of 112-118 throttled).
//   - the CI command (-race, closed and open, 13:22-13:32 UTC, the machine
//     busier: 72 of 134 periods throttled) FAILED once: WAN 1% closed, 1 of
//     80 liveness checks failed falsely (1.2% > 1%), p99 335 / 419ms, 0
//     failures; its open run and both LAN runs passed. Per issue 24 the fix
//     belongs to the liveness deadline (count only time the process could
//     run), not to the bound.
//   - after the coarse clock (commit ae7cddd, 25ns per query), without
//     -race, 5 runs of -count=5 each setting (2026-12-07, p99 plain /
//     flapguard ms; failures 0 / 0, 0 resets everywhere):
//     0.02 CPU on both paths: every bound held in 20 of 20 rows, but the
//     LAN runs were throttled in only 11-27 of 201-230 periods, under 10%
//     in 4 of 5 runs (the app now needs less CPU): those runs failed the
//     validity floor below. 0.01: 22-65% throttled; LAN closed 335/400,
//     200/269 (1.35x: over the bound), 898/800, 382/378, 569/570; WAN open
//     1 of 73 liveness checks failed falsely (1.4%) once.
//     0.015 LAN / 0.02 WAN (the defaults since): 11-32% throttled; 19 of
//     20 rows held every bound; LAN closed 199/178, 245/247, 279/279,
//     256/299, 210/206; LAN open 1045/1124, 268/339 (1.265x: over the
//     bound by 4ms), 551/591, 274/254, 172/152; WAN closed 577/577,
//     321/321, 756/754, 688/687, 318/355; WAN open 390/386, 462/491,
//     556/536, 656/577, 631/570; 0 false liveness of 72-82 checks each.
//     Flapguard's p99 is above plain's in 7 of 20 rows and below in 10:
//     with 343 requests, p99 is the fourth slowest, and which side's
//     request a throttled period lands on is chance.
func TestStarved(t *testing.T) {
	ls := labWithServers(t)
	l, heal := ls.lab, ls.heal
	tg := ls.targets[0]
	d := 30 * time.Second
	if v := os.Getenv(EnvStarvedDuration); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive Go duration", EnvStarvedDuration, v)
		}
	}
	shareLAN, shareWAN := defaultStarvedShareLAN, defaultStarvedShare
	if v := os.Getenv(EnvStarvedShare); v != "" {
		var err error
		if shareWAN, err = strconv.ParseFloat(v, 64); err != nil || shareWAN <= 0 {
			t.Fatalf("%s=%q: want a positive number of CPUs", EnvStarvedShare, v)
		}
		shareLAN = shareWAN
	}
	for _, wan := range []bool{false, true} {
		name, loss, share := "LAN", 0.0, shareLAN
		if wan {
			name, loss, share = "wan-1%", 0.01, shareWAN
		}
		t.Run("S10-"+name+"-"+tg.Server, func(t *testing.T) {
			eachLoop(t, true, func(t *testing.T, lp Loop) {
				defer heal(t)
				plain, fg := tg.Build(t, pool.Config{}, 8)
				sc := LossyScenario(tg, loss, d)
				sc.Loop = lp
				sc.Name = "S10-" + name
				sc.Title = fmt.Sprintf("CPU-starved app (%g%% of one CPU per %v), no fault, bursty traffic for %v", share*100, starvedPeriod, d)
				if !wan {
					sc.Path = nil
				}
				var th lab.Throttle
				sc.Script = func(s *Script) error {
					q, err := lab.StarveCPU(t, share, starvedPeriod)
					if err != nil {
						return err
					}
					Sleep(d)
					th, err = q.Lift()
					return err
				}
				r := Run(t, l, sc, plain, fg)
				rows := Lossy(r)
				t.Log("\n" + LossyTable(r, rows))
				checkLossy(t, r, rows)
				// Not a bound of the issue: a run the quota never
				// throttled starved nothing and tests nothing.
				if th.Throttled*10 < th.Periods {
					t.Errorf("the quota throttled %d of %d periods; want at least 10%%: the app was not starved", th.Throttled, th.Periods)
				}
			})
		})
	}
}
