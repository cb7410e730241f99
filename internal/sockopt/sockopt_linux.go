//go:build linux

package sockopt

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const supported = true

func setUserTimeout(c syscall.RawConn, d time.Duration) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		// syscall lacks TCP_USER_TIMEOUT on linux/amd64; x/sys has it.
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
	})
	if err != nil {
		return err
	}
	return serr
}

func rttOf(c syscall.RawConn) (rtt, rttvar time.Duration, ok bool) {
	var info *unix.TCPInfo
	var gerr error
	if err := c.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil || info == nil || info.Rtt == 0 {
		return 0, 0, false
	}
	// tcpi_rtt and tcpi_rttvar are in microseconds.
	return time.Duration(info.Rtt) * time.Microsecond, time.Duration(info.Rttvar) * time.Microsecond, true
}

func stalledOf(c syscall.RawConn) (timeouts int, ok bool) {
	var info *unix.TCPInfo
	var gerr error
	if err := c.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil || info == nil {
		return 0, false
	}
	if info.Unacked > 0 {
		timeouts = int(max(info.Retransmits, info.Backoff))
	}
	return max(timeouts, int(info.Probes)), true
}
