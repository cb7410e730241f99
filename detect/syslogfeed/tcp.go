package syslogfeed

import (
	"bufio"
	"context"
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
		if !s.track(c) {
			c.Close()
			return ErrClosed
		}
		src, _ := addrIP(c.RemoteAddr())
		tc := &tcpConn{c: c, src: src, accepted: time.Now()}
		s.wg.Add(1)
		go s.runConn(tc)
	}
}

// handshaker is a connection with a handshake to finish (a *tls.Conn);
// the interface keeps crypto/tls out of programs that serve plain TCP.
type handshaker interface {
	HandshakeContext(context.Context) error
}

// runConn finishes a TLS connection's handshake, admits the connection
// into the table (evicting the idlest to make room), and serves it.
//
// A TLS connection counts against MaxConns and MaxConnsPerSource only
// once its handshake is done: a client without a certificate never takes
// a router's place. Until then it holds one of the handshake slots
// (handshakesPerSource per source address, MaxConns in all), for at most
// handshakeTimeout; a connection that finds no free slot is closed at
// once.
func (s *Receiver) runConn(tc *tcpConn) {
	defer s.wg.Done()
	c := tc.c
	defer s.untrack(c)
	if h, ok := c.(handshaker); ok {
		if !s.startHandshake(tc.src) {
			s.drop("too many TLS handshakes in progress from this source", c.RemoteAddr())
			c.Close()
			return
		}
		err := s.handshake(c, h, tc)
		s.endHandshake(tc.src)
		if err != nil {
			c.Close()
			return
		}
	}
	s.connections.Add(1)
	for _, v := range s.admit(tc) {
		s.evicted.Add(1)
		s.log.Log(slog.LevelInfo, "evicted", "syslog: idle TCP connection closed to make room",
			"from", addrString(v.c.RemoteAddr()), "for", addrString(c.RemoteAddr()))
		v.c.Close()
	}
	err := s.serveConn(tc)
	c.Close()
	s.remove(tc) // before counting: Stats never shows it open and closed
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !tc.evicted.Load() {
		s.idleClosed.Add(1)
		s.log.Log(slog.LevelInfo, "idle", "syslog: TCP connection closed: no message within IdleTimeout",
			"from", addrString(c.RemoteAddr()), "idle", s.idle)
	}
}

// handshake runs a TLS handshake under min(IdleTimeout,
// handshakeTimeout). A client turned away (no certificate, an unknown CA)
// is counted as Dropped and logged, rather than just gone.
func (s *Receiver) handshake(c net.Conn, h handshaker, tc *tcpConn) error {
	c.SetReadDeadline(tc.accepted.Add(min(s.idle, handshakeTimeout))) // a real clock: a socket deadline
	err := h.HandshakeContext(context.Background())
	if err == nil {
		return nil
	}
	s.dropped.Add(1)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.log.Log(slog.LevelInfo, "TLS handshake timeout", "syslog: TLS handshake not finished in time", "from", addrString(c.RemoteAddr()), "limit", min(s.idle, handshakeTimeout))
	} else {
		s.log.Log(slog.LevelWarn, "TLS handshake failed", "syslog: TLS handshake failed", "err", err, "from", addrString(c.RemoteAddr()))
	}
	return err
}

// serveConn reads RFC 6587 frames until the connection fails or ends, and
// returns why. A frame starting with a digit is octet-counted ("LEN SP
// MSG"); anything else runs to the next newline.
//
// The read deadline moves only when a complete, non-empty message
// arrives: a connection that sends bare newlines, or a line a byte at a
// time, is closed IdleTimeout after its last message all the same.
func (s *Receiver) serveConn(tc *tcpConn) error {
	c := tc.c
	addr := c.RemoteAddr()
	c.SetReadDeadline(tc.accepted.Add(s.idle)) // a real clock: this is a socket deadline
	deliver := func(line []byte) {
		if len(trimEOL(line)) == 0 {
			return // an empty frame is no message
		}
		s.received.Add(1)
		now := time.Now()
		tc.lastMsg.Store(now.UnixNano())
		c.SetReadDeadline(now.Add(s.idle))
		if s.handle(line, addr) {
			tc.delivered.Store(true)
		}
	}
	r := bufio.NewReaderSize(c, 4096)
	var line []byte
	for {
		b, err := r.Peek(1)
		if err != nil {
			return err
		}
		if b[0] >= '1' && b[0] <= '9' {
			n, err := readOctetCount(r)
			if errors.Is(err, ErrMalformed) {
				s.received.Add(1)
				s.malformedLine(err, addr)
				return err // framing is lost; the sender reconnects
			}
			if err != nil {
				return err
			}
			if n > s.maxLine {
				s.received.Add(1)
				s.drop("frame longer than MaxLine", addr)
				if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
					return err
				}
				continue
			}
			line = growTo(line, n)
			if _, err := io.ReadFull(r, line); err != nil {
				return err
			}
			deliver(line)
			continue
		}
		line, err = readLine(r, line[:0], s.maxLine)
		if errors.Is(err, ErrLineTooLong) {
			s.received.Add(1)
			s.drop("line longer than MaxLine", addr)
			if err != ErrLineTooLong {
				return err // the connection ended inside the long line
			}
			continue
		}
		if err == nil || err == io.EOF {
			deliver(line) // a last line without newline before EOF counts
		}
		if err != nil {
			return err
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
