package pool

import (
	"time"
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock. time.Now reads the wall clock
// too; on the borrow/return hot path the pool needs only elapsed time, and
// where the vDSO is unavailable (gVisor and some VMs) each clock read is a
// syscall, so reading one clock instead of two halves the pool's overhead
// per query (BenchmarkNullExec). runtime.nanotime is one of the runtime's
// documented linkname targets kept for widely used packages.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// monoNow returns monotonic nanoseconds, from the injected clock in tests.
func (p *Pool) monoNow() int64 {
	if p.cfg.clockInjected {
		return p.cfg.now().UnixNano()
	}
	return nanotime()
}

// borrowNow is monoNow for the borrow's liveness rule (a conn idle for
// longer than LivenessIdle is pinged): the coarse clock the supervisor's
// loop refreshes every clockTick, so a borrow reads no clock. A clock read
// was more than half of the pool's cost per query (BenchmarkNullExec: 24ns
// of 44). The idle time it measures is off by at most a tick and the
// loop's scheduling delay, both ways: a conn idle within a tick of
// LivenessIdle may be pinged or not; one idle for longer is pinged (late
// by the loop's delay when the process is starved of CPU).
func (p *Pool) borrowNow() int64 {
	if p.cfg.clockInjected {
		return p.cfg.now().UnixNano()
	}
	return p.coarse.Load()
}

// clockTick is how often the coarse clock is refreshed: a twentieth of
// LivenessIdle, between 1ms and 50ms (0: no coarse clock is needed).
func clockTick(livenessIdle time.Duration) time.Duration {
	if livenessIdle <= 0 {
		return 0
	}
	return min(max(livenessIdle/20, time.Millisecond), 50*time.Millisecond)
}
