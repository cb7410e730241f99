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
// The scenarios are tests (scenarios_test.go); with FLAPGUARD_LAB_RESULTS
// set to a directory they also write one JSON file per scenario, from which
// examples/labreport renders BENCHMARKS.md and its charts.
package labrun
