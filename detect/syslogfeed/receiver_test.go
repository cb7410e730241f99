package syslogfeed

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/flapguard/flapguard/internal/waitfor"
	"time"

	"github.com/flapguard/flapguard/detect"
	"go.uber.org/goleak"
)

// chanNotifier records events on a channel.
type chanNotifier chan detect.Event

func (c chanNotifier) Notify(ev detect.Event) { c <- ev }

func recv(t *testing.T, c chanNotifier) detect.Event {
	t.Helper()
	select {
	case ev := <-c:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return detect.Event{}
}

// waitFor polls cond (a bounded wait for another goroutine, not a timing
// assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.True(t, what, 5*time.Second, cond)
}

// noLeaks checks, after every later-registered cleanup (Close) ran, that
// the test left no goroutine behind.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

var fixedNow = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)

func newTestSyslog(t *testing.T, cfg Config) *Receiver {
	t.Helper()
	if cfg.Rules == nil {
		for _, p := range Packs() {
			cfg.Rules = append(cfg.Rules, p.Rules...)
		}
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func serveUDP(t *testing.T, s *Receiver) (net.Conn, chan error) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeUDP(pc) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, done
}

func TestSyslogUDPDeliversFixtureEvents(t *testing.T) {
	noLeaks(t)
	events := make(chanNotifier, 256)
	s := newTestSyslog(t, Config{Notifier: events, Rules: StrongSwan().Rules})
	c, done := serveUDP(t, s)

	lines := []string{
		"<30>May  7 12:13:03 gw charon: 09[IKE] CHILD_SA con2000{2} established with SPIs cf4973bf_i c1cbfdf2_o and TS 192.168.48.0/24|/0 === 10.42.42.0/24|/0",
		"<30>May  7 12:13:04 gw charon: 12[IKE] scheduling rekeying in 13867s",
		"<999>garbage",
		"<30>1 2026-05-07T12:21:01.003Z gw charon-systemd 2486 - [meta x=\"a]b\"] 07[IKE] <con2000|1> giving up after 5 retransmits",
	}
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	ev := recv(t, events)
	if ev.Tunnel != "con2000" || ev.State != detect.Up || !ev.At.Equal(fixedNow) || !strings.HasPrefix(ev.Source, "syslog:strongswan/child-up@127.0.0.1") {
		t.Errorf("first event = %+v", ev)
	}
	if ev = recv(t, events); ev.Tunnel != "con2000" || ev.State != detect.Down {
		t.Errorf("second event = %+v", ev)
	}
	waitFor(t, "4 received", func() bool { return s.Stats().Received == 4 })
	want := Stats{Received: 4, Events: 2, Ignored: 1, Malformed: 1}
	if got := s.Stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("ServeUDP returned %v, want ErrClosed", err)
	}
}

func TestSyslogSlowNotifierNeverBlocksUDPReads(t *testing.T) {
	noLeaks(t)
	gate := make(chan struct{})
	entered := make(chan struct{}, 64)
	var delivered sync.WaitGroup
	n := detect.NotifierFunc(func(detect.Event) { entered <- struct{}{}; <-gate; delivered.Done() })
	s := newTestSyslog(t, Config{Notifier: n, Rules: YamahaRTX().Rules, QueueLen: 2})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // runs before Close even if the test fails
	c, _ := serveUDP(t, s)
	const sent = 50
	for i := range sent {
		fmt.Fprintf(c, "IP Tunnel[%d] Down", i)
		// Pace on the receiver, not the clock: the kernel may drop UDP we
		// send faster than it reads, which is not what this test is about.
		waitFor(t, "datagram read", func() bool { return s.Stats().Received == uint64(i+1) })
		if i == 0 {
			// The first event must be stuck in Notify before the queue can
			// be counted on to fill: the delivery goroutine takes it out of
			// the queue in its own time.
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				t.Fatal("first event never reached the Notifier")
			}
		}
	}
	// Received is counted before a datagram is handled: wait until the
	// last one is queued or dropped, then look.
	waitFor(t, "every datagram handled", func() bool {
		st := s.Stats()
		return st.Events+uint64(len(s.queue))+st.Dropped == sent
	})
	st := s.Stats()
	// One event is stuck in Notify, two are queued; the rest were dropped
	// without stalling the read loop (it read all 50).
	if st.Received != sent || st.Dropped != sent-3 || st.Events != 1 {
		t.Errorf("stats = %+v, want received %d, dropped %d, 1 in delivery", st, sent, sent-3)
	}
	delivered.Add(3)
	release()
	delivered.Wait()
	s.Close()
	if st := s.Stats(); st.Events != 3 {
		t.Errorf("events after release = %d, want 3", st.Events)
	}
}

func TestSyslogOversizedDatagramDropped(t *testing.T) {
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules, MaxLine: 64})
	c, _ := serveUDP(t, s)
	c.Write([]byte(strings.Repeat(" ", 100) + "IP Tunnel[1] Down"))
	c.Write([]byte("IP Tunnel[1] Down\nIP Tunnel[2] Down\n")) // two lines in one datagram
	if got := outcome(recv(t, events), true, nil); got != "down 1" {
		t.Errorf("got %s", got)
	}
	if got := outcome(recv(t, events), true, nil); got != "down 2" {
		t.Errorf("got %s", got)
	}
	if st := s.Stats(); st.Dropped != 1 || st.Received != 3 {
		t.Errorf("stats = %+v, want 1 dropped of 3", st)
	}
}

func TestSyslogAllowFrom(t *testing.T) {
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules,
		AllowFrom: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	c, _ := serveUDP(t, s)
	c.Write([]byte("IP Tunnel[1] Down"))
	waitFor(t, "datagram read", func() bool { return s.Stats().Received == 1 })
	addr, _ := serveTCP(t, s)
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	io.WriteString(tc, "IP Tunnel[2] Down\n")
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("TCP from outside AllowFrom: read err = %v, want closed", err)
	}
	// The receiver counts the drop around closing the connection; wait for
	// it rather than race it.
	waitFor(t, "2 dropped", func() bool { return s.Stats().Dropped == 2 })
	if st := s.Stats(); st.Dropped != 2 || st.Events != 0 {
		t.Errorf("stats = %+v, want 2 dropped, no events", st)
	}
	// 127.0.0.0/8 admitted.
	s2 := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules,
		AllowFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	c2, _ := serveUDP(t, s2)
	c2.Write([]byte("IP Tunnel[3] Down"))
	if got := outcome(recv(t, events), true, nil); got != "down 3" {
		t.Errorf("allowed source: got %s", got)
	}
}

func TestSyslogCloseIsIdempotentAndServeAfterCloseFails(t *testing.T) {
	noLeaks(t)
	s := newTestSyslog(t, Config{Notifier: detect.NotifierFunc(func(detect.Event) {}), Rules: YamahaRTX().Rules})
	s.Close()
	s.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := s.ServeUDP(pc); !errors.Is(err, ErrClosed) {
		t.Errorf("ServeUDP after Close = %v", err)
	}
}

func TestNewConfigErrors(t *testing.T) {
	if _, err := New(Config{Rules: YamahaRTX().Rules}); err == nil || !strings.Contains(err.Error(), "Notifier") {
		t.Errorf("no notifier: %v", err)
	}
	if _, err := New(Config{Notifier: detect.NotifierFunc(func(detect.Event) {})}); err == nil || !strings.Contains(err.Error(), "Rules") {
		t.Errorf("no rules: %v", err)
	}
}
