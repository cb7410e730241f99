package syslogfeed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ServeTCP accepts connections on ln until Close (which closes ln and
// every connection) and returns ErrClosed, or another accept error.
func (s *Receiver) ServeTCP(ln net.Listener) error {
	if !s.track(ln) {
		return ErrClosed
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.untrack(ln)
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond) // transient (EMFILE etc.): back off, don't spin
				continue
			}
			return fmt.Errorf("syslogfeed: tcp: %w", err)
		}
		if !s.allowed(c.RemoteAddr()) {
			s.drop("source not in AllowFrom", c.RemoteAddr()) // counted before the peer can see the close
			c.Close()
			continue
		}
		select {
		case s.connSem <- struct{}{}:
		default:
			s.drop("too many TCP connections", c.RemoteAddr())
			c.Close()
			continue
		}
		if !s.track(c) {
			c.Close()
			<-s.connSem
			return ErrClosed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.connSem }()
			defer s.untrack(c)
			defer c.Close()
			s.serveConn(c)
		}()
	}
}

// serveConn reads RFC 6587 frames. A frame starting with a digit is
// octet-counted ("LEN SP MSG"); anything else runs to the next newline.
func (s *Receiver) serveConn(c net.Conn) {
	addr := c.RemoteAddr()
	r := bufio.NewReaderSize(c, 4096)
	var line []byte
	for {
		c.SetReadDeadline(time.Now().Add(s.idle)) // a real clock: this is a socket deadline
		b, err := r.Peek(1)
		if err != nil {
			return
		}
		if b[0] >= '1' && b[0] <= '9' {
			n, err := readOctetCount(r)
			if err != nil {
				s.received.Add(1)
				s.malformedLine(err, addr)
				return // framing is lost; the sender reconnects
			}
			s.received.Add(1)
			if n > s.maxLine {
				s.drop("frame longer than MaxLine", addr)
				if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
					return
				}
				continue
			}
			line = growTo(line, n)
			if _, err := io.ReadFull(r, line); err != nil {
				return
			}
			s.handle(line, addr)
			continue
		}
		line, err = readLine(r, line[:0], s.maxLine)
		if errors.Is(err, ErrLineTooLong) {
			s.received.Add(1)
			s.drop("line longer than MaxLine", addr)
			if err != ErrLineTooLong {
				return // the connection ended inside the long line
			}
			continue
		}
		if len(line) > 0 {
			s.received.Add(1)
			s.handle(line, addr)
		}
		if err != nil {
			return
		}
	}
}
