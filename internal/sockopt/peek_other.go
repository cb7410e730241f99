//go:build !unix

package sockopt

import "syscall"

func peekOf(syscall.RawConn, []byte) (int, bool) { return 0, false }
