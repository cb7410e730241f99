//go:build linux

package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// spawner forks every server from one OS thread that never exits. Pdeathsig
// fires when the forking *thread* dies, and the runtime does kill threads:
// the ones namespace.do leaves locked. Forking from a thread that lives as
// long as the process means a test binary that dies (e.g. -timeout, which
// runs no cleanups) takes its servers with it, and only then.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// SpawnerGoroutine is the function of the one goroutine the lab leaves
// running for the life of the process (after the first server start), for
// goleak.IgnoreTopFunction in packages that check for leaks.
const SpawnerGoroutine = "github.com/flapguard/flapguard/internal/lab.spawnLoop"

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go spawnLoop(spawner.reqs)
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, done}
	return <-done
}

// process is one long-running server started by startProcess.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process is reaped
	waitErr error         // valid after done
}

// startProcess runs argv (already confined by the caller's checkArgv) with
// its output in logPath, killed by SIGKILL if this process dies.
func startProcess(name string, argv []string, logPath string) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C"}
	return startCmd(name, cmd, logPath)
}

// startCmd starts a prepared cmd the way startProcess does (spawner thread,
// Pdeathsig, own process group); a nil Stdout or Stderr goes to logPath.
// Any other stdio must be an *os.File, so no copying goroutine outlives the
// process.
func startCmd(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	if cmd.Stdout == nil {
		cmd.Stdout = logf // *os.File: no copying goroutines
	}
	if cmd.Stderr == nil {
		cmd.Stderr = logf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("lab: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func spawnLoop(reqs <-chan spawnReq) {
	runtime.LockOSThread() // never unlocked, never returns
	for r := range reqs {
		r.done <- r.cmd.Start()
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace for the process to exit, then SIGKILLs
// its whole process group. It returns an error if it had to kill.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("lab: %s (pid %d) ignored %v for %v and was killed", p.name, p.pid(), sig, grace)
}

// logTail returns the end of the process log, for error messages.
func (p *process) logTail() string { return tail(p.logPath, 1500) }

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// waitReady polls ready every 25 ms until it succeeds, the process exits or
// timeout passes.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("lab: %s exited during startup (%v): %s", p.name, p.waitErr, p.logTail())
		}
		if last = ready(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("lab: %s not ready after %v: %s", p.name, timeout, p.logTail()), last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// pidGone reports whether no process with pid exists (for the checks after
// Stop and teardown).
func pidGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
