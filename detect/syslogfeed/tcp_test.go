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
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("second connection over MaxConns: read err = %v, want it closed by the server", err)
	}
	if st := s.Stats(); st.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", st.Dropped)
	}
	// The idle connection a is closed by the server after IdleTimeout.
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("idle connection: read err = %v, want closed by server", err)
	}
	// Its slot is free again.
	waitFor(t, "slot freed", func() bool { return len(s.connSem) == 0 })
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
