//go:build linux

package labrun

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/lab"
	"github.com/flapguard/flapguard/pool"
)

// EnvVerifyRuns repeats each scenario of TestVerifyThenAct whose goal is
// stated "in N of N runs" (issue 25). Default 1; the goals say 10.
const EnvVerifyRuns = "FLAPGUARD_LAB_VERIFY_RUNS"

// TestVerifyThenAct holds the lab goals of issue 25 ("verify, then act"),
// each side by side with plain, in both loops where that makes sense. They
// judge the supervisor's redesign: several fail on the supervisor that
// acts on what it is told (the report of issue 24 lists which), and it is
// kept out of CI (.ci/run -skip) until the redesign lands. The bounds are
// the issue's, asserted as stated; every run prints what it measured.
//
//	go test -run TestVerifyThenAct -v ./    (in internal/labrun, GOWORK=off)
func TestVerifyThenAct(t *testing.T) {
	ls := labWithServers(t)
	l, targets, heal := ls.lab, ls.targets, ls.heal
	pg, tds := targets[0], targets[2]
	runs := verifyRuns(t)
	notify := func(p *pool.Pool, st detect.State) {
		p.Notify(detect.Event{Tunnel: "vpn", State: st, Source: "lab"})
	}
	vpn := pool.Config{Tunnels: []string{"vpn"}}
	fast := func(tg Target, deadline time.Duration) Load {
		return Load{Workers: 8, Deadline: deadline, Query: tg.Query, Pause: 20 * time.Millisecond, Rate: 200, Poisson: true, Seed: 25}
	}

	// V1: a wrong DOWN for the pool's only tunnel every 1.1s (just past
	// ResetCooldown) while the path works; 8 workers run 0.5s queries with
	// a 3s deadline for 11s. Goal: flapguard fails no more than plain, 0
	// severs.
	t.Run("V1-wrong-down-postgres", func(t *testing.T) {
		eachLoop(t, true, func(t *testing.T, lp Loop) {
			defer heal(t)
			plain, fg := pg.Build(t, vpn, 8)
			load := Load{Workers: 8, Deadline: 3 * time.Second, Query: pg.Sleep(500 * time.Millisecond), Pause: 20 * time.Millisecond,
				Rate: 10, Poisson: true, Seed: 25} // 8 slots of 0.5s serve 16/s
			before := fg.Pool.Stats()
			r := Run(t, l, Scenario{Loop: lp, Name: "V1", Title: "a wrong DOWN every 1.1s, path working, 0.5s queries", Server: "postgres",
				Load: load, Script: func(s *Script) error {
					for range 10 {
						Sleep(1100 * time.Millisecond)
						notify(fg.Pool, detect.Down)
					}
					Sleep(time.Second)
					return nil
				}}, plain, fg)
			st := fg.Pool.Stats()
			p, f := r.Side("plain"), r.Side("flapguard")
			t.Logf("V1 (%s): plain %d ok / %d failed; flapguard %d ok / %d failed, %d severs, %d connections opened (%d probes)",
				lp, p.Succeeded, p.Failed, f.Succeeded, f.Failed, st.Severs-before.Severs, st.Connects-before.Connects, st.Probes-before.Probes)
			if f.Failed > p.Failed {
				t.Errorf("flapguard failed %d requests, plain %d; goal: no more than plain", f.Failed, p.Failed)
			}
			if n := st.Severs - before.Severs; n != 0 {
				t.Errorf("flapguard severed %d times on a working path; goal 0", n)
			}
		})
	})

	// V2: 1000 DOWN/UP toggles in about 1s on a working path. Goal: 0
	// severs, 0 failed, at most 10 connections opened in all, probes
	// included.
	t.Run("V2-toggles-postgres", func(t *testing.T) {
		eachLoop(t, true, func(t *testing.T, lp Loop) {
			defer heal(t)
			plain, fg := pg.Build(t, vpn, 8)
			var before pool.Stats
			r := Run(t, l, Scenario{Loop: lp, Name: "V2", Title: "1000 DOWN/UP toggles in 1s, path working", Server: "postgres",
				Load: fast(pg, 2*time.Second), Script: func(s *Script) error {
					Sleep(1500 * time.Millisecond)
					before = fg.Pool.Stats()
					for i := range 1000 {
						st := detect.Down
						if i%2 == 1 {
							st = detect.Up
						}
						notify(fg.Pool, st)
						time.Sleep(time.Millisecond)
					}
					s.Back()
					Sleep(3 * time.Second)
					return nil
				}}, plain, fg)
			st := fg.Pool.Stats()
			f := r.Side("flapguard")
			opened := st.Connects - before.Connects
			t.Logf("V2 (%s): flapguard %d failed (plain %d), %d severs, %d resets, %d connections opened (%d of them probes), gate shut at the end %v",
				lp, f.Failed, r.Side("plain").Failed, st.Severs-before.Severs, st.Resets-before.Resets, opened, st.Probes-before.Probes, st.TunnelDown)
			if n := st.Severs - before.Severs; n != 0 || f.Failed != 0 || opened > 10 {
				t.Errorf("1000 toggles: %d severs, %d failed, %d connections opened; goal 0, 0, ≤ 10", n, f.Failed, opened)
			}
		})
	})

	// V3: a correct DOWN: the path really goes down (a rekey: every old
	// flow dies) for 1.5s, the feed says DOWN then UP; requests have a 3s
	// deadline, so those in flight at DOWN outlive the outage. Goal: new
	// requests wait at the gate and never enter the dead path (no pooled
	// connection is opened during the outage); requests in flight keep
	// their own deadline (none is cut before the path is back: while it is
	// down their flow cannot be checked) and are cut once the path answers
	// and their flow is found dead (measured: from back to their end).
	// A request borrowed during the outage must not fail: it waits at the
	// gate (DownWait 5s) and its 3s deadline outlasts the outage.
	for _, wan := range []bool{false, true} {
		name := "V3-correct-down-postgres"
		if wan {
			name = "V3-correct-down-wan-postgres"
		}
		t.Run(name, func(t *testing.T) {
			eachLoop(t, true, func(t *testing.T, lp Loop) {
				defer heal(t)
				plain, fg := pg.Build(t, vpn, 8)
				var path *lab.PathSpec
				load := fast(pg, 3*time.Second)
				if wan {
					w := WAN
					path = &w
					load.Rate = wanRate
				}
				const deadline = 3 * time.Second
				var down time.Duration
				var during pool.Stats
				var before pool.Stats
				r := Run(t, l, Scenario{Loop: lp, Name: map[bool]string{false: "V3", true: "V3-wan"}[wan], Title: "a correct DOWN: rekey for 1.5s, DOWN and UP reported, 3s deadline", Server: "postgres",
					Path: path, Load: load, Script: func(s *Script) error {
						Sleep(1500 * time.Millisecond)
						if _, err := s.Lab.BeginRekey(); err != nil {
							return err
						}
						down = time.Since(s.t0)
						notify(fg.Pool, detect.Down)
						before = fg.Pool.Stats()
						Sleep(1500 * time.Millisecond)
						during = fg.Pool.Stats()
						if err := s.Lab.EndRekey(); err != nil {
							return err
						}
						s.Back()
						notify(fg.Pool, detect.Up)
						Sleep(4 * time.Second)
						return nil
					}}, plain, fg)
				f := r.Side("flapguard")
				cutEarly, inflight, lastEnd := 0, 0, time.Duration(-1)
				entered, gated := 0, 0 // requests that arrived during the outage
				for _, x := range f.Samples {
					if x.Shed || x.Err == queueDeadlineErr {
						continue // the service's own queue failed them, not the pool
					}
					end := x.Start + x.Latency
					if x.Start+x.Queued < down && (!x.Done || end > down) {
						inflight++
						if x.Err != "" && end < r.Back {
							cutEarly++
						}
						if end >= r.Back {
							lastEnd = max(lastEnd, end-r.Back)
						}
					}
					// With a 3s deadline and a 1.5s outage, a request that
					// waited at the gate succeeds once the path is back; one
					// that entered the dead path (a dead flow) fails.
					if x.Start+x.Queued >= down && x.Start+x.Queued < r.Back {
						gated++
						if x.Err != "" {
							entered++
						}
					}
				}
				t.Logf("V3 (%s, %s): %d requests in flight at DOWN, %d of them cut before the path was back (goal 0), the last of the others ended %v after back (-1: none); %d requests borrowed during the outage, %d of them failed (entered the dead path or were cut; goal 0); connections made during the outage %d, probes %d; worst latency flapguard %v, plain %v; first success after back flapguard %v, plain %v",
					lp, pathName(path), inflight, cutEarly, lastEnd, gated, entered, during.Connects-before.Connects, during.Probes-before.Probes,
					f.MaxLatency, r.Side("plain").MaxLatency, f.FirstOK, r.Side("plain").FirstOK)
				if cutEarly > 0 {
					t.Errorf("%d requests in flight at DOWN were cut before the path was back; goal: they keep their deadline", cutEarly)
				}
				if entered > 0 {
					t.Errorf("%d of %d requests borrowed during the outage failed; goal: they wait at the gate and succeed once the path is back", entered, gated)
				}
				if f.MaxLatency > deadline+100*time.Millisecond {
					t.Errorf("a request took %v; goal ≤ deadline + 100ms", f.MaxLatency)
				}
			})
		})
	}

	// V4: a 1.5s blackhole during steady traffic after which every flow
	// survives (a DPD blip); pgx, 2s deadlines. Goal, in every run: flapguard
	// fails no request plain completes (open loop: the same arrivals; closed
	// loop: no more failures), and its first success after the path is
	// back is no later than plain's + 100ms.
	t.Run("V4-blip-postgres", func(t *testing.T) {
		eachLoop(t, true, func(t *testing.T, lp Loop) {
			for run := range runs {
				t.Run(strconv.Itoa(run+1), func(t *testing.T) {
					defer heal(t)
					plain, fg := pg.Build(t, pool.Config{}, 8)
					r := Run(t, l, Scenario{Loop: lp, Name: "V4", Title: "a 1.5s blip, every flow survives, 2s deadline", Server: "postgres",
						Load: fast(pg, 2*time.Second), Script: func(s *Script) error {
							Sleep(1500 * time.Millisecond)
							if err := s.Lab.Flap(1500 * time.Millisecond); err != nil {
								return err
							}
							s.Back()
							Sleep(3 * time.Second)
							return nil
						}}, plain, fg)
					p, f := r.Side("plain"), r.Side("flapguard")
					lost := lostByFlapguard(r, lp)
					t.Logf("V4 (%s) run %d: failed plain %d, flapguard %d (%d that plain completed; closed loop: the excess); first success after back plain %v, flapguard %v; flapguard severs %d",
						lp, run+1, p.Failed, f.Failed, lost, p.FirstOK, f.FirstOK, fg.Pool.Stats().Severs)
					if lost > 0 {
						t.Errorf("flapguard failed %d requests plain completed; goal 0", lost)
						n := 0
						for _, x := range f.Samples {
							if x.Err != "" && n < 5 {
								n++
								t.Logf("flapguard failed: started %v (back at %v) after %v: %s", x.Start, r.Back, x.Latency, x.Err)
							}
						}
					}
					if f.FirstOK < 0 || p.FirstOK >= 0 && f.FirstOK > p.FirstOK+100*time.Millisecond {
						t.Errorf("flapguard's first success %v after back, plain's %v; goal ≤ plain's + 100ms", f.FirstOK, p.FirstOK)
					}
				})
			}
		})
	})

	// V5: fixed-rate arrivals (open loop, 200/s evenly spaced) through a 3s
	// outage, with and without the feed reporting it. Goal, in every run:
	// the first success after the path is back ≤ 0.1s after it.
	for _, feed := range []bool{false, true} {
		name := "V5-fixed-rate-outage-postgres"
		if feed {
			name = "V5-fixed-rate-outage-feed-postgres"
		}
		t.Run(name, func(t *testing.T) {
			for run := range runs {
				t.Run(strconv.Itoa(run+1), func(t *testing.T) {
					defer heal(t)
					plain, fg := pg.Build(t, vpn, 8)
					load := fast(pg, 2*time.Second)
					load.Poisson = false
					title := "fixed-rate arrivals through a 3s outage"
					if feed {
						title += ", DOWN/UP reported"
					}
					r := Run(t, l, Scenario{Loop: Open, Name: "V5" + map[bool]string{true: "-feed"}[feed], Title: title, Server: "postgres",
						Load: load, Script: func(s *Script) error {
							Sleep(1500 * time.Millisecond)
							if err := s.Lab.Blackhole(); err != nil {
								return err
							}
							if feed {
								notify(fg.Pool, detect.Down)
							}
							Sleep(3 * time.Second)
							if err := s.Lab.Restore(); err != nil {
								return err
							}
							s.Back()
							if feed {
								notify(fg.Pool, detect.Up)
							}
							Sleep(3 * time.Second)
							return nil
						}}, plain, fg)
					p, f := r.Side("plain"), r.Side("flapguard")
					t.Logf("V5 (feed %v) run %d: first success after back plain %v, flapguard %v (goal ≤ 100ms); failed plain %d, flapguard %d of %d",
						feed, run+1, p.FirstOK, f.FirstOK, p.Failed, f.Failed, f.Requests)
					if f.FirstOK < 0 || f.FirstOK > 100*time.Millisecond {
						t.Errorf("flapguard's first success %v after the path was back; goal ≤ 100ms", f.FirstOK)
					}
					if n := lostByFlapguard(r, Open); n > 0 {
						t.Logf("V5: flapguard failed %d requests plain completed:%s", n, lostDetail(r, 5))
					}
				})
			}
		})
	}

	// V6: a storm that ends in a rekey (H5's script: DOWN/UP every 300ms
	// for 6s, then back with every old flow dead), PostgreSQL and SQL
	// Server (the TDS double). Goal: first success ≤ 0.3s after the path is
	// back, also when every worker was in flight at the last DOWN (printed).
	for _, tg := range []Target{pg, tds} {
		t.Run("V6-storm-rekey-"+tg.Server, func(t *testing.T) {
			eachLoop(t, true, func(t *testing.T, lp Loop) {
				for run := range runs {
					t.Run(strconv.Itoa(run+1), func(t *testing.T) {
						defer heal(t)
						plain, fg := tg.Build(t, vpn, 8)
						var inFlightAtLastDown int
						var lastDown time.Duration
						r := Run(t, l, Scenario{Loop: lp, Name: "V6", Title: "flap storm ending in a rekey", Server: tg.Server,
							Load: fast(tg, 2*time.Second), Script: func(s *Script) error {
								Sleep(1500 * time.Millisecond)
								for range 10 {
									if err := s.Lab.Blackhole(); err != nil {
										return err
									}
									notify(fg.Pool, detect.Down)
									Sleep(300 * time.Millisecond)
									if err := s.Lab.Restore(); err != nil {
										return err
									}
									notify(fg.Pool, detect.Up)
									Sleep(300 * time.Millisecond)
								}
								if _, err := s.Lab.BeginRekey(); err != nil {
									return err
								}
								lastDown = time.Since(s.t0)
								notify(fg.Pool, detect.Down)
								Sleep(300 * time.Millisecond)
								if err := s.Lab.EndRekey(); err != nil {
									return err
								}
								s.Back()
								notify(fg.Pool, detect.Up)
								Sleep(4 * time.Second)
								return nil
							}}, plain, fg)
						f, p := r.Side("flapguard"), r.Side("plain")
						for _, x := range f.Samples {
							if !x.Shed && x.Start+x.Queued < lastDown && (!x.Done || x.Start+x.Latency > lastDown) {
								inFlightAtLastDown++
							}
						}
						t.Logf("V6 %s (%s) run %d: first success after back flapguard %v (goal ≤ 300ms), plain %v; %d flapguard requests in flight at the last DOWN (8: every worker); failed flapguard %d, plain %d",
							tg.Server, lp, run+1, f.FirstOK, p.FirstOK, inFlightAtLastDown, f.Failed, p.Failed)
						if f.FirstOK < 0 || f.FirstOK > 300*time.Millisecond {
							t.Errorf("flapguard's first success %v after back; goal ≤ 300ms", f.FirstOK)
						}
					})
				}
			})
		})
	}

	// V7: DOWN and UP reported around a rekey (3s) with traffic running and
	// a 2s deadline, PostgreSQL and SQL Server. Goal, in every run: no
	// request outlives its deadline + 100ms; the first success after UP
	// ≤ 0.1s.
	for _, tg := range []Target{pg, tds} {
		t.Run("V7-down-rekey-up-"+tg.Server, func(t *testing.T) {
			eachLoop(t, true, func(t *testing.T, lp Loop) {
				for run := range runs {
					t.Run(strconv.Itoa(run+1), func(t *testing.T) {
						defer heal(t)
						plain, fg := tg.Build(t, vpn, 8)
						const deadline = 2 * time.Second
						r := Run(t, l, Scenario{Loop: lp, Name: "V7", Title: "DOWN, rekey, UP reported during traffic, 2s deadline", Server: tg.Server,
							Load: fast(tg, deadline), Script: func(s *Script) error {
								Sleep(1500 * time.Millisecond)
								if _, err := s.Lab.BeginRekey(); err != nil {
									return err
								}
								notify(fg.Pool, detect.Down)
								Sleep(3 * time.Second)
								if err := s.Lab.EndRekey(); err != nil {
									return err
								}
								s.Back()
								notify(fg.Pool, detect.Up)
								Sleep(4 * time.Second)
								return nil
							}}, plain, fg)
						f, p := r.Side("flapguard"), r.Side("plain")
						// Open loop: latency and deadline both run from
						// arrival, so the bound is the same in both loops.
						t.Logf("V7 %s (%s) run %d: flapguard slowest %v (goal ≤ %v), first success after UP %v (goal ≤ 100ms); plain slowest %v, first success %v; failed flapguard %d, plain %d",
							tg.Server, lp, run+1, f.MaxLatency, deadline+100*time.Millisecond, f.FirstOK, p.MaxLatency, p.FirstOK, f.Failed, p.Failed)
						if f.MaxLatency > deadline+100*time.Millisecond {
							t.Errorf("a flapguard request took %v; goal ≤ deadline + 100ms", f.MaxLatency)
						}
						if f.FirstOK < 0 || f.FirstOK > 100*time.Millisecond {
							t.Errorf("flapguard's first success %v after UP; goal ≤ 100ms", f.FirstOK)
						}
						if n := lostByFlapguard(r, lp); n > 0 && lp == Open {
							t.Logf("V7: flapguard failed %d requests plain completed:%s", n, lostDetail(r, 5))
						}
					})
				}
			})
		})
	}

	// V8: the feed-driven seed case on the 40ms WAN: the pool sits idle
	// across DOWN, a rekey and UP; traffic resumes 200ms after UP. Goal:
	// the slowest request after UP ≤ 2 RTT + 10ms, for pgx, MySQL and SQL
	// Server (TestWAN's S8-wan asserts a looser bound for pgx alone).
	for _, tg := range targets {
		t.Run("V8-seed-wan-"+tg.Server, func(t *testing.T) {
			eachLoop(t, true, func(t *testing.T, lp Loop) {
				defer heal(t)
				plain, fg := tg.Build(t, vpn, 8)
				wan := WAN
				load := fast(tg, 2*time.Second)
				load.Rate = wanRate
				r := Run(t, l, Scenario{Loop: lp, Name: "V8-wan", Title: "DOWN, rekey, UP reported while the pool sits idle; traffic 200ms after UP, on the WAN", Server: tg.Server,
					Path: &wan, Load: load, Script: func(s *Script) error {
						Sleep(1500 * time.Millisecond)
						s.Pause()
						Sleep(500 * time.Millisecond)
						if _, err := s.Lab.BeginRekey(); err != nil {
							return err
						}
						notify(fg.Pool, detect.Down)
						Sleep(3 * time.Second)
						if err := s.Lab.EndRekey(); err != nil {
							return err
						}
						notify(fg.Pool, detect.Up)
						s.Back()
						Sleep(200 * time.Millisecond)
						s.Resume()
						Sleep(4 * time.Second)
						return nil
					}}, plain, fg)
				worst := worstStartedAfter(r.Side("flapguard"), r.Back)
				bound := 2*2*wan.Delay + 10*time.Millisecond
				t.Logf("V8 %s (%s): flapguard's slowest request after UP %v (goal ≤ %v; slowest, started after UP:took%s), %d conns rebuilt; failed after UP flapguard %d, plain %d",
					tg.Server, lp, worst, bound, slowestAfter(r.Side("flapguard"), r.Back, 3), fg.Pool.Stats().Rebuilt, r.Side("flapguard").FailedAfterBack, r.Side("plain").FailedAfterBack)
				if worst < 0 || worst > bound {
					t.Errorf("flapguard's slowest request after UP %v; goal ≤ 2 RTT + 10ms = %v", worst, bound)
				}
			})
		})
	}

	// V9: Close returns within 100ms during any check, for every adapter
	// (go-mssqldb included, whose PRELOGIN ignores the context): the path
	// is blackholed and a DOWN starts a check; Close comes while the
	// check's fresh connection hangs in the void ("verdict"), or while the
	// checks of the path found down run ("down").
	for _, tg := range targets {
		for _, when := range []string{"verdict", "down"} {
			t.Run("V9-close-during-check-"+when+"-"+tg.Server, func(t *testing.T) {
				defer heal(t)
				_, fg := tg.Build(t, vpn, 4)
				if err := fg.DB.PingContext(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := l.Blackhole(); err != nil {
					t.Fatal(err)
				}
				probes := fg.Pool.Stats().Probes
				notify(fg.Pool, detect.Down)
				until := time.Now().Add(10 * time.Second)
				for time.Now().Before(until) {
					st := fg.Pool.Stats()
					if when == "verdict" && st.Probes > probes || when == "down" && st.Health == pool.Unreachable {
						break
					}
					time.Sleep(time.Millisecond)
				}
				Sleep(60 * time.Millisecond) // inside the fresh connection, or inside a window of the down path's checks
				st := fg.Pool.Stats()
				start := time.Now()
				fg.Pool.Close()
				took := time.Since(start)
				t.Logf("V9 %s (%s): Close took %v (goal ≤ 100ms); at Close: probes %d, health %v", tg.Server, when, took, st.Probes-probes, st.Health)
				if when == "verdict" && st.Probes == probes || when == "down" && st.Health != pool.Unreachable {
					t.Fatalf("the check did not get where this case closes: %+v", st)
				}
				if took > 100*time.Millisecond {
					t.Errorf("Close took %v during a check; goal ≤ 100ms", took)
				}
			})
		}
	}
}

// lostByFlapguard counts the requests flapguard failed that plain
// completed. Open loop: the two sides saw the same arrivals, so it is
// exact. Closed loop: the requests differ; it is how many more flapguard
// failed.
func lostByFlapguard(r *Result, lp Loop) int {
	p, f := r.Side("plain"), r.Side("flapguard")
	if lp != Open {
		return max(0, f.Failed-p.Failed)
	}
	ok := make(map[time.Duration]bool, len(p.Samples))
	for _, x := range p.Samples {
		if x.Done && x.Err == "" {
			ok[x.Start] = true
		}
	}
	n := 0
	for _, x := range f.Samples {
		if x.Err != "" && ok[x.Start] {
			n++
		}
	}
	return n
}

// lostDetail describes up to k requests flapguard failed that plain
// completed (open loop: the same arrivals): when each arrived, relative to
// back, how long it took and its error.
func lostDetail(r *Result, k int) string {
	ok := make(map[time.Duration]bool)
	for _, x := range r.Side("plain").Samples {
		if x.Done && x.Err == "" {
			ok[x.Start] = true
		}
	}
	out := ""
	for _, x := range r.Side("flapguard").Samples {
		if x.Err != "" && ok[x.Start] && k > 0 {
			k--
			out += fmt.Sprintf("\n  arrived %v after back, failed after %v: %s", (x.Start - r.Back).Round(time.Millisecond), x.Latency.Round(time.Millisecond), x.Err)
		}
	}
	return out
}

func verifyRuns(t *testing.T) int {
	v := os.Getenv(EnvVerifyRuns)
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive count", EnvVerifyRuns, v)
	}
	return n
}

func pathName(p *lab.PathSpec) string {
	if p == nil {
		return "LAN"
	}
	return fmt.Sprintf("WAN %s", p)
}
