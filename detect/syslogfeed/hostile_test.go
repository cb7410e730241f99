package syslogfeed

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// hostileCrowd keeps n connections per source address open to addr (from
// 127.0.0.2, 127.0.0.3, … on loopback) and opens a new one whenever the
// receiver closes one (churn). Each connection does what send does, if
// set, then waits for the close. It stops with the returned func.
func hostileCrowd(t *testing.T, addr string, sources, n int, send func(net.Conn, <-chan struct{})) (opened *atomic.Int64, stop func()) {
	t.Helper()
	opened = new(atomic.Int64)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	for s := range sources {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+s))}
		probe, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", addr)
		if err != nil {
			t.Skipf("cannot connect from %v on this system: %v", local.IP, err)
		}
		probe.Close()
		for range n {
			wg.Go(func() {
				d := net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}
				for {
					select {
					case <-quit:
						return
					default:
					}
					c, err := d.Dial("tcp", addr)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					opened.Add(1)
					mu.Lock()
					open[c] = true
					mu.Unlock()
					if send != nil {
						go send(c, quit)
					}
					waitClosed(c, quit)
					c.Close()
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					// Reopen at once, give or take: 10 ms keeps the crowd
					// from taking the shared machine's CPUs while it still
					// churns at up to 7200 connections a second.
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
	}
	return opened, func() {
		close(quit)
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// waitClosed returns when the receiver closed c, or quit is closed.
func waitClosed(c net.Conn, quit <-chan struct{}) {
	buf := make([]byte, 64)
	for {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := c.Read(buf)
		if err != nil && !isTimeout(err) {
			return
		}
		select {
		case <-quit:
			return
		default:
		}
	}
}

// routerDeliveries has a router (127.0.0.1) open rounds connections one
// after the other, each sending one Down frame, and returns how many of
// them became events.
func routerDeliveries(t *testing.T, s *Receiver, dial func() (net.Conn, error), rounds int) int {
	t.Helper()
	before := s.Stats().Events
	msg := "<189>1 2026-11-25T19:30:00Z rtx1210 - - - - IP Tunnel[1] Down"
	for range rounds {
		c, err := dial()
		if err != nil {
			continue
		}
		io.WriteString(c, itoaLen(msg)+msg)
		time.Sleep(20 * time.Millisecond) // a router's pace, and room for the crowd to churn
		c.Close()
	}
	want := before + uint64(rounds)
	deadline := time.Now().Add(2 * time.Second)
	for s.Stats().Events < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return int(s.Stats().Events - before)
}

// Issue 22 item 2: a TLS connection was admitted into the limit table
// before its handshake, and one that had delivered nothing was evicted
// first, so bare TCP connects (no certificate) evicted routers.
//
// First, a router that finished its handshake and has not sent yet, then
// 72 bare connects from 9 loopback addresses (MaxConns 64,
// MaxConnsPerSource 8): on main the router's connection was evicted and
// its Down, written without error, was lost (4 of 4 runs). Then 40
// router connections, one after the other, while the crowd reopens every
// connection the receiver closes (churn). Measured on main on this 2-core
// machine: 40 of 40 in 2 runs with this crowd (about 3000 connections in
// the 40 rounds, Evicted ~3000); 39 and 40 of 40 with a crowd that
// reopened without the 10 ms pause (18000 to 29000 connections). The
// issue measured 25 of 40 on its machine; this test's churn part did not
// reproduce that loss here, its first part does. Now a connection enters
// the table only after its handshake, handshakes are bounded per source
// (2) and in all (MaxConns, 5 s each): the router keeps its connection
// and delivers 40 of 40 (6 of 6 runs; no crowd connection admitted:
// Evicted 0).
func TestTLSRoutersDeliverUnderHostileConnects(t *testing.T) {
	noLeaks(t)
	pki := newTestPKI(t)
	events := make(chanNotifier, 256)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTCP(tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.caPool,
		MinVersion:   tls.VersionTLS12,
	}))
	addr := ln.Addr().String()
	dial := func() (net.Conn, error) {
		d := &net.Dialer{Timeout: 2 * time.Second}
		return tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.client}, ServerName: "127.0.0.1"})
	}
	msg := "<189>1 2026-11-25T19:30:00Z rtx1210 - - - - IP Tunnel[1] Down"

	router, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	waitFor(t, "the router's connection in the table", func() bool { return s.Stats().OpenConns == 1 })
	opened, stop := hostileCrowd(t, addr, 9, 8, nil)
	defer stop()
	waitFor(t, "the crowd connected", func() bool { return opened.Load() >= 72 })
	time.Sleep(200 * time.Millisecond) // for evictions, if any
	io.WriteString(router, itoaLen(msg)+msg)
	select {
	case <-events:
	case <-time.After(3 * time.Second):
		t.Errorf("the router's Down was lost after 72 bare connects; stats %+v", s.Stats())
	}

	got := routerDeliveries(t, s, dial, 40)
	t.Logf("router: %d of 40 delivered; crowd opened %d connections; stats %+v", got, opened.Load(), s.Stats())
	if got != 40 {
		t.Errorf("router delivered %d of 40 over TLS under 72 hostile connects", got)
	}
}

