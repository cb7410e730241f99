// Package labrun runs the lab's scenarios: the same workload, driver and
// fault timing against plain database/sql and against a flapguard Pool, at
// the same time, in the same lab, and compares what each side saw.
//
// Both sides dial from the lab's app namespace through its vpn namespace,
// where nftables drops real packets, to real servers in the db namespace
// (PostgreSQL, MariaDB, and the TDS test double for go-mssqldb). The plain
// side uses each driver's own defaults (the lab dialer mimics the driver's
// default keepalive); the flapguard side uses pool.Config{} with only Dial
// set, so the numbers are those of the zero configuration.
//
// A scenario can run on an emulated WAN (Scenario.Path, lab.SetPath):
// TestWAN (wan_test.go) runs S1 on a 40ms path with ±5ms of jitter each
// way, and S9, a path losing 1% or 3% of packets each way with no fault at
// all, under bursty traffic (LossyScenario).
//
// Every scenario can run in two loops (Scenario.Loop): closed, where each of
// Workers goroutines sends its next request when the last returned, and
// open (openloop.go, issue 24), where requests arrive on a seeded schedule
// whatever the pool does, at most Workers in flight and the rest queued or
// shed, latency measured from arrival into an HDR histogram. The tests run
// the loops FLAPGUARD_LAB_LOOPS names (unset: closed, plus a representative
// few open); Result.NoWorse judges each loop by its own rule.
// TestVerifyThenAct (verify_test.go) holds issue 25's lab goals.
//
// This directory is a module of its own, test-only, so that the histogram
// (github.com/HdrHistogram/hdrhistogram-go) never enters the library's
// go.mod. Run it from here, outside the workspace:
//
//	cd internal/labrun && GOWORK=off FLAPGUARD_LAB=require go test -run TestScenarios -v .
//
// The files that need the lab are Linux-only; the results, the verdict and
// the open loop compile everywhere, so examples/labreport does.
//
// The scenarios are tests (scenarios_test.go); with FLAPGUARD_LAB_RESULTS
// set to a directory they also write one JSON file per scenario, from which
// examples/labreport renders BENCHMARKS.md and its charts.
package labrun
