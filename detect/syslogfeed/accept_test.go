package syslogfeed

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect/internal/feedtest"
)

// flakyListener returns errs from Accept, one per call, before handing
// over to the real listener.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// ServeTCP returned on EMFILE (its comment said it retried, but EMFILE is
// not a timeout): out of file descriptors for a moment, the receiver died
// for good. Temporary accept errors are now survived with net/http's
// backoff, counted, and logged once per burst.
func TestServeTCPSurvivesTemporaryAcceptErrors(t *testing.T) {
	noLeaks(t)
	logger, logs := feedtest.NewLogger()
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules, Logger: logger, Now: time.Now})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln, errs: []error{
		acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.ECONNABORTED),
		acceptErr(syscall.ENOBUFS), acceptErr(syscall.ENOMEM),
	}}
	done := make(chan error, 1)
	go func() { done <- s.ServeTCP(fl) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "IP Tunnel[1] Down\n")
	select {
	case ev := <-events:
		if ev.Tunnel != "1" {
			t.Errorf("event %+v", ev)
		}
	case err := <-done:
		t.Fatalf("ServeTCP returned %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the accept errors")
	}
	if st := s.Stats(); st.AcceptErrors != 5 {
		t.Errorf("AcceptErrors = %d, want 5", st.AcceptErrors)
	}
	n := 0
	for _, l := range logs.Lines() {
		if strings.Contains(l, "accept") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d log lines about accept errors for one burst, want 1: %q", n, logs.Lines())
	}
	// A permanent error still ends ServeTCP.
	s2 := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules})
	boom := errors.New("listener broken")
	if err := s2.ServeTCP(&flakyListener{Listener: ln, errs: []error{boom}}); !errors.Is(err, boom) {
		t.Errorf("permanent error: ServeTCP = %v, want it returned", err)
	}
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// Close does not wait for a backoff to run out.
func TestCloseInterruptsAcceptBackoff(t *testing.T) {
	noLeaks(t)
	s := newTestSyslog(t, Config{Notifier: make(chanNotifier, 1), Rules: YamahaRTX().Rules})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 64) // long enough to reach the 1 s cap
	for i := range errs {
		errs[i] = acceptErr(syscall.EMFILE)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeTCP(&flakyListener{Listener: ln, errs: errs}) }()
	waitFor(t, "backing off", func() bool { return s.Stats().AcceptErrors >= 9 }) // 5 ms doubling: ≥ 1 s of backoff ahead
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(900 * time.Millisecond): // a bound on a wait, not a speed goal
		t.Fatal("Close waited for the accept backoff")
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("ServeTCP = %v, want ErrClosed", err)
	}
}
