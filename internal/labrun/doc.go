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
// The scenarios are tests (scenarios_test.go); with FLAPGUARD_LAB_RESULTS
// set to a directory they also write one JSON file per scenario, from which
// examples/labreport renders BENCHMARKS.md and its charts.
package labrun
