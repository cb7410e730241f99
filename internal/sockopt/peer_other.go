//go:build !unix

package sockopt

import "syscall"

func peerOf(syscall.RawConn) (bool, int, bool) { return false, 0, false }
