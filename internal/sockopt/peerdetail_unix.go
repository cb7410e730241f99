//go:build unix && !linux

package sockopt

// peerDetail: without TCP_INFO's state, bytes waiting are not known to be
// followed by a FIN (peerOf counts them as pending).
func peerDetail(uintptr) (closed bool, pending int) { return false, 0 }
