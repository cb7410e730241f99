//go:build linux

package lab

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// ErrBadPath is wrapped by every error SetPath returns for a setting it
// refuses.
var ErrBadPath = errors.New("lab: bad path setting")

// EnvSeed, if set to an unsigned integer, seeds the path emulator's loss
// and jitter draws instead of a random seed (the seed in use is logged by
// every SetPath, to replay a run's draws).
const EnvSeed = "FLAPGUARD_LAB_SEED"

// MaxPathDelay bounds PathSpec.Delay + Jitter: beyond it the lab is no
// longer a WAN but a broken path, better made with Blackhole.
const MaxPathDelay = 10 * time.Second

// PathSpec is one direction of the emulated WAN. The zero value adds no
// delay and drops nothing (but packets still cross the emulator).
type PathSpec struct {
	// Delay is added to every packet. 0: none; negative: refused.
	Delay time.Duration
	// Jitter varies Delay uniformly within ±Jitter. 0: none; negative or
	// above Delay (the delay would go below zero): refused. Packets stay
	// in order unless Reorder is set, so a packet never leaves before the
	// one ahead of it: on a busy flow that adds a little (TestPathOrder:
	// median one-way delay 10.3–11.2ms for 10ms±5ms at 2,000 packets/s).
	Jitter time.Duration
	// Loss is the probability that a packet is dropped, drawn per packet
	// from a seeded generator. 0: none; outside [0, 1): refused.
	Loss float64
	// Reorder lets jitter reorder packets: each packet gets its own delay
	// and leaves when due, overtaking slower ones. Default: FIFO, each
	// jitter value held for 10ms.
	Reorder bool
}

func (s PathSpec) String() string {
	out := s.Delay.String()
	if s.Jitter > 0 {
		out += "±" + s.Jitter.String()
	}
	if s.Loss > 0 {
		out += fmt.Sprintf(" loss %g%%", s.Loss*100)
	}
	if s.Reorder {
		out += " reorder"
	}
	return out
}

// Validate reports the first field of s that SetPath would refuse, naming
// it with dir ("toDB", "toApp").
func (s PathSpec) Validate(dir string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s.%s", ErrBadPath, dir, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Delay < 0:
		return bad("Delay %v is negative", s.Delay)
	case s.Jitter < 0:
		return bad("Jitter %v is negative", s.Jitter)
	case s.Jitter > s.Delay:
		return bad("Jitter %v is larger than Delay %v: the delay would go below zero", s.Jitter, s.Delay)
	case s.Delay+s.Jitter > MaxPathDelay:
		return bad("Delay %v + Jitter %v is over %v", s.Delay, s.Jitter, MaxPathDelay)
	case math.IsNaN(s.Loss) || s.Loss < 0 || s.Loss >= 1:
		return bad("Loss %v is outside [0, 1)", s.Loss)
	}
	return nil
}

// PathCounters counts one direction's packets in the emulator.
type PathCounters struct {
	Packets   uint64 `json:"packets"`   // entered the emulator
	Dropped   uint64 `json:"dropped"`   // dropped by Loss
	Overflow  uint64 `json:"overflow"`  // dropped because the direction held too many
	Delivered uint64 `json:"delivered"` // sent on after their delay
	WriteErrs uint64 `json:"write_errs"`
	// Late counts packets sent on more than 1ms after they were due (the
	// emulator was not scheduled in time); MaxLate is the worst.
	Late    uint64        `json:"late"`
	MaxLate time.Duration `json:"max_late_ns"`
}

// PathStats is the emulator's view of the path since it started.
type PathStats struct {
	ToDB, ToApp PathCounters
	Other       uint64 // packets neither way between app and db (dropped)
	Seed        uint64 // the seed of the last SetPath
	Sched       string // the emulator thread's scheduling, e.g. "SCHED_FIFO 20"
}

// SetPath routes every packet between app and db through a WAN emulator in
// the vpn namespace, with toDB applied to packets from app to db and toApp
// to those going back; called again, it changes the settings in place
// (packets in flight keep their due times). Settings are validated first:
// a refused one changes nothing and the error, wrapping ErrBadPath, names
// the field.
//
// The faults work as before and combine with the path: packets cross the
// forward chain before they enter the emulator and again when they leave
// it (see emulate.go). RSTs the vpn itself sends under Reset skip the
// emulator: they come from the middle of the path.
//
// Loss and jitter are drawn from a generator seeded from EnvSeed if set,
// else at random; the seed is logged. ClearPath removes the emulator;
// teardown does it too.
func (l *Lab) SetPath(toDB, toApp PathSpec) error {
	if err := errors.Join(toDB.Validate("toDB"), toApp.Validate("toApp")); err != nil {
		return err
	}
	seed, err := pathSeed()
	if err != nil {
		return err
	}
	l.pathMu.Lock()
	defer l.pathMu.Unlock()
	if !l.pathStopper {
		if err := l.addStopper(l.ClearPath); err != nil {
			return err
		}
		l.pathStopper = true
	}
	cmd := pathCmd{ToDB: toDB, ToApp: toApp, Seed: seed}
	if l.path != nil {
		if _, err := l.path.do(cmd); err != nil {
			return err
		}
	} else if err := l.startPathLocked(cmd); err != nil {
		return err
	}
	l.t.Logf("lab %s: path app->db %v, db->app %v, seed %d (%s=%d replays the draws), emulator %s",
		l.token, toDB, toApp, seed, EnvSeed, seed, l.path.sched)
	return nil
}

// ClearPath removes the emulator and its routes: the path is the bare
// veths again. Packets in flight are delivered when due before the emulator
// exits. Clearing an unset path does nothing.
func (l *Lab) ClearPath() error {
	l.pathMu.Lock()
	defer l.pathMu.Unlock()
	return l.clearPathLocked()
}

// PathStats asks the running emulator for its counters.
func (l *Lab) PathStats() (PathStats, error) {
	l.pathMu.Lock()
	defer l.pathMu.Unlock()
	if l.path == nil {
		return PathStats{}, errors.New("lab: no path set")
	}
	r, err := l.path.do(pathCmd{Stats: true})
	if err != nil {
		return PathStats{}, err
	}
	st := PathStats{ToDB: r.ToDB, ToApp: r.ToApp, Other: r.Other, Seed: r.Seed, Sched: l.path.sched}
	return st, nil
}

// PathPID is the emulator's process id, 0 when no path is set (for tests
// that check it is reaped).
func (l *Lab) PathPID() int {
	l.pathMu.Lock()
	defer l.pathMu.Unlock()
	if l.path == nil {
		return 0
	}
	return l.path.p.pid()
}

func pathSeed() (uint64, error) {
	v := os.Getenv(EnvSeed)
	if v == "" {
		return rand.Uint64(), nil
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not an unsigned integer", ErrBadPath, EnvSeed, v)
	}
	return seed, nil
}
