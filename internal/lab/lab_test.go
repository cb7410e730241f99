//go:build linux

package lab

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostState is what the lab must never change in the host namespace.
func hostState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range [][]string{
		{"nft", "list", "ruleset"},
		{"ip", "-4", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"ip", "-o", "link", "show"},
		{"ip", "-4", "-o", "addr", "show"},
	} {
		tl, _ := lookupTools()
		bin := tl.ip
		if argv[0] == "nft" {
			bin = tl.nft
		}
		out, err := exec.Command(bin, argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v: %s", argv, err, out)
		}
		b.WriteString(strings.Join(argv, " ") + "\n" + string(out))
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString("ip_forward " + string(fwd))
	return b.String()
}

// echoServer listens in the db namespace and echoes lines; every chunk it
// receives is also sent on got (non-blocking), so tests can see what crossed.
func echoServer(t *testing.T, l *Lab) (addr string, got chan string) {
	t.Helper()
	ln, err := l.ListenDB("tcp", netip.AddrPortFrom(l.DBAddr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	got = make(chan string, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					select {
					case got <- line:
					default:
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), got
}

// roundtrip writes msg and reads one line back within d.
func roundtrip(c net.Conn, msg string, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	return readLine(c, d)
}

func readLine(c net.Conn, d time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

func dialApp(t *testing.T, l *Lab, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := l.DialApp(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("DialApp %s: %v", addr, err)
	}
	return c
}

func TestTopology(t *testing.T) {
	Require(t)
	before := hostState(t)
	var names []string
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		app, vpn, db := l.Namespaces()
		names = []string{app, vpn, db}
		for _, ns := range names {
			if _, err := os.Stat(netnsDir + "/" + ns); err != nil {
				t.Errorf("namespace %s missing: %v", ns, err)
			}
		}
		if !l.AppNet().Contains(l.AppAddr()) || !l.AppNet().Contains(l.VPNAppAddr()) ||
			!l.DBNet().Contains(l.DBAddr()) || !l.DBNet().Contains(l.VPNDBAddr()) || l.AppNet().Overlaps(l.DBNet()) {
			t.Fatalf("bad addressing: app %s/%s db %s/%s", l.AppAddr(), l.AppNet(), l.DBAddr(), l.DBNet())
		}

		addr, got := echoServer(t, l)
		c := dialApp(t, l, addr)
		if line, err := roundtrip(c, "hello", 2*time.Second); err != nil || line != "hello" {
			t.Fatalf("roundtrip = %q, %v", line, err)
		}
		if line := <-got; line != "hello\n" {
			t.Fatalf("server got %q", line)
		}
		if local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); local != l.AppAddr() {
			t.Errorf("conn's local address %s, want the app address %s", local, l.AppAddr())
		}
		if _, ok := c.(*net.TCPConn); !ok {
			t.Errorf("DialApp returned %T, want *net.TCPConn", c)
		}
		// The app namespace has no route but the db link: the host's
		// networks are unreachable from it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if c2, err := l.DialApp(ctx, "tcp", "127.0.0.1:5432"); err == nil {
			c2.Close()
			t.Error("app namespace reached 127.0.0.1:5432: the shared PostgreSQL is not isolated")
		}
		if _, err := l.DialApp(ctx, "unix", "/run/postgresql/.s.PGSQL.5432"); err == nil {
			t.Error("DialApp allowed a unix socket, which would escape the namespace")
		}

		// Every fault at once, then the host must look exactly the same.
		if err := l.Blackhole(); err != nil {
			t.Fatal(err)
		}
		if err := l.Reset(true); err != nil {
			t.Fatal(err)
		}
		if err := l.Asymmetric(DBToApp); err != nil {
			t.Fatal(err)
		}
		if _, err := l.BeginRekey(); err != nil {
			t.Fatal(err)
		}
		if during := hostState(t); during != before {
			t.Errorf("host namespace changed while faults were active:\nbefore:\n%s\nduring:\n%s", before, during)
		}
		if err := l.Restore(); err != nil {
			t.Fatal(err)
		}
		if n := l.CloseAppConns(); n != 1 {
			t.Errorf("CloseAppConns closed %d conns, want 1", n)
		}
	})
	if after := hostState(t); after != before {
		t.Errorf("host namespace changed by the lab:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, ns := range names {
		if _, err := os.Stat(netnsDir + "/" + ns); err == nil {
			t.Errorf("namespace %s left behind", ns)
		}
	}
}

func TestSweepRemovesDeadOwnersOnly(t *testing.T) {
	Require(t)
	tl, _ := lookupTools()
	// A pid that surely is dead: a child we already reaped.
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	dead := child.Process.Pid
	staleTok := strconv.Itoa(dead) + "-beef"
	stale := nsPrefix + staleTok + "-app"
	owns := func(ns string) bool { return ns == stale }
	if _, err := runIP(owns, "", tl.ip, "netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runIP(owns, "", tl.ip, "netns", "del", stale) })
	staleDir, err := os.MkdirTemp("", nsPrefix+staleTok+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(staleTok, marker{PID: dead, Start: 1, WorkDir: staleDir}); err != nil {
		t.Fatal(err)
	}

	live := New(t) // sweeps, and is a live lab the sweep must spare
	if _, err := os.Stat(netnsDir + "/" + stale); err == nil {
		t.Errorf("stale namespace %s survived New's sweep", stale)
	}
	if _, err := os.Stat(staleDir); err == nil {
		t.Errorf("stale work dir %s survived", staleDir)
	}
	if _, err := os.Stat(markerPath(staleTok)); err == nil {
		t.Errorf("stale marker survived")
	}
	if _, err := Sweep(); err != nil {
		t.Fatal(err)
	}
	app, _, _ := live.Namespaces()
	if _, err := os.Stat(netnsDir + "/" + app); err != nil {
		t.Errorf("Sweep removed the live lab's namespace: %v", err)
	}
	if _, err := os.Stat(markerPath(live.token)); err != nil {
		t.Errorf("Sweep removed the live lab's marker: %v", err)
	}
}
