//go:build linux

package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

const crashHelperEnv = "FLAPGUARD_LAB_CRASH_HELPER"

// TestCrashHelper is not a test on its own: TestKilledOwnerLeavesNoServers
// runs it in a child process, which builds a lab with both servers and then
// dies the way a -timeout panic kills a test binary: no cleanups at all.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		t.Skip("helper process for TestKilledOwnerLeavesNoServers")
	}
	l := New(t)
	pg := l.StartPostgres(t)
	my := l.StartMariaDB(t)
	app, vpn, db := l.Namespaces()
	fmt.Printf("CRASH pids %d %d ns %s %s %s dir %s\n", pg.PID(), my.PID(), app, vpn, db, l.workDir)
	os.Exit(3)
}

func TestKilledOwnerLeavesNoServers(t *testing.T) {
	Require(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatalf("helper exited 0, want it killed mid-test:\n%s", out.String())
	}
	var pids []int
	var names []string
	var dir string
	t.Logf("helper output:\n%s", out.String())
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 10 && f[0] == "CRASH" {
			for _, s := range f[2:4] {
				p, _ := strconv.Atoi(s)
				pids = append(pids, p)
			}
			names, dir = f[5:8], f[9]
		}
	}
	if len(pids) != 2 || pids[0] == 0 || pids[1] == 0 {
		t.Fatalf("helper did not report its servers:\n%s", out.String())
	}
	// Pdeathsig: the servers die with their owner, before any sweep.
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for !goneOrZombie(p) {
			if time.Now().After(deadline) {
				t.Fatalf("server pid %d outlived its dead owner", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The namespaces are still there (nobody cleaned up) until a sweep.
	for _, ns := range names {
		if _, err := os.Stat(netnsDir + "/" + ns); err != nil {
			t.Fatalf("namespace %s vanished without a sweep: %v", ns, err)
		}
	}
	removed, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range names {
		if _, err := os.Stat(netnsDir + "/" + ns); err == nil {
			t.Errorf("Sweep left the dead owner's namespace %s (removed %v)", ns, removed)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("Sweep left the dead owner's work dir %s", dir)
	}
}

// goneOrZombie: a killed server whose parent died is reparented; until its
// new parent reaps it, it is a zombie, which holds no sockets or files.
func goneOrZombie(pid int) bool {
	if pidGone(pid) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestSpawnerGoroutineName(t *testing.T) {
	Require(t)
	cmd := exec.Command("true")
	if err := spawn(cmd); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	if !bytes.Contains(buf, []byte(SpawnerGoroutine+"(")) {
		t.Fatalf("no goroutine runs %s; goleak users would be told a wrong name", SpawnerGoroutine)
	}
}
