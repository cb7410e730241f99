//go:build linux

package lab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Lab is one app/vpn/db topology with its faults and servers. Create it with
// New; it is torn down by t.Cleanup. Its methods are safe for concurrent use.
type Lab struct {
	t     testing.TB
	tl    *tools
	token string

	app, vpn, db *namespace

	// Interface names: <side><peer>; each lives in its own namespace.
	ifAppVPN, ifVPNApp, ifVPNDB, ifDBVPN string

	appNet, dbNet              netip.Prefix // the two /30 links
	appAddr, vpnAppAddr        netip.Addr
	vpnDBAddr, dbAddr          netip.Addr
	workDir                    string
	created                    []string // namespaces created so far, for teardown
	setupTime, lastTeardownDur time.Duration

	faultMu sync.Mutex // serialises nft transactions; protects following fields
	faults  faultState
	windows []FaultWindow

	pathMu      sync.Mutex // serialises SetPath/ClearPath; protects following fields
	path        *pathProc  // the WAN emulator; nil: bare veths
	pathStopper bool       // ClearPath is registered with teardown

	mu        sync.Mutex // protects following fields
	closed    bool
	appConns  []net.Conn
	dbConns   []net.Conn
	listeners []net.Listener
	stoppers  []func() error // servers, stopped at teardown before the namespaces go
}

// New builds a fresh lab, or skips/fails t as Require does. Teardown is
// registered with t.Cleanup before anything is created, so a lab that fails
// halfway (or a test that panics) is still removed. New also sweeps labs
// left by dead processes.
func New(t testing.TB) *Lab {
	t.Helper()
	Require(t)
	tl, _ := lookupTools()
	if removed, err := Sweep(); err != nil {
		t.Logf("lab: stale sweep: %v", err)
	} else if len(removed) > 0 {
		t.Logf("lab: swept stale namespaces %s", strings.Join(removed, " "))
	}
	start := time.Now()
	tok := newToken()
	hex := tok[strings.IndexByte(tok, '-')+1:]
	// 10.<200..249>.<0..255>.0/30 app link, .4/30 db link.
	b, c := byte(200+rand.N(50)), byte(rand.N(256))
	l := &Lab{
		t: t, tl: tl, token: tok,
		ifAppVPN: "fg" + hex + "av", ifVPNApp: "fg" + hex + "va",
		ifVPNDB: "fg" + hex + "vd", ifDBVPN: "fg" + hex + "dv",
		appNet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b, c, 0}), 30),
		appAddr:    netip.AddrFrom4([4]byte{10, b, c, 1}),
		vpnAppAddr: netip.AddrFrom4([4]byte{10, b, c, 2}),
		dbNet:      netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b, c, 4}), 30),
		vpnDBAddr:  netip.AddrFrom4([4]byte{10, b, c, 5}),
		dbAddr:     netip.AddrFrom4([4]byte{10, b, c, 6}),
	}
	t.Cleanup(l.teardown)
	if err := l.setup(); err != nil {
		t.Fatalf("lab: setup: %v", err)
	}
	l.setupTime = time.Since(start)
	t.Logf("lab %s up in %v: app %s -> vpn %s|%s -> db %s", l.token, l.setupTime.Round(time.Millisecond),
		l.appAddr, l.vpnAppAddr, l.vpnDBAddr, l.dbAddr)
	return l
}

// AppAddr is the app namespace's address (the client address servers see).
func (l *Lab) AppAddr() netip.Addr { return l.appAddr }

// VPNAppAddr is the vpn namespace's address on the app link.
func (l *Lab) VPNAppAddr() netip.Addr { return l.vpnAppAddr }

// VPNDBAddr is the vpn namespace's address on the db link.
func (l *Lab) VPNDBAddr() netip.Addr { return l.vpnDBAddr }

// DBAddr is the db namespace's address, where servers listen.
func (l *Lab) DBAddr() netip.Addr { return l.dbAddr }

// AppNet and DBNet are the two links' prefixes.
func (l *Lab) AppNet() netip.Prefix { return l.appNet }

// DBNet is the db link's prefix.
func (l *Lab) DBNet() netip.Prefix { return l.dbNet }

// Namespaces returns the app, vpn and db namespace names (for
// `ip netns exec` by hand while debugging).
func (l *Lab) Namespaces() (app, vpn, db string) { return l.app.name, l.vpn.name, l.db.name }

// SetupTime is how long New took to build the topology.
func (l *Lab) SetupTime() time.Duration { return l.setupTime }

// owns reports whether ns is one of this lab's namespaces.
func (l *Lab) owns(ns string) bool {
	return ns == l.nsName("app") || ns == l.nsName("vpn") || ns == l.nsName("db")
}

func (l *Lab) nsName(role string) string { return nsPrefix + l.token + "-" + role }

// ipn runs `ip -n <ns> args...`.
func (l *Lab) ipn(ns string, args ...string) (string, error) {
	return runIP(l.owns, "", append([]string{l.tl.ip, "-n", ns}, args...)...)
}

