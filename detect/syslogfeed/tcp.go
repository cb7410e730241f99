package syslogfeed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Backoff after a temporary accept error, as net/http's Server.Serve.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// ServeTCP accepts connections on ln until Close (which closes ln and
// every connection) and returns ErrClosed, or another accept error.
//
// Temporary accept errors (out of file descriptors: EMFILE, ENFILE; a
// connection aborted in the queue: ECONNABORTED; out of buffers) do not
// end it: it waits 5 ms, doubling to 1 s while they go on, and tries
// again. They are counted in Stats.AcceptErrors and logged once per burst.
func (s *Receiver) ServeTCP(ln net.Listener) error {
	if !s.track(ln) {
		return ErrClosed
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.untrack(ln)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrClosed
			}
			if !temporaryAcceptError(err) {
				return fmt.Errorf("syslogfeed: tcp: %w", err)
			}
			s.acceptErrors.Add(1)
			if backoff == 0 {
				s.log.Log(slog.LevelWarn, "accept error", "syslog: accept failing, retrying with backoff", "err", err)
				backoff = acceptBackoffMin
			} else {
				backoff = min(2*backoff, acceptBackoffMax)
			}
			t := time.NewTimer(backoff) // a real clock: the kernel is what we wait for
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
				return ErrClosed
			}
			continue
		}
		backoff = 0
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

// temporaryAcceptError reports whether an accept error is worth waiting
// out: resource exhaustion, a connection that died in the queue, a timeout.
func temporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR,
		syscall.EPROTO, syscall.EPERM, syscall.ETIMEDOUT,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