// Issue 22 item 2, plain TCP: 72 connections sending a junk line every
// 200 ms evicted a router that had delivered events and was then quiet
// (on main: its Up lost in 3 of 3 runs; the crowd opened about 2600
// connections in the test's 3.5 s, Evicted about 2550). Now a connection that delivered an event
// is evicted after every connection that did not.
func TestQuietRouterOutlastsJunkSenders(t *testing.T) {
	noLeaks(t)
	events := make(chanNotifier, 256)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTCP(ln)
	addr := ln.Addr().String()
	router, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	io.WriteString(router, "IP Tunnel[1] Down\n")
	recv(t, events)
	junk := func(c net.Conn, quit <-chan struct{}) {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := io.WriteString(c, "junk line\n"); err != nil {
				return
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}
	opened, stop := hostileCrowd(t, addr, 9, 8, junk)
	defer stop()
	waitFor(t, "the crowd connected", func() bool { return opened.Load() >= 100 })
	time.Sleep(500 * time.Millisecond) // a few junk lines from each
	if _, err := io.WriteString(router, "IP Tunnel[1] Up\n"); err != nil {
		t.Fatalf("router write: %v", err)
	}
	select {
	case ev := <-events:
		if ev.State.String() != "up" {
			t.Errorf("got %+v", ev)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("the quiet router's Up was lost (evicted); crowd opened %d connections, stats %+v", opened.Load(), s.Stats())
	}
}

type refuser struct{ asked atomic.Int64 }

func (r *refuser) Notify(detect.Event) {}
func (r *refuser) Accept(detect.Event) error {
	r.asked.Add(1)
	return fmt.Errorf("%w: not one of this pool's tunnels", detect.ErrIgnored)
}

// Issue 22 item 4: on main every event handed to the Notifier counted in
// Stats.Events, also those a *pool.Pool dropped. Now the receiver's
// verdict is asked (detect.Accept) and a refusal counted as Refused.
func TestRefusedEventsAreCountedAsRefused(t *testing.T) {
	noLeaks(t)
	r := &refuser{}
	s := newTestSyslog(t, Config{Notifier: r, Rules: YamahaRTX().Rules})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTCP(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "IP Tunnel[1] Down\nIP Tunnel[1] Up\n")
	waitFor(t, "both refused", func() bool { return s.Stats().Refused == 2 })
	if st := s.Stats(); st.Events != 0 || r.asked.Load() != 2 {
		t.Errorf("stats %+v, asked %d: want 0 events, 2 asked", st, r.asked.Load())
	}
}

type nilPool struct{}

func (*nilPool) Notify(detect.Event) {}

// A (*pool.Pool)(nil) as the Notifier was accepted and would panic on the
// first event.
func TestNewRefusesTypedNilNotifier(t *testing.T) {
	var p *nilPool
	if _, err := New(Config{Notifier: p, Rules: YamahaRTX().Rules}); err == nil || !strings.Contains(err.Error(), "Notifier is nil") {
		t.Fatalf("typed nil: %v", err)
	}
}
