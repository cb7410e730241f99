//go:build linux

package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// vpnState is what the path leaves in the vpn namespace: processes, links
// and rules.
func vpnState(t *testing.T, l *Lab) (pids, links, rules string) {
	t.Helper()
	out, err := runIP(l.owns, "", l.tl.ip, "netns", "pids", l.vpn.name)
	if err != nil {
		t.Fatal(err)
	}
	pids = strings.Join(strings.Fields(out), " ")
	if links, err = l.ipn(l.vpn.name, "-o", "link", "show"); err != nil {
		t.Fatal(err)
	}
	if rules, err = l.ipn(l.vpn.name, "rule", "show"); err != nil {
		t.Fatal(err)
	}
	return pids, links, rules
}

func minRTT(t *testing.T, l *Lab) time.Duration {
	t.Helper()
	rtts := pingRTTs(t, l, 20, time.Millisecond, time.Second)
	if len(rtts) == 0 {
		t.Fatal("no ping came back")
	}
	return percentile(rtts, 0)
}

// TestPathLifecycle: ClearPath and teardown leave no emulator process, no
// TUN, no rule and no goroutine behind, and the path is the bare veths
// again.
func TestPathLifecycle(t *testing.T) {
	Require(t)
	// Whatever ran before (and the spawner goroutine, which lives for the
	// process) is not this test's business.
	leaks := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreTopFunction(SpawnerGoroutine)}
	var last int
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		_, links0, rules0 := vpnState(t, l)
		bare := minRTT(t, l)
		spec := PathSpec{Delay: 15 * time.Millisecond}
		if err := l.SetPath(spec, spec); err != nil {
			t.Fatal(err)
		}
		pid := l.PathPID()
		pids, links, rules := vpnState(t, l)
		t.Logf("with the path: emulator pid %d; vpn pids %q; rules:\n%s", pid, pids, rules)
		if pid == 0 || !strings.Contains(" "+pids+" ", fmt.Sprintf(" %d ", pid)) {
			t.Errorf("emulator pid %d is not among the vpn namespace's processes %q", pid, pids)
		}
		if !strings.Contains(links, "tn:") || !strings.Contains(rules, "lookup "+pathTable) {
			t.Errorf("no TUN or no rule with the path set:\n%s\n%s", links, rules)
		}
		if got := minRTT(t, l); got < 30*time.Millisecond {
			t.Errorf("fastest RTT %v with 15ms each way", got)
		}

		if err := l.ClearPath(); err != nil {
			t.Fatal(err)
		}
		if !pidGone(pid) {
			t.Errorf("emulator %d still exists after ClearPath", pid)
		}
		pids, links, rules = vpnState(t, l)
		if pids != "" || links != links0 || rules != rules0 || l.PathPID() != 0 {
			t.Errorf("after ClearPath: pids %q, links\n%s\nrules\n%s\nwant no pid and\n%s\n%s", pids, links, rules, links0, rules0)
		}
		if got := minRTT(t, l); got > bare+5*time.Millisecond {
			t.Errorf("fastest RTT %v after ClearPath, %v before SetPath", got, bare)
		}
		if err := l.ClearPath(); err != nil {
			t.Errorf("second ClearPath: %v", err)
		}
		// Set again and leave it to teardown.
		if err := l.SetPath(spec, PathSpec{}); err != nil {
			t.Fatal(err)
		}
		last = l.PathPID()
		t.Logf("bare RTT %v; emulator %d left to teardown", bare, last)
	})
	if last == 0 || !pidGone(last) {
		t.Errorf("emulator %d survived teardown", last)
	}
	goleak.VerifyNone(t, leaks...)
}

func TestPathRejects(t *testing.T) {
	l := New(t)
	ms := time.Millisecond
	for _, tc := range []struct {
		toDB, toApp PathSpec
		field       string
	}{
		{PathSpec{Delay: -ms}, PathSpec{}, "toDB.Delay"},
		{PathSpec{}, PathSpec{Delay: 5 * ms, Jitter: 6 * ms}, "toApp.Jitter"},
		{PathSpec{}, PathSpec{Loss: 1}, "toApp.Loss"},
	} {
		err := l.SetPath(tc.toDB, tc.toApp)
		t.Logf("SetPath(%+v, %+v) = %v", tc.toDB, tc.toApp, err)
		if !errors.Is(err, ErrBadPath) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("SetPath(%+v, %+v) = %v, want ErrBadPath naming %s", tc.toDB, tc.toApp, err, tc.field)
		}
		if pid := l.PathPID(); pid != 0 {
			t.Errorf("a refused SetPath started emulator %d", pid)
		}
	}
	t.Setenv(EnvSeed, "twelve")
	if err := l.SetPath(PathSpec{}, PathSpec{}); !errors.Is(err, ErrBadPath) || !strings.Contains(err.Error(), EnvSeed) {
		t.Errorf("SetPath with %s=twelve = %v, want ErrBadPath naming it", EnvSeed, err)
	}
	t.Setenv(EnvSeed, "12")
	good := PathSpec{Delay: 5 * ms}
	if err := l.SetPath(good, good); err != nil {
		t.Fatal(err)
	}
	pid := l.PathPID()
	if err := l.SetPath(good, PathSpec{Loss: -0.5}); !errors.Is(err, ErrBadPath) {
		t.Errorf("refused change = %v", err)
	}
	if st, err := l.PathStats(); err != nil || st.Seed != 12 || l.PathPID() != pid {
		t.Errorf("after a refused change: stats %+v, %v, pid %d (was %d); want the running emulator, seed 12", st, err, l.PathPID(), pid)
	}
}

const pathCrashEnv = "FLAPGUARD_LAB_PATH_CRASH"

// TestPathCrashHelper is not a test on its own: TestPathDiesWithOwner runs
// it in a child that sets a path and dies without cleanups.
func TestPathCrashHelper(t *testing.T) {
	if os.Getenv(pathCrashEnv) != "1" {
		t.Skip("helper process for TestPathDiesWithOwner")
	}
	l := New(t)
	if err := l.SetPath(PathSpec{Delay: time.Millisecond}, PathSpec{}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PATHCRASH %d\n", l.PathPID())
	os.Exit(3)
}

// TestPathDiesWithOwner: a test binary killed without cleanups takes its
// emulator with it (Pdeathsig), like its servers.
func TestPathDiesWithOwner(t *testing.T) {
	Require(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPathCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), pathCrashEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatalf("helper exited 0, want it dead mid-test:\n%s", out.String())
	}
	pid := 0
	for sc := bufio.NewScanner(&out); sc.Scan(); {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "PATHCRASH" {
			pid, _ = strconv.Atoi(f[1])
		}
	}
	if pid == 0 {
		t.Fatalf("helper did not report its emulator:\n%s", out.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !pidGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("emulator %d outlived its owner by 5s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := Sweep(); err != nil {
		t.Errorf("sweeping the dead owner's lab: %v", err)
	}
}
