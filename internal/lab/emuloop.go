//go:build linux

package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// readBatch bounds the packets read per wake-up, so a burst of arrivals
// cannot hold back packets that are due.
const readBatch = 64

// run is the emulator's loop: wait until the next packet is due or one
// arrives, admit arrivals into their lane, write out what is due. It
// returns once draining and every lane is empty.
func (e *emulator) run() error {
	fds := []unix.PollFd{{Fd: int32(e.wake), Events: unix.POLLIN}, {Fd: int32(e.tun), Events: unix.POLLIN}}
	for {
		e.apply()
		draining := e.draining.Load()
		next, waiting := e.nextDue()
		if draining && !waiting && !e.readable() {
			return nil
		}
		var ts *unix.Timespec
		if waiting {
			t := unix.NsecToTimespec(max(0, next-e.now()))
			ts = &t
		}
		if _, err := unix.Ppoll(fds, ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("ppoll: %w", err)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			var b [8]byte
			unix.Read(e.wake, b[:])
		}
		if err := e.readArrivals(); err != nil {
			return err
		}
		e.sendDue()
	}
}

// apply hands new settings to the lanes (the loop owns them).
func (e *emulator) apply() {
	c := e.cfg.Load()
	if c == nil || c == e.applied {
		return
	}
	e.applied = c
	e.lanes[0].setSpec(c.ToDB, c.Seed, 1)
	e.lanes[1].setSpec(c.ToApp, c.Seed, 2)
}

func (e *emulator) nextDue() (int64, bool) {
	a, okA := e.lanes[0].next()
	b, okB := e.lanes[1].next()
	switch {
	case okA && okB:
		return min(a, b), true
	case okA:
		return a, true
	}
	return b, okB
}

// readable reports whether the TUN has a packet waiting (for the drain:
// packets routed in just before the rules went).
func (e *emulator) readable() bool {
	fds := []unix.PollFd{{Fd: int32(e.tun), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds, 0)
	return n > 0
}

// readArrivals reads up to readBatch packets, stamping each on arrival.
func (e *emulator) readArrivals() error {
	for range readBatch {
		n, err := unix.Read(e.tun, e.scratch)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return nil
		case err != nil:
			return fmt.Errorf("read tun: %w", err)
		}
		now := e.now()
		i, ok := e.direction(e.scratch[:n])
		if !ok {
			e.other.Add(1)
			continue
		}
		ln, c := &e.lanes[i], &e.ctr[i]
		c.packets.Add(1)
		due, drop := ln.admit(now)
		if drop {
			c.dropped.Add(1)
			continue
		}
		if !ln.push(due, e.copyPacket(e.scratch[:n])) {
			c.overflow.Add(1)
		}
	}
	return nil
}

// direction classifies an IPv4 packet by its destination: 0 toward db, 1
// toward app.
func (e *emulator) direction(p []byte) (int, bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return 0, false
	}
	dst := netip.AddrFrom4([4]byte(p[16:20]))
	switch {
	case e.dbNet.Contains(dst):
		return 0, true
	case e.appNet.Contains(dst):
		return 1, true
	}
	return 0, false
}

// sendDue writes every packet whose time has come back into the TUN.
func (e *emulator) sendDue() {
	now := e.now()
	for i := range e.lanes {
		for {
			due, _ := e.lanes[i].next()
			p, ok := e.lanes[i].pop(now)
			if !ok {
				break
			}
			if late := now - due; late > int64(time.Millisecond) {
				e.ctr[i].late.Add(1)
				if late > e.ctr[i].maxLate.Load() {
					e.ctr[i].maxLate.Store(late)
				}
			}
			if _, err := unix.Write(e.tun, p); err != nil {
				e.ctr[i].writeErrs.Add(1)
			} else {
				e.ctr[i].delivered.Add(1)
			}
			if len(e.free) < readBatch*16 {
				e.free = append(e.free, p[:0])
			}
		}
	}
}

// copyPacket copies p into a recycled buffer (the lab's MTU is 1500).
func (e *emulator) copyPacket(p []byte) []byte {
	if n := len(e.free); n > 0 && cap(e.free[n-1]) >= len(p) {
		b := e.free[n-1]
		e.free = e.free[:n-1]
		return append(b, p...)
	}
	return append(make([]byte, 0, max(len(p), 2048)), p...)
}
