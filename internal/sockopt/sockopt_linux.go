//go:build linux

package sockopt

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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

func rttOf(c syscall.RawConn) (rtt, rttvar, rto time.Duration, ok bool) {
	info, ok := tcpInfo(c)
	if !ok || info.Rtt == 0 {
		return 0, 0, 0, false
	}
	// tcpi_rtt, tcpi_rttvar and tcpi_rto are in microseconds. tcpi_rto is
	// the kernel's retransmission timeout (srtt + 4·rttvar, at least
	// TCP_RTO_MIN = 200ms, doubled by backoff).
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return us(info.Rtt), us(info.Rttvar), us(info.Rto), true
}

func stalledOf(c syscall.RawConn) (timeouts int, ok bool) {
	info, ok := tcpInfo(c)
	if !ok {
		return 0, false
	}
	if info.Unacked > 0 {
		timeouts = int(max(info.Retransmits, info.Backoff))
	}
	return max(timeouts, int(info.Probes)), true
}

func inqOf(c syscall.RawConn) (n int, ok bool) {
	var gerr error
	if err := c.Control(func(fd uintptr) {
		n, gerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil || gerr != nil {
		return 0, false
	}
	return n, true
}

func lossOf(c syscall.RawConn) (rate float64, ok bool) {
	info, ok := tcpInfo(c)
	if !ok || info.Data_segs_out == 0 {
		return 0, false
	}
	return float64(info.Total_retrans) / float64(info.Data_segs_out), true
}

// tcpInfo reads the socket's TCP_INFO.
func tcpInfo(c syscall.RawConn) (*unix.TCPInfo, bool) {
	var info *unix.TCPInfo
	var gerr error
	if err := c.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil || info == nil {
		return nil, false
	}
	return info, true
}

func heardOf(c syscall.RawConn, dataOnly bool) (time.Duration, bool) {
	info, ok := tcpInfo(c)
	if !ok {
		return 0, false
	}
	ms := info.Last_data_recv
	if !dataOnly {
		ms = min(ms, info.Last_ack_recv)
	}
	return time.Duration(ms) * time.Millisecond, true
}

func keepAliveProbeOf(c syscall.RawConn) (func(), bool) {
	info, ok := tcpInfo(c)
	if !ok || info.Unacked > 0 || info.State != unix.BPF_TCP_ESTABLISHED {
		return func() {}, false
	}
	var on, idle int
	var gerr error
	err := c.Control(func(fd uintptr) {
		if on, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE); gerr != nil {
			return
		}
		if idle, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); gerr != nil {
			return
		}
		if on == 0 {
			if gerr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); gerr != nil {
				return
			}
		}
		gerr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 1)
	})
	if err != nil || gerr != nil {
		return func() {}, false
	}
	return func() {
		c.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, idle)
			if on == 0 {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0)
			}
		})
	}, true
}

func flightOf(c syscall.RawConn) (int, uint32, bool) {
	info, ok := tcpInfo(c)
	if !ok {
		return 0, 0, false
	}
	return int(info.Unacked), info.Total_retrans, true
}
