package syslogfeed

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func serveTCP(t *testing.T, s *Receiver) (string, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeTCP(ln) }()
	return ln.Addr().String(), done
}

func TestSyslogTCPFramings(t *testing.T) {
	noLeaks(t)
	events := make(chanNotifier, 256)
	s := newTestSyslog(t, Config{Notifier: events, MaxLine: 200})
	addr, done := serveTCP(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg1 := "<189>*May 30 16:57:21.189: %LINEPROTO-5-UPDOWN: Line protocol on Interface Tunnel0, changed state to down"
	msg2 := "IP Tunnel[2] Up" // bare, newline-framed
	long := strings.Repeat("z", 300)
	msg3 := "<28>Aug  3 10:19:31 srx1 kmd[14162]: KMD_VPN_UP_ALARM_USER: VPN azure from 13.68.203.193 is up."
	// octet-counted, newline-framed, an over-long newline line, an
	// over-long octet-counted frame, then octet-counted again.
	stream := fmt.Sprintf("%d %s%s\n%s\n%d %s%d %s", len(msg1), msg1, msg2, long, len(long), long, len(msg3), msg3)
	if _, err := io.WriteString(c, stream); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"down Tunnel0", "up 2", "up azure"} {
		if got := outcome(recv(t, events), true, nil); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	waitFor(t, "5 received", func() bool { return s.Stats().Received == 5 })
	if st := s.Stats(); st.Dropped != 2 || st.Events != 3 {
		t.Errorf("stats = %+v, want 2 dropped (two long frames), 3 events", st)
	}
	// A bad octet count loses framing: the connection is closed.
	io.WriteString(c, "123456789012 x")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection stayed open after a bad frame length")
	}
	if st := s.Stats(); st.Malformed != 1 {
		t.Errorf("malformed = %d, want 1", st.Malformed)
	}
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("ServeTCP returned %v", err)
	}
}

// Over MaxConns, the new connection is served and the one idle longest
// closed; a connection without messages is closed after IdleTimeout and
// its slot is free again.
func TestSyslogMaxConnsAndIdleTimeout(t *testing.T) {
	noLeaks(t)
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules, MaxConns: 1, IdleTimeout: 200 * time.Millisecond})
	addr, _ := serveTCP(t, s)
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	io.WriteString(a, "IP Tunnel[1] Up\n")
	recv(t, events) // a is accepted and being served
	b, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("older connection over MaxConns: read err = %v, want it closed by the server", err)
	}
	io.WriteString(b, "IP Tunnel[2] Up\n")
	if got := outcome(recv(t, events), true, nil); got != "up 2" {
		t.Errorf("newer connection: got %s", got)
	}
	if st := s.Stats(); st.Evicted != 1 || st.Dropped != 0 {
		t.Errorf("stats = %+v, want 1 evicted, none dropped", st)
	}
	// The idle connection b is closed by the server after IdleTimeout.
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("idle connection: read err = %v, want closed by server", err)
	}
	// Its slot is free again.
	waitFor(t, "slot freed", func() bool { return s.Stats().OpenConns == 0 })
	if st := s.Stats(); st.IdleClosed != 1 || st.Conns != 2 {
		t.Errorf("stats = %+v, want 1 closed idle of 2 admitted", st)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "IP Tunnel[3] Up\n")
	if got := outcome(recv(t, events), true, nil); got != "up 3" {
		t.Errorf("after slot freed: got %s", got)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
