package syslogfeed

import (
	"bytes"
	"errors"
	"fmt"
	"net"
)

// ServeUDP reads datagrams from pc until Close (which closes pc) and
// returns ErrClosed, or another read error.
func (s *Receiver) ServeUDP(pc net.PacketConn) error {
	if !s.track(pc) {
		return ErrClosed
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.untrack(pc)
	// One byte over the limit tells an oversized datagram (the kernel
	// truncates it to the buffer) from one of exactly maxLine bytes.
	buf := make([]byte, s.maxLine+1)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if s.isClosed() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return err
			}
			return fmt.Errorf("syslogfeed: udp: %w", err)
		}
		if !s.allowed(addr) {
			s.received.Add(1)
			s.drop("source not in AllowFrom", addr)
			continue
		}
		if n > s.maxLine {
			s.received.Add(1)
			s.drop("datagram longer than MaxLine", addr)
			continue
		}
		for line := range bytes.SplitSeq(buf[:n], []byte{'\n'}) {
			if len(trimEOL(line)) == 0 {
				continue
			}
			s.received.Add(1)
			s.handle(line, addr)
		}
	}
}
