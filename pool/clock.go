package pool

import (
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
