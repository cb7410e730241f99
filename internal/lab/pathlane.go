//go:build linux

package lab

import (
	"math/rand/v2"
	"time"
)

// jitterHold is how long one jitter value applies to a direction when
// packets must stay in order. A fresh value per packet, clamped to keep
// FIFO order, can only add delay: a busy flow's packets would mostly wait
// for the slowest draw before them, and its RTT would creep above the
// setting. Holding one value for about a burst's worth of packets keeps the
// mean at the setting while the delay still wanders over ±Jitter.
const jitterHold = 10 * time.Millisecond

// laneCap bounds the packets one direction holds: past it packets are
// dropped and counted as Overflow, like a router's full queue. At the lab's
// rates it is never reached; it keeps a runaway sender from eating memory.
const laneCap = 8192

// lane is one direction of the emulated path: it decides each packet's
// fate on arrival and holds it until it is due. Times are nanoseconds on
// the emulator's monotonic clock. A lane is owned by the emulator's loop.
type lane struct {
	spec PathSpec
	rng  *rand.Rand

	held      int64 // the jitter value in force (FIFO mode)
	holdUntil int64
	last      int64 // latest due time handed out: FIFO never goes below it
	seq       uint64

	q    []queued // sorted by (due, seq); q[head:] are waiting
	head int
}

type queued struct {
	due  int64
	seq  uint64
	data []byte
}

// setSpec changes the lane's behaviour for packets arriving from now on;
// packets already waiting keep their due times. seed restarts the lane's
// generator, so a run with the same seed draws the same sequence.
func (ln *lane) setSpec(spec PathSpec, seed, stream uint64) {
	ln.spec = spec
	ln.rng = rand.New(rand.NewPCG(seed, stream))
	ln.holdUntil = 0
}

// admit decides the fate of a packet arriving at now: dropped (Loss), or
// due at now + Delay ± Jitter. Without Reorder the due time never goes
// below the previous one, so the lane stays FIFO.
func (ln *lane) admit(now int64) (due int64, drop bool) {
	s := ln.spec
	if s.Loss > 0 && ln.rng.Float64() < s.Loss {
		return 0, true
	}
	var jit int64
	if j := int64(s.Jitter); j > 0 {
		switch {
		case s.Reorder:
			jit = ln.rng.Int64N(2*j+1) - j
		default:
			if now >= ln.holdUntil {
				ln.held = ln.rng.Int64N(2*j+1) - j
				ln.holdUntil = now + int64(jitterHold)
			}
			jit = ln.held
		}
	}
	due = now + int64(s.Delay) + jit
	if !s.Reorder {
		due = max(due, ln.last)
	}
	ln.last = max(ln.last, due)
	return due, false
}

// push queues data until due; false when the lane is full.
func (ln *lane) push(due int64, data []byte) bool {
	if ln.len() >= laneCap {
		return false
	}
	ln.seq++
	if ln.head > 0 && ln.head >= len(ln.q)/2 {
		n := copy(ln.q, ln.q[ln.head:])
		clear(ln.q[n:])
		ln.q, ln.head = ln.q[:n], 0
	}
	ln.q = append(ln.q, queued{due: due, seq: ln.seq, data: data})
	// In FIFO mode the new packet is always last; with Reorder it sinks to
	// its place (a few slots: jitter spans milliseconds).
	for i := len(ln.q) - 1; i > ln.head && ln.q[i].due < ln.q[i-1].due; i-- {
		ln.q[i], ln.q[i-1] = ln.q[i-1], ln.q[i]
	}
	return true
}

func (ln *lane) len() int { return len(ln.q) - ln.head }

// next is the due time of the first waiting packet.
func (ln *lane) next() (int64, bool) {
	if ln.len() == 0 {
		return 0, false
	}
	return ln.q[ln.head].due, true
}

// pop removes and returns the first packet if it is due at now.
func (ln *lane) pop(now int64) ([]byte, bool) {
	if ln.len() == 0 || ln.q[ln.head].due > now {
		return nil, false
	}
	d := ln.q[ln.head].data
	ln.q[ln.head] = queued{}
	ln.head++
	return d, true
}