// exec runs `ip netns exec <ns> argv...` with stdin.
func (l *Lab) exec(ns, stdin string, argv ...string) (string, error) {
	return runIP(l.owns, stdin, append([]string{l.tl.ip, "netns", "exec", ns}, argv...)...)
}

func (l *Lab) setup() error {
	self, err := procStart(os.Getpid())
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(workBase(), nsPrefix+l.token+"-")
	if err != nil {
		return err
	}
	l.workDir = dir
	// Traversable by the postgres user, whose data directory lives inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	if err := writeMarker(l.token, marker{PID: os.Getpid(), Start: self, WorkDir: dir}); err != nil {
		return err
	}
	for _, role := range []string{"app", "vpn", "db"} {
		name := l.nsName(role)
		if _, err := runIP(l.owns, "", l.tl.ip, "netns", "add", name); err != nil {
			return err
		}
		l.created = append(l.created, name)
		ns, err := openNamespace(name)
		if err != nil {
			return err
		}
		switch role {
		case "app":
			l.app = ns
		case "vpn":
			l.vpn = ns
		case "db":
			l.db = ns
		}
	}
	app, vpn, db := l.app.name, l.vpn.name, l.db.name
	// Both veth ends are created inside lab namespaces: not even for a
	// moment does an interface exist in the host namespace.
	steps := []struct {
		ns   string
		args []string
	}{
		{app, []string{"link", "add", l.ifAppVPN, "type", "veth", "peer", "name", l.ifVPNApp, "netns", vpn}},
		{vpn, []string{"link", "add", l.ifVPNDB, "type", "veth", "peer", "name", l.ifDBVPN, "netns", db}},
		{app, []string{"addr", "add", pfx(l.appAddr, 30), "dev", l.ifAppVPN}},
		{vpn, []string{"addr", "add", pfx(l.vpnAppAddr, 30), "dev", l.ifVPNApp}},
		{vpn, []string{"addr", "add", pfx(l.vpnDBAddr, 30), "dev", l.ifVPNDB}},
		{db, []string{"addr", "add", pfx(l.dbAddr, 30), "dev", l.ifDBVPN}},
		{app, []string{"link", "set", "lo", "up"}},
		{vpn, []string{"link", "set", "lo", "up"}},
		{db, []string{"link", "set", "lo", "up"}},
		{app, []string{"link", "set", l.ifAppVPN, "up"}},
		{vpn, []string{"link", "set", l.ifVPNApp, "up"}},
		{vpn, []string{"link", "set", l.ifVPNDB, "up"}},
		{db, []string{"link", "set", l.ifDBVPN, "up"}},
		// Only the peer link, no default route: nothing can leave the lab.
		{app, []string{"route", "add", l.dbNet.String(), "via", l.vpnAppAddr.String()}},
		{db, []string{"route", "add", l.appNet.String(), "via", l.vpnDBAddr.String()}},
	}
	for _, s := range steps {
		if _, err := l.ipn(s.ns, s.args...); err != nil {
			return err
		}
	}
	// net.ipv4.* sysctls are per network namespace, resolved from the
	// writing thread's namespace.
	if err := l.vpn.do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	}); err != nil {
		return fmt.Errorf("lab: ip_forward in vpn: %w", err)
	}
	return l.initFaults()
}

func pfx(a netip.Addr, bits int) string { return netip.PrefixFrom(a, bits).String() }

// teardown closes sockets, stops servers, kills leftovers and deletes the
// namespaces, work directory and marker. Errors fail the test.
func (l *Lab) teardown() {
	start := time.Now()
	l.mu.Lock()
	l.closed = true
	conns := append(append([]net.Conn(nil), l.appConns...), l.dbConns...)
	lns, stoppers := l.listeners, l.stoppers
	l.appConns, l.dbConns, l.listeners, l.stoppers = nil, nil, nil, nil
	l.mu.Unlock()

	var errs []error
	for _, c := range conns {
		c.Close()
	}
	for _, ln := range lns {
		ln.Close()
	}
	for i := len(stoppers) - 1; i >= 0; i-- {
		if err := stoppers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range l.created {
		if pids := killNamespace(l.tl, l.owns, ns); len(pids) > 0 {
			errs = append(errs, fmt.Errorf("lab: processes %v were still running in %s (killed)", pids, ns))
		}
	}
	for _, ns := range []*namespace{l.app, l.vpn, l.db} {
		if ns != nil {
			ns.close()
		}
	}
	for _, name := range l.created {
		if _, err := runIP(l.owns, "", l.tl.ip, "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	if l.workDir != "" {
		if err := os.RemoveAll(l.workDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(markerPath(l.token)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	l.lastTeardownDur = time.Since(start)
	l.t.Logf("lab %s torn down in %v", l.token, l.lastTeardownDur.Round(time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		l.t.Errorf("lab: teardown: %v", err)
	}
}

// addStopper registers a server's stop with teardown; it fails when the lab
// is already closed.
func (l *Lab) addStopper(stop func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.stoppers = append(l.stoppers, stop)
	return nil
}
