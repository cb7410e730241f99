//go:build linux

package soak

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/goleak"

	"github.com/flapguard/flapguard/internal/lab"
)

// baseline is the process's state before the pools opened: its open file
// descriptors and goroutines.
type baseline struct {
	fds     int // open fds, minus those the lab's admin conns held then
	adminFD int // fds the admin conns held at the baseline
	ignore  goleak.Option
}

// countFDs counts /proc/self/fd (ReadDir's own fd is in every count).
func countFDs() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	return len(ents), err
}

// takeBaseline records the fds and goroutines now. adminConns is how many
// sockets the lab's admin pools hold now; they are closed before the
// final count (closeAdmins), so they are not part of the baseline.
func takeBaseline(adminConns int) (baseline, error) {
	n, err := countFDs()
	if err != nil {
		return baseline{}, err
	}
	return baseline{fds: n - adminConns, adminFD: adminConns, ignore: goleak.IgnoreCurrent()}, nil
}

// leakOptions are the goroutines allowed to outlive the pools:
//
//   - everything that ran at the baseline (goleak.IgnoreCurrent): the lab's
//     process reapers of servers started before it, the testing
//     framework, the TDS double's accept loop (closed before the check);
//   - lab.SpawnerGoroutine: the lab forks servers from one goroutine that
//     lives as long as the process, by design (internal/lab/proc.go);
//   - lab.startCmd.func1: the reaper that waits for a server process, one
//     per running server; a server restarted during the soak has a new one,
//     started after the baseline. It ends with the server at teardown.
//
// Nothing of pool/, database/sql or the drivers is ignored.
func (b baseline) leakOptions() []goleak.Option {
	return []goleak.Option{
		b.ignore,
		goleak.IgnoreTopFunction(lab.SpawnerGoroutine),
		goleak.IgnoreAnyFunction("github.com/flapguard/flapguard/internal/lab.startCmd.func1"),
	}
}

// verify waits up to timeout for the goroutines and fds to return to the
// baseline (closing sockets and ending goroutines is asynchronous: a
// driver's watcher goroutine returns a moment after its conn closed), then
// reports what is still off.
func (b baseline) verify(timeout time.Duration) (goroutines error, fds error) {
	deadline := time.Now().Add(timeout)
	for {
		goroutines = goleak.Find(b.leakOptions()...)
		n, err := countFDs()
		switch {
		case err != nil:
			fds = err
		case n != b.fds:
			fds = fmt.Errorf("%d open fds, want the %d of the baseline (%d then, minus %d admin conns since closed)%s",
				n, b.fds, b.fds+b.adminFD, b.adminFD, listFDs())
		default:
			fds = nil
		}
		if (goroutines == nil && fds == nil) || time.Now().After(deadline) {
			return goroutines, fds
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// listFDs shows where each open fd points, for a leak report.
func listFDs() string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return ""
	}
	s := ":"
	for _, e := range ents {
		t, _ := os.Readlink("/proc/self/fd/" + e.Name())
		s += " " + e.Name() + "->" + t
	}
	return s
}
