package detect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// SyslogConfig configures a Syslog receiver. Only Notifier and Rules are
// required; every other zero value picks the documented default.
type SyslogConfig struct {
	// Notifier receives the events, one at a time, from the receiver's
	// single delivery goroutine. Required.
	Notifier Notifier
	// Rules turn lines into events, e.g. detect.StrongSwan().Rules or
	// detect.YamahaRTX().WithTunnelMap(m).Rules. Required.
	Rules []Rule
	// MaxLine is the longest message accepted; longer ones are dropped and
	// counted. 0 = DefaultMaxLine (8 KiB).
	MaxLine int
	// MaxConns bounds concurrent TCP connections; more are closed at once
	// and counted as dropped. 0 = 64.
	MaxConns int
	// QueueLen bounds events waiting for the Notifier; when full, new
	// events are dropped and counted rather than blocking the read loops.
	// 0 = 256.
	QueueLen int
	// IdleTimeout closes a TCP connection that sends nothing for this long.
	// 0 = 5 minutes.
	IdleTimeout time.Duration
	// AllowFrom, when set, accepts messages only from these source
	// networks (UDP datagrams and TCP connections from elsewhere are
	// dropped and counted). Syslog has no authentication: anyone who can
	// reach the socket can report a tunnel down. nil = accept all; then
	// bind to an address only the routers reach, or firewall it.
	AllowFrom []netip.Prefix
	// Logger gets rejections and drops (rate-limited to one line per
	// second per kind). nil = discard.
	Logger *slog.Logger
	// Now stamps Event.At at receive time. nil = time.Now.
	Now func() time.Time
}

// SyslogStats are the receiver's counters since NewSyslog.
type SyslogStats struct {
	Received  uint64 // messages read (UDP datagram lines, TCP frames)
	Events    uint64 // events handed to the Notifier
	Ignored   uint64 // messages no rule turned into an event
	Dropped   uint64 // too long, queue full, or TCP connection over MaxConns
	Malformed uint64 // bad syslog header, bad framing, invalid event
}

// ErrSyslogClosed is returned by ServeUDP and ServeTCP after Close.
var ErrSyslogClosed = errors.New("detect: syslog receiver closed")

// Syslog receives syslog over UDP (RFC 5426: one message per datagram;
// newline-separated lines in one datagram are also accepted) and TCP
// (RFC 6587: octet counting "LEN SP MSG" or newline-terminated frames,
// detected per frame), parses each message with ParseLine and delivers
// events to the Notifier through a bounded queue. It is safe for concurrent
// use; Serve* may be called several times with different sockets.
//
// Memory is bounded under a flood: one MaxLine buffer per socket and
// connection, at most MaxConns connections, at most QueueLen queued events.
// A slow Notifier makes events drop (counted), never the read loops stall.
//
// Syslog is unauthenticated: restrict it with AllowFrom, a bind address
// only the routers reach, or a firewall. Event.At is the receive time
// (device clocks are often wrong: YAMAHA logs 1980/01/01 until NTP syncs);
// Event.Source is "syslog:<rule>@<sender IP>".
type Syslog struct {
	parser   *Parser
	notifier Notifier
	maxLine  int
	idle     time.Duration
	log      *slog.Logger
	now      func() time.Time
	queue    chan Event
	connSem  chan struct{}
	allow    []netip.Prefix

	received, events, ignored, dropped, malformed atomic.Uint64
	lastLog                                       [3]atomic.Int64 // unix nanos of last drop/malformed/ignored log

	mu      sync.Mutex // protects following fields
	closed  bool
	closers map[io.Closer]struct{}

	wg       sync.WaitGroup // Serve loops and connections
	done     chan struct{}
	delivery sync.WaitGroup
}

// NewSyslog checks cfg and starts the delivery goroutine; Close stops it.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	if cfg.Notifier == nil {
		return nil, errors.New("detect: SyslogConfig.Notifier is nil")
	}
	if len(cfg.Rules) == 0 {
		return nil, errors.New("detect: SyslogConfig.Rules is empty (use packs, e.g. detect.StrongSwan().Rules)")
	}
	p, err := NewParser(cfg.Rules, cfg.MaxLine)
	if err != nil {
		return nil, err
	}
	s := &Syslog{
		parser:   p,
		notifier: cfg.Notifier,
		maxLine:  p.maxLine,
		idle:     orDuration(cfg.IdleTimeout, 5*time.Minute),
		log:      cfg.Logger,
		now:      cfg.Now,
		queue:    make(chan Event, orInt(cfg.QueueLen, 256)),
		connSem:  make(chan struct{}, orInt(cfg.MaxConns, 64)),
		closers:  make(map[io.Closer]struct{}),
		done:     make(chan struct{}),
		allow:    append([]netip.Prefix(nil), cfg.AllowFrom...),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.delivery.Add(1)
	go s.deliver()
	return s, nil
}

