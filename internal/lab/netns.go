//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by dials and listens after the lab was torn down.
var ErrClosed = errors.New("lab: closed")

// namespace is one named network namespace held open by fd, so that entering
// it does not depend on the bind mount staying put.
type namespace struct {
	name string

	mu     sync.RWMutex // protects following fields; held (read) across setns
	f      *os.File
	closed bool
}

func openNamespace(name string) (*namespace, error) {
	f, err := os.Open(filepath.Join(netnsDir, name))
	if err != nil {
		return nil, fmt.Errorf("lab: open namespace: %w", err)
	}
	return &namespace{name: name, f: f}, nil
}

func (ns *namespace) close() {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if !ns.closed {
		ns.closed = true
		ns.f.Close()
	}
}

// do runs fn on a fresh OS thread that has entered ns, and waits for it.
//
// The goroutine locks its thread and never unlocks it: when it returns, the
// runtime terminates the thread instead of handing a thread that lives in a
// foreign namespace to other goroutines. Sockets fn creates stay in ns for
// their whole life, whichever goroutine later uses them.
func (ns *namespace) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns.mu.RLock()
		if ns.closed {
			ns.mu.RUnlock()
			errc <- ErrClosed
			return
		}
		err := unix.Setns(int(ns.f.Fd()), unix.CLONE_NEWNET)
		ns.mu.RUnlock()
		if err != nil {
			errc <- fmt.Errorf("lab: setns %s: %w", ns.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// DialFunc is the shape of net.Dialer.DialContext, pgconn.Config.DialFunc,
// mysql.Config.DialFunc and pool.Config.Dial.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// DialApp dials from the app namespace, through the vpn and its faults, with
// the semantics of a zero net.Dialer's DialContext (ctx deadline honoured,
// Go's default 15 s keepalive). It returns the *net.TCPConn itself, so
// drivers that type-assert it (go-sql-driver/mysql connector.go:115 enables
// keepalive that way) see what they would see without the lab. Every conn is
// recorded for CloseAppConns.
//
// addr must be an IP literal with a port: there is no DNS inside the lab.
func (l *Lab) DialApp(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.dial(ctx, l.app, &net.Dialer{}, network, addr, &l.appConns)
}

// AppDialer returns a DialApp that uses a copy of d, to mimic a driver's own
// dialer (KeepAlive, KeepAliveConfig, Timeout, Control...). LocalAddr, if
// set, must be an app-namespace address.
func (l *Lab) AppDialer(d *net.Dialer) DialFunc {
	dc := *d
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.dial(ctx, l.app, &dc, network, addr, &l.appConns)
	}
}

// DialDB dials from inside the db namespace: it never crosses the vpn, so
// faults do not touch it. Meant for admin connections (counting or killing
// sessions). Conns are closed at teardown.
func (l *Lab) DialDB(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.dial(ctx, l.db, &net.Dialer{}, network, addr, &l.dbConns)
}

// ListenDB listens inside the db namespace, e.g. ListenDB("tcp",
// l.DBAddr().String()+":0"). The listener is closed at teardown.
func (l *Lab) ListenDB(network, addr string) (net.Listener, error) {
	if err := checkNetwork(network, addr); err != nil {
		return nil, err
	}
	var ln net.Listener
	err := l.db.do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		ln.Close()
		return nil, ErrClosed
	}
	l.listeners = append(l.listeners, ln)
	return ln, nil
}

// CloseAppConns closes every conn DialApp and AppDialer have made so far and
// returns how many it closed. Goroutines stuck reading a blackholed socket
// return at once. Closing an already-closed conn is harmless.
func (l *Lab) CloseAppConns() int {
	l.mu.Lock()
	conns := l.appConns
	l.appConns = nil
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

// AppConns returns how many conns DialApp has made since the last
// CloseAppConns.
func (l *Lab) AppConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.appConns)
}

func (l *Lab) dial(ctx context.Context, ns *namespace, d *net.Dialer, network, addr string, track *[]net.Conn) (net.Conn, error) {
	if err := checkNetwork(network, addr); err != nil {
		return nil, err
	}
	var c net.Conn
	err := ns.do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		// Unwrapped, exactly as net.Dialer returns it: drivers inspect it.
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, ErrClosed
	}
	*track = append(*track, c)
	return c, nil
}

// checkNetwork refuses what would escape the namespace or need DNS: unix
// sockets live in the file system, not the network namespace, and host
// names would be resolved with the host's resolver.
func checkNetwork(network, addr string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("lab: network %q: only tcp and udp exist inside the lab", network)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("lab: address %q: %w", addr, err)
	}
	if host == "" {
		return nil // listen on all addresses of the namespace
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("lab: address %q: host must be an IP literal (no DNS inside the lab)", addr)
	}
	return nil
}
