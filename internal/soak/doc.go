// Package soak is flapguard's chaos soak, in the style of Jepsen: many
// workers write and read through flapguard pools while a seeded schedule
// of VPN faults (flaps, rekeys, RSTs, one-way loss, server restarts,
// tunnel DOWN/UP events) runs in the lab, and at the end the test checks
// what no fault may break:
//
//  1. every insert that returned success is in its table exactly once;
//  2. no insert that provably failed before it was sent is present;
//  3. the ledger's total is unchanged and it reflects exactly the
//     transfers present, every acknowledged transfer once, none of those
//     known not committed;
//  4. a write whose outcome is unknown is present at most once;
//  5. after settling, the server holds no more sessions of the app than
//     MaxOpenConns+1, and none whose client socket is gone (an orphan);
//  6. no goroutine outlives the closed pools;
//  7. the process has as many open files as before the pools;
//  8. all of it under -race.
//
// The package holds tests only: TestSoak (PostgreSQL and MariaDB at once,
// 120s by default), TestSoakTDS (go-mssqldb against the TDS double) and
// TestSoakTwin (twin_test.go, issue 24: the same seeded faults and the
// same open-loop arrivals applied at once to a flapguard pool and to a
// plain database/sql pool, each on its own PostgreSQL, compared inside and
// outside the fault windows; 60s by default, -soak.twin.duration).
// Both need the lab (root, Linux, nftables) and skip with one line without
// it, or fail under FLAPGUARD_LAB=require. Flags:
//
//	go test ./internal/soak -run TestSoak -v -soak.duration 30m -soak.workers 64 -soak.seed 42
//
// What a caller may conclude from an error is in book_test.go
// (provablyUnsent, insertOutcome, transferOutcome): only driver.ErrBadConn,
// pool.ErrTunnelDown and *detect.ConnectError prove that nothing was sent;
// every other failed write, a plain deadline included, is outcome-unknown.
//
// Besides the invariants, a run logs what helps to explain a failure:
// every fault window (from before the lab was asked to after the fault was
// lifted), a summary table (outcomes, pool counters, Unreachable time,
// latency outside fault windows, the most frequent errors), failed
// operations and pool severs outside every fault window, and for each
// orphan session when its client socket was dialed and closed, the pool
// events just before, and whether a rekey killed its flow.
//
// The seed is printed at the start of each run; -soak.seed replays the
// same fault schedule and workload mix (timings still vary).
//
// -soak.broken=retry-unknown turns on a deliberately wrong caller: inserts
// that fail with pool.ErrOutcomeUnknown are run again, as a naive user
// would. The soak must then fail (invariant 1 finds duplicates); it is the
// proof that the checks can fail. It is off unless that flag is given.
package soak
