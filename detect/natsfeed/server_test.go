package natsfeed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// natsServer is a real nats-server process on 127.0.0.1, started from the
// binary on PATH (Debian: apt-get install nats-server; CI installs it).
// It replaces an in-process server so that the library module does not
// require github.com/nats-io/nats-server/v2: every user's module graph
// would carry it (and its dependencies) for the sake of these tests.
type natsServer struct {
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// natsServerBinary finds nats-server on PATH or in /usr/sbin (where Debian
// puts it, and which a non-root PATH often lacks).
func natsServerBinary() (string, error) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server", nil
	}
	return "", errors.New("nats-server not found on PATH or in /usr/sbin")
}

// mustRun: CI (CI=true) and the project's full run (FLAPGUARD_LAB=require)
// fail without nats-server; elsewhere the test is skipped.
func mustRun() bool {
	return os.Getenv("FLAPGUARD_LAB") == "require" || os.Getenv("CI") == "true"
}

// startServer starts nats-server on 127.0.0.1:port (port -1 = a free
// port), waits until it accepts connections and stops it at the end of
// the test. Without the binary the test is skipped (failed under CI).
func startServer(t testing.TB, port int) *natsServer {
	t.Helper()
	return startServerWith(t, port)
}

// startServerWith is startServer with more nats-server flags (--auth).
func startServerWith(t testing.TB, port int, flags ...string) *natsServer {
	t.Helper()
	bin, err := natsServerBinary()
	if err != nil {
		if mustRun() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if port < 0 {
		if port, err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	s := &natsServer{port: port, done: make(chan struct{})}
	// No config file, no JetStream, no store: a plain core NATS server.
	s.cmd = exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "0"}, flags...)...)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Shutdown)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("nats-server on port %d exited: %v", port, s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			s.Shutdown()
			t.Fatalf("nats-server not ready on port %d within 10s: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *natsServer) ClientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

func (s *natsServer) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.port} }

// Shutdown stops the server and waits for it to exit; it may be called
// more than once.
func (s *natsServer) Shutdown() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
}

// WaitForShutdown waits until the process has exited.
func (s *natsServer) WaitForShutdown() { <-s.done }
