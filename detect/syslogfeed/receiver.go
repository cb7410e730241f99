package syslogfeed

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// ErrClosed is returned by ServeUDP and ServeTCP after Close.
var ErrClosed = errors.New("syslogfeed: receiver closed")

// Receiver receives syslog over UDP (RFC 5426: one message per datagram;
// newline-separated lines in one datagram are also accepted) and TCP
// (RFC 6587: octet counting "LEN SP MSG" or newline-terminated frames,
// detected per frame), parses each message with its Parser and delivers
// events to the Notifier through a bounded queue. It is safe for concurrent
// use; Serve* may be called several times with different sockets.
//
// Memory is bounded under a flood: one MaxLine buffer per socket and
// connection, at most MaxConns connections (MaxConnsPerSource from one
// address), at most QueueLen queued events. A slow Notifier makes events
// drop (counted), never the read loops stall. When the connections are at
// their limit, a new one is admitted and the one idle longest closed, so
// connections that say nothing cannot lock a router out.
//
// Plain syslog is unauthenticated: serve TLS with client certificates
// (ServeTCP on a tls.Listener, see the package doc), or restrict it with a
// bind address only the routers reach, a firewall, and AllowFrom (which
// UDP senders can forge). Event.At is the receive time
// (device clocks are often wrong: YAMAHA logs 1980/01/01 until NTP syncs);
// Event.Source is "syslog:<rule>@<sender IP>".
type Receiver struct {
	parser   *Parser
	notifier detect.Notifier
	maxLine  int
	idle     time.Duration
	log      *feedkit.RateLog
	now      func() time.Time
	queue    chan detect.Event
	allow    []netip.Prefix

	maxConns, perSource int
	connsMu             sync.Mutex // protects following fields
	conns               map[*tcpConn]struct{}
	perSrc              map[netip.Addr]int
	shaking             map[netip.Addr]int // TLS handshakes in progress, by source
	shakingTotal        int

	received, events, refused, ignored, dropped, malformed atomic.Uint64
	acceptErrors, evicted, idleClosed, connections         atomic.Uint64

	mu      sync.Mutex // protects following fields
	closed  bool
	closers map[io.Closer]struct{}

	quit chan struct{} // closed by Close: ends backoff waits

	wg       sync.WaitGroup // Serve loops and connections
	done     chan struct{}
	delivery sync.WaitGroup
}

// New checks cfg and starts the delivery goroutine; Close stops it.
func New(cfg Config) (*Receiver, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	p, err := NewParser(cfg.Rules, cfg.MaxLine)
	if err != nil {
		return nil, err
	}
	s := &Receiver{
		parser:    p,
		notifier:  cfg.Notifier,
		maxLine:   p.maxLine,
		idle:      cfg.IdleTimeout,
		log:       feedkit.NewRateLog(cfg.Logger, time.Second, cfg.Now),
		now:       cfg.Now,
		queue:     make(chan detect.Event, cfg.QueueLen),
		maxConns:  cfg.MaxConns,
		perSource: cfg.MaxConnsPerSource,
		conns:     make(map[*tcpConn]struct{}),
		perSrc:    make(map[netip.Addr]int),
		shaking:   make(map[netip.Addr]int),
		closers:   make(map[io.Closer]struct{}),
		done:      make(chan struct{}),
		quit:      make(chan struct{}),
		allow:     append([]netip.Prefix(nil), cfg.AllowFrom...),
	}
	s.delivery.Add(1)
	go s.deliver()
	return s, nil
}

// Stats returns the counters.
func (s *Receiver) Stats() Stats {
	return Stats{
		Received: s.received.Load(), Events: s.events.Load(), Refused: s.refused.Load(), Ignored: s.ignored.Load(),
		Dropped: s.dropped.Load(), Malformed: s.malformed.Load(),
		Conns: s.connections.Load(), OpenConns: uint64(s.openConns()), Evicted: s.evicted.Load(),
		IdleClosed: s.idleClosed.Load(), AcceptErrors: s.acceptErrors.Load(),
	}
}

// handle parses one message; it never blocks on the Notifier. It reports
// whether the message was an event.
func (s *Receiver) handle(line []byte, addr net.Addr) bool {
	if len(trimEOL(line)) == 0 {
		return false
	}
	ev, ok, err := s.parser.ParseLine(line)
	switch {
	case errors.Is(err, ErrLineTooLong):
		s.drop("line longer than MaxLine", addr)
		return false
	case errors.Is(err, ErrIgnored):
		s.ignored.Add(1)
		s.log.Log(slog.LevelWarn, "ignored", "syslog: line ignored", "reason", err.Error(), "from", addrString(addr))
		return false
	case err != nil:
		s.malformedLine(err, addr)
		return false
	case !ok:
		s.ignored.Add(1)
		return false
	}
	ev.At = s.now()
	if addr != nil {
		ev.Source += "@" + addrString(addr)
	}
	select {
	case s.queue <- ev:
		return true
	default:
		s.drop("event queue full (slow Notifier)", addr)
		return true // an event all the same: the sender is a router
	}
}

func (s *Receiver) deliver() {
	defer s.delivery.Done()
	for {
		select {
		case ev := <-s.queue:
			s.notify(ev)
		case <-s.done:
			for {
				select {
				case ev := <-s.queue:
					s.notify(ev)
				default:
					return
				}
			}
		}
	}
}

// notify delivers ev through detect.Accept: an Acceptor's refusal (a
// *pool.Pool's: too old, stale, not its tunnel) is counted in
// Stats.Refused and logged, rate-limited, not in Stats.Events.
func (s *Receiver) notify(ev detect.Event) {
	if _, ok := s.notifier.(detect.Acceptor); !ok {
		s.events.Add(1) // before the call: Stats shows the event when the Notifier has it
		s.notifier.Notify(ev)
		return
	}
	if err := detect.Accept(s.notifier, ev); err != nil {
		s.refused.Add(1)
		s.log.Log(slog.LevelInfo, "refused", "syslog: event not taken by the receiver", "event", ev.String(), "err", err)
		return
	}
	s.events.Add(1)
}

// Close closes every socket handed to Serve* and every TCP connection,
// waits for their goroutines, delivers the events already queued and
// stops the delivery goroutine. It is idempotent.
func (s *Receiver) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		s.delivery.Wait()
		return nil
	}
	s.closed = true
	close(s.quit)
	for c := range s.closers {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	close(s.done)
	s.delivery.Wait()
	return nil
}

func (s *Receiver) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closers[c] = struct{}{}
	return true
}

func (s *Receiver) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.closers, c)
	s.mu.Unlock()
}

func (s *Receiver) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Receiver) drop(why string, addr net.Addr) {
	s.dropped.Add(1)
	s.log.Log(slog.LevelWarn, why, "syslog: message dropped", "reason", why, "from", addrString(addr))
}

func (s *Receiver) malformedLine(err error, addr net.Addr) {
	s.malformed.Add(1)
	s.log.Log(slog.LevelWarn, "malformed", "syslog: malformed message", "err", err.Error(), "from", addrString(addr))
}

// allowed reports whether AllowFrom admits a.
func (s *Receiver) allowed(a net.Addr) bool {
	if len(s.allow) == 0 {
		return true
	}
	ip, ok := addrIP(a)
	if !ok {
		return false
	}
	for _, p := range s.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// addrIP returns the IP of a UDP or TCP address, IPv4-mapped addresses
// unmapped.
func addrIP(a net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	var ok bool
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, ok = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, ok = netip.AddrFromSlice(a.IP)
	}
	return ip.Unmap(), ok
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