// ParseLine is the receiver's parser (see Parser.ParseLine).
func (s *Syslog) ParseLine(line []byte) (Event, bool, error) { return s.parser.ParseLine(line) }

// Stats returns the counters.
func (s *Syslog) Stats() SyslogStats {
	return SyslogStats{
		Received: s.received.Load(), Events: s.events.Load(), Ignored: s.ignored.Load(),
		Dropped: s.dropped.Load(), Malformed: s.malformed.Load(),
	}
}

// ServeUDP reads datagrams from pc until Close (which closes pc) and
// returns ErrSyslogClosed, or another read error.
func (s *Syslog) ServeUDP(pc net.PacketConn) error {
	if !s.track(pc) {
		return ErrSyslogClosed
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
				return ErrSyslogClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return err
			}
			return fmt.Errorf("detect: syslog udp: %w", err)
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

// ServeTCP accepts connections on ln until Close (which closes ln and
// every connection) and returns ErrSyslogClosed, or another accept error.
func (s *Syslog) ServeTCP(ln net.Listener) error {
	if !s.track(ln) {
		return ErrSyslogClosed
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.untrack(ln)
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrSyslogClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond) // transient (EMFILE etc.): back off, don't spin
				continue
			}
			return fmt.Errorf("detect: syslog tcp: %w", err)
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
			return ErrSyslogClosed
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
func (s *Syslog) serveConn(c net.Conn) {
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

// handle parses one message; it never blocks on the Notifier.
func (s *Syslog) handle(line []byte, addr net.Addr) {
	if len(trimEOL(line)) == 0 {
		return
	}
	ev, ok, err := s.parser.ParseLine(line)
	switch {
	case errors.Is(err, ErrLineTooLong):
		s.drop("line longer than MaxLine", addr)
		return
	case errors.Is(err, ErrIgnored):
		s.ignored.Add(1)
		s.rateLog(2, "syslog: line ignored", "reason", err.Error(), "from", addrString(addr))
		return
	case err != nil:
		s.malformedLine(err, addr)
		return
	case !ok:
		s.ignored.Add(1)
		return
	}
	ev.At = s.now()
	if addr != nil {
		ev.Source += "@" + addrString(addr)
	}
	select {
	case s.queue <- ev:
	default:
		s.drop("event queue full (slow Notifier)", addr)
	}
}

func (s *Syslog) deliver() {
	defer s.delivery.Done()
	for {
		select {
		case ev := <-s.queue:
			s.events.Add(1)
			s.notifier.Notify(ev)
		case <-s.done:
			for {
				select {
				case ev := <-s.queue:
					s.events.Add(1)
					s.notifier.Notify(ev)
				default:
					return
				}
			}
		}
	}
}

// Close closes every socket handed to Serve* and every TCP connection,
// waits for their goroutines, delivers the events already queued and
// stops the delivery goroutine. It is idempotent.
func (s *Syslog) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		s.delivery.Wait()
		return nil
	}
	s.closed = true
	for c := range s.closers {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	close(s.done)
	s.delivery.Wait()
	return nil
}

func (s *Syslog) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closers[c] = struct{}{}
	return true
}

func (s *Syslog) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.closers, c)
	s.mu.Unlock()
}

func (s *Syslog) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Syslog) drop(why string, addr net.Addr) {
	s.dropped.Add(1)
	s.rateLog(0, "syslog: message dropped", "reason", why, "from", addrString(addr))
}

func (s *Syslog) malformedLine(err error, addr net.Addr) {
	s.malformed.Add(1)
	s.rateLog(1, "syslog: malformed message", "err", err.Error(), "from", addrString(addr))
}

// rateLog logs at most once a second per kind, so a flood cannot turn into
// a log flood; the counters have the totals.
func (s *Syslog) rateLog(kind int, msg string, args ...any) {
	now := s.now().UnixNano()
	last := s.lastLog[kind].Load()
	if now-last < int64(time.Second) || !s.lastLog[kind].CompareAndSwap(last, now) {
		return
	}
	s.log.Warn(msg, args...)
}

// allowed reports whether AllowFrom admits a.
func (s *Syslog) allowed(a net.Addr) bool {
	if len(s.allow) == 0 {
		return true
	}
	var ip netip.Addr
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}
