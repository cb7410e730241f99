package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StarveCPU puts this process, the app (every side of a scenario runs in
// it), under a CPU quota: share of one CPU per period (e.g. 0.25 and
// 100ms: 25ms of CPU, then nothing until the next period). It starves the
// app the way a busy machine does: its goroutines, timers included, stall
// for up to period−share·period at a time. Only this process is throttled,
// not the lab's servers, the path emulator, or other work on the machine
// (which a busy loop would also slow). Processes this one starts while
// starved inherit the quota, so start servers and paths first.
//
// The returned undo moves the process back and removes the quota's
// cgroup; it is also registered with t.Cleanup (running it twice is
// harmless). cgroup v2 (cpu.max) and v1 (the cpu controller) are
// supported; without either, or without root, it returns an error.
func StarveCPU(t testing.TB, share float64, period time.Duration) (undo func() error, err error) {
	if share <= 0 || share > 64 || period < time.Millisecond || period > time.Second {
		return nil, fmt.Errorf("lab: StarveCPU(%v, %v): want 0 < share ≤ 64 CPUs and 1ms ≤ period ≤ 1s", share, period)
	}
	base, own, v2, err := cpuCgroup()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, fmt.Sprintf("flapguard-starve-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("lab: cpu quota cgroup: %w", err)
	}
	periodUS := period.Microseconds()
	quotaUS := int64(share * float64(periodUS))
	if v2 {
		err = os.WriteFile(filepath.Join(dir, "cpu.max"), fmt.Appendf(nil, "%d %d", quotaUS, periodUS), 0)
	} else {
		err = errors.Join(
			os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), fmt.Appendf(nil, "%d", periodUS), 0),
			os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), fmt.Appendf(nil, "%d", quotaUS), 0))
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	}
	done := false
	undo = func() error {
		if done {
			return nil
		}
		done = true
		if b, err := os.ReadFile(filepath.Join(dir, "cpu.stat")); err == nil {
			// nr_periods, nr_throttled, throttled_time (v1, ns) or
			// throttled_usec (v2): proof that the quota did starve.
			t.Logf("lab: cpu quota %.2f CPU per %v lifted; %s", share, period, strings.Join(strings.Fields(string(b)), " "))
		}
		back := os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
		return errors.Join(back, os.Remove(dir))
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("lab: cpu quota: %w", err), undo())
	}
	t.Cleanup(func() {
		if err := undo(); err != nil {
			t.Errorf("lab: lifting the cpu quota: %v", err)
		}
	})
	return undo, nil
}

// cpuCgroup finds where a cpu-controlled cgroup can be made: the directory
// under which to make it, the one this process is in now, and whether it
// is cgroup v2.
func cpuCgroup() (base, own string, v2 bool, err error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", "", false, fmt.Errorf("lab: cpu quota: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var v1Path, v2Path string
	haveV2 := false
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path, haveV2 = parts[2], true
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "cpu" {
				v1Path = parts[2]
			}
		}
	}
	if v1dir := "/sys/fs/cgroup/cpu"; v1Path != "" {
		if _, err := os.Stat(filepath.Join(v1dir, "cpu.cfs_quota_us")); err == nil {
			own = filepath.Join(v1dir, v1Path)
			return own, own, false, nil
		}
	}
	if haveV2 {
		if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && strings.Contains(string(b), "cpu") {
			// A v2 process may not sit in an inner cgroup that has
			// children with controllers ("no internal processes"): make
			// the quota's cgroup at the root, and come back to our own.
			return "/sys/fs/cgroup", filepath.Join("/sys/fs/cgroup", v2Path), true, nil
		}
	}
	return "", "", false, errors.New("lab: cpu quota: no cgroup cpu controller (v1 cpu, or v2 with cpu enabled at the root)")
}
