//go:build !linux

package sockopt

import (
	"syscall"
	"time"
)

func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }

func rttOf(syscall.RawConn) (time.Duration, time.Duration, time.Duration, bool) {
	return 0, 0, 0, false
}

func stalledOf(syscall.RawConn) (int, bool) { return 0, false }

func inqOf(syscall.RawConn) (int, bool) { return 0, false }

func lossOf(syscall.RawConn) (float64, bool) { return 0, false }

func heardOf(syscall.RawConn, bool) (time.Duration, bool) { return 0, false }

func keepAliveProbeOf(syscall.RawConn) (func(), bool) { return func() {}, false }

func flightOf(syscall.RawConn) (int, uint32, bool) { return 0, 0, false }
