//go:build linux

package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The WAN emulator. The kernel here has no netem, so the lab delays and
// drops packets itself: a TUN device in the vpn namespace receives every
// packet between app and db (policy routing, see pathproc.go), a loop
// holds each one for its delay and writes it back into the TUN, from where
// the kernel forwards it on. Packets therefore cross the vpn's forward
// chain twice: on the way in (where the faults drop them before they are
// ever delayed) and on the way out.
//
// The loop runs in a helper process: this same binary, re-executed inside
// the vpn namespace with envPathHelper set, taken over by the init below
// before any test or main runs. Not a goroutine of the test process,
// because a goroutine needs one of the process's Ps to run: in a busy test
// binary with GOMAXPROCS=2 a packet due now could wait for a P for
// milliseconds, whatever the OS thread's priority. The helper has its Ps
// to itself, runs SCHED_FIFO (see raisePriority; on two shared cores a
// normal-priority loop drifts by tens of milliseconds at the p99) and
// without garbage collection. Waits are ppoll(2) with a nanosecond timeout
// (hrtimers, no timer slack for real-time threads), not Go timers, which
// are about 1ms coarse.

// envPathHelper carries pathHelperArgs to the helper process.
const envPathHelper = "FLAPGUARD_LAB_PATH_HELPER"

// pathPriority is the helper's SCHED_FIFO priority: above every normal
// thread, low among real-time ones.
const pathPriority = 20

func init() {
	if v := os.Getenv(envPathHelper); v != "" {
		os.Exit(pathHelperMain(v, os.Stdin, os.Stdout))
	}
}

// pathHelperMain runs the helper: open the TUN, say ready, serve commands
// from in until EOF, drain, exit. Errors go to stderr (the lab's log).
func pathHelperMain(arg string, in io.Reader, out io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "path emulator: %v\n", err)
		json.NewEncoder(out).Encode(pathReply{Err: err.Error()})
		return 1
	}
	var a pathHelperArgs
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		return fail(err)
	}
	appNet, err1 := netip.ParsePrefix(a.AppNet)
	dbNet, err2 := netip.ParsePrefix(a.DBNet)
	if err := errors.Join(err1, err2); err != nil {
		return fail(err)
	}
	// init runs on the main thread, locked; keep it so for the loop.
	runtime.LockOSThread()
	// No garbage collection in the loop's way: a collection stops the
	// world, and its phases ran on threads a busy machine left unscheduled
	// while the loop waited (seen, before raisePriority covered every
	// thread: packets 85ms late). The loop recycles its buffers, so the
	// heap barely grows; the limit is a safety net.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(256 << 20)
	e, err := newEmulator(a.Tun, appNet, dbNet)
	if err != nil {
		return fail(err)
	}
	defer e.close()
	enc := json.NewEncoder(out)
	if err := enc.Encode(pathReply{Ready: true, Sched: e.sched}); err != nil {
		return fail(err)
	}
	go e.control(in, enc)
	if err := e.run(); err != nil {
		return fail(err)
	}
	return 0
}

// emulator is the helper's state: the loop owns the lanes; the control
// goroutine publishes settings through cfg and reads the counters.
type emulator struct {
	tun, wake int // TUN fd, eventfd that interrupts the loop's ppoll
	appNet    netip.Prefix
	dbNet     netip.Prefix
	sched     string
	t0        time.Time
	cfg       atomic.Pointer[pathCmd]
	draining  atomic.Bool
	ctr       [2]laneCounters // toDB, toApp
	other     atomic.Uint64
	lanes     [2]lane
	applied   *pathCmd
	free      [][]byte
	scratch   []byte
}

type laneCounters struct {
	packets, dropped, overflow, delivered, writeErrs, late atomic.Uint64
	maxLate                                                atomic.Int64
}

func (c *laneCounters) snapshot() PathCounters {
	return PathCounters{Packets: c.packets.Load(), Dropped: c.dropped.Load(), Overflow: c.overflow.Load(),
		Delivered: c.delivered.Load(), WriteErrs: c.writeErrs.Load(), Late: c.late.Load(),
		MaxLate: time.Duration(c.maxLate.Load())}
}

func newEmulator(name string, appNet, dbNet netip.Prefix) (*emulator, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	e := &emulator{tun: fd, wake: wake, appNet: appNet, dbNet: dbNet, t0: time.Now(), scratch: make([]byte, 1<<16)}
	e.sched = raisePriority()
	return e, nil
}

// raisePriority puts the whole helper under SCHED_FIFO: every thread it
// has, and (inherited) every thread the runtime starts later. Not the loop
// thread alone: it takes runtime locks (the scheduler's, to get a P back
// after a syscall) that the runtime's other threads, sysmon among them,
// also hold; at normal priority on a busy machine such a holder can sit
// preempted for 10ms and more while the loop waits on it. Failing that, it
// asks for the finest timer slack. It says which it got.
func raisePriority() string {
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: pathPriority}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
		return fmt.Sprintf("SCHED_OTHER (SCHED_FIFO refused: %v; expect a worse p99)", err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Sprintf("SCHED_FIFO %d on the loop thread only (%v)", pathPriority, err)
	}
	for _, task := range tasks {
		if tid, err := strconv.Atoi(task.Name()); err == nil {
			attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: pathPriority}
			unix.SchedSetAttr(tid, &attr, 0) // best effort: a thread may have exited
		}
	}
	return fmt.Sprintf("SCHED_FIFO %d", pathPriority)
}

func (e *emulator) close() {
	unix.Close(e.tun)
	unix.Close(e.wake)
}

func (e *emulator) now() int64 { return int64(time.Since(e.t0)) }

func (e *emulator) kick() {
	var one = [8]byte{1}
	unix.Write(e.wake, one[:])
}

// control serves the lab's commands; EOF on in starts the drain.
func (e *emulator) control(in io.Reader, enc *json.Encoder) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var c pathCmd
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			enc.Encode(pathReply{Err: err.Error()})
			continue
		}
		if !c.Stats {
			if err := errors.Join(c.ToDB.Validate("toDB"), c.ToApp.Validate("toApp")); err != nil {
				enc.Encode(pathReply{Err: err.Error()})
				continue
			}
			e.cfg.Store(&c)
			e.kick()
		}
		r := pathReply{ToDB: e.ctr[0].snapshot(), ToApp: e.ctr[1].snapshot(), Other: e.other.Load()}
		if cur := e.cfg.Load(); cur != nil {
			r.Seed = cur.Seed
		}
		enc.Encode(r)
	}
	e.draining.Store(true)
	e.kick()
}
