package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
// Lift moves the process back, removes the quota's cgroup and says how
// much the quota throttled; it is also registered with t.Cleanup (lifting
// twice is harmless). cgroup v2 (cpu.max) and v1 (the cpu controller) are
// supported; without either, or without root, StarveCPU returns an error.
func StarveCPU(t testing.TB, share float64, period time.Duration) (*Quota, error) {
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
	q := &Quota{t: t, dir: dir, own: own, share: share, period: period}
	if err != nil {
		_, lerr := q.Lift()
		return nil, errors.Join(fmt.Errorf("lab: cpu quota: %w", err), lerr)
	}
	t.Cleanup(func() {
		if _, err := q.Lift(); err != nil {
			t.Errorf("lab: lifting the cpu quota: %v", err)
		}
	})
	return q, nil
}

// Quota is a CPU quota StarveCPU put this process under.
type Quota struct {
	t        testing.TB
	dir, own string
	share    float64
	period   time.Duration
	mu       sync.Mutex // protects lifted
	lifted   bool
}

// Throttle is what a quota did: of Periods, Throttled ran out of CPU time
// before their end, for Time in all.
type Throttle struct {
	Periods, Throttled int
	Time               time.Duration
}

// Lift ends the quota (see StarveCPU) and reports what it throttled.
func (q *Quota) Lift() (Throttle, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.lifted {
		return Throttle{}, nil
	}
	q.lifted = true
	var th Throttle
	if b, err := os.ReadFile(filepath.Join(q.dir, "cpu.stat")); err == nil {
		f := strings.Fields(string(b))
		for i := 0; i+1 < len(f); i += 2 {
			n, _ := strconv.ParseInt(f[i+1], 10, 64)
			switch f[i] {
			case "nr_periods":
				th.Periods = int(n)
			case "nr_throttled":
				th.Throttled = int(n)
			case "throttled_time": // v1, ns
				th.Time = time.Duration(n)
			case "throttled_usec": // v2
				th.Time = time.Duration(n) * time.Microsecond
			}
		}
		q.t.Logf("lab: cpu quota %.3f CPU per %v lifted: %d of %d periods throttled, %v in all", q.share, q.period, th.Throttled, th.Periods, th.Time.Round(time.Millisecond))
	}
	back := os.WriteFile(filepath.Join(q.own, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	return th, errors.Join(back, os.Remove(q.dir))
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
