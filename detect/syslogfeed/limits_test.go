package syslogfeed

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address src (127.0.0.0/8 is
// all this machine's), so one test can play several senders.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c (a read ends with
// EOF or a reset, not the 5 s bound).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

// 64 connections that each send a bare newline now and then held every
// slot (the idle timer restarted on every frame, even an empty one), and
// the 65th connection, a real router, was refused. Now the router is
// served and the connection idle longest makes room.
func TestIdleConnectionsCannotLockOutARouter(t *testing.T) {
	noLeaks(t)
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules})
	addr, _ := serveTCP(t, s)
	var idle []net.Conn
	for i := range defaultMaxConns { // 8 addresses × 8: within the per-source limit
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", 1+i/defaultPerSource), addr)
		io.WriteString(c, "\n")
		idle = append(idle, c)
	}
	waitFor(t, "64 connections open", func() bool { return s.Stats().OpenConns == defaultMaxConns })
	for _, c := range idle {
		io.WriteString(c, "\n\r\n") // "now and then"
	}
	router := dialFrom(t, "127.0.2.1", addr)
	io.WriteString(router, "<189>2018/10/29 17:32:55: IP Tunnel[1] Down\n")
	if got := outcome(recv(t, events), true, nil); got != "down 1" {
		t.Errorf("router's event: %s", got)
	}
	if !closedByServer(idle[0]) {
		t.Error("the connection idle longest is still open")
	}
	if st := s.Stats(); st.Evicted != 1 || st.OpenConns != defaultMaxConns || st.Received != 1 {
		t.Errorf("stats = %+v, want 1 evicted, %d open, 1 message (bare newlines are none)", st, defaultMaxConns)
	}
}

// A connection that delivers no complete message is closed after
// IdleTimeout whatever it sends: bare newlines, a line a byte at a time.
func TestNoMessageMeansIdleWhateverIsSent(t *testing.T) {
	noLeaks(t)
	s := newTestSyslog(t, Config{Notifier: make(chanNotifier, 1), Rules: YamahaRTX().Rules, IdleTimeout: 300 * time.Millisecond})
	addr, _ := serveTCP(t, s)
	for _, dribble := range []string{"\n", "\r\n", "I"} { // the last never ends its line
		c := dialFrom(t, "127.0.0.1", addr)
		stop := make(chan struct{})
		go func() {
			tick := time.NewTicker(20 * time.Millisecond) // the sender's pace, not an assertion
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := io.WriteString(c, dribble); err != nil {
						return
					}
				}
			}
		}()
		closed := closedByServer(c)
		close(stop)
		if !closed {
			t.Errorf("dribbling %q: the connection stayed open", dribble)
		}
	}
	waitFor(t, "3 closed idle", func() bool { return s.Stats().IdleClosed == 3 })
	if st := s.Stats(); st.Received != 0 || st.OpenConns != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// A source at MaxConnsPerSource evicts its own idlest connection; other
// sources' connections are untouched.
func TestPerSourceLimit(t *testing.T) {
	noLeaks(t)
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules, MaxConnsPerSource: 2})
	addr, _ := serveTCP(t, s)
	other := dialFrom(t, "127.0.3.1", addr)
	io.WriteString(other, "IP Tunnel[9] Up\n")
	recv(t, events)
	a1 := dialFrom(t, "127.0.3.2", addr)
	a2 := dialFrom(t, "127.0.3.2", addr)
	waitFor(t, "3 open", func() bool { return s.Stats().OpenConns == 3 })
	a3 := dialFrom(t, "127.0.3.2", addr)
	if !closedByServer(a1) {
		t.Error("the source's oldest idle connection is still open")
	}
	io.WriteString(a2, "IP Tunnel[2] Up\n")
	io.WriteString(a3, "IP Tunnel[3] Up\n")
	io.WriteString(other, "IP Tunnel[9] Down\n")
	got := map[string]bool{}
	for range 3 {
		got[outcome(recv(t, events), true, nil)] = true
	}
	if !got["up 2"] || !got["up 3"] || !got["down 9"] {
		t.Errorf("events %v: a2, a3 and the other source must be served", got)
	}
	if st := s.Stats(); st.Evicted != 1 || st.OpenConns != 3 {
		t.Errorf("stats = %+v, want 1 evicted, 3 open", st)
	}
}

// Connections that never delivered a message make room before one that
// did, even if it is older: a router's connection outlives a flood of new,
// silent ones.
func TestEvictionSparesConnectionsThatDelivered(t *testing.T) {
	noLeaks(t)
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules, MaxConns: 2, MaxConnsPerSource: -1})
	addr, _ := serveTCP(t, s)
	router := dialFrom(t, "127.0.4.1", addr)
	io.WriteString(router, "IP Tunnel[1] Up\n")
	recv(t, events)
	var silent []net.Conn
	for range 5 {
		c := dialFrom(t, "127.0.4.2", addr)
		silent = append(silent, c)
		waitFor(t, "admitted", func() bool { return s.Stats().Conns == uint64(1+len(silent)) })
	}
	for i, c := range silent[:4] {
		if !closedByServer(c) {
			t.Errorf("silent connection %d still open", i)
		}
	}
	io.WriteString(router, "IP Tunnel[1] Down\n")
	if got := outcome(recv(t, events), true, nil); got != "down 1" {
		t.Errorf("router after the flood: %s", got)
	}
	if st := s.Stats(); st.Evicted != 4 {
		t.Errorf("stats = %+v, want 4 evicted", st)
	}
}
