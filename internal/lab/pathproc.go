//go:build linux

package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The emulator's routing in the vpn namespace: packets arriving from either
// veth are looked up in pathTable, whose only route leads into the TUN
// device; what the emulator writes back into the TUN arrives with the TUN as
// its input interface, matches no rule and takes the main table to its veth.
const (
	pathTable    = "7"
	pathRulePref = 1000 // and 1001: after "local", before "main"
	// pathReplyTimeout bounds every answer the helper owes the lab.
	pathReplyTimeout = 10 * time.Second
)

// pathCmd is one line the lab writes to the helper's stdin: new settings,
// or (Stats) a request for the counters.
type pathCmd struct {
	ToDB  PathSpec `json:"to_db"`
	ToApp PathSpec `json:"to_app"`
	Seed  uint64   `json:"seed"`
	Stats bool     `json:"stats,omitempty"`
}

// pathReply is one line the helper writes to its stdout: first when its
// TUN is open (Ready), then one per command.
type pathReply struct {
	Ready bool         `json:"ready,omitempty"`
	Sched string       `json:"sched,omitempty"`
	Err   string       `json:"err,omitempty"`
	ToDB  PathCounters `json:"to_db"`
	ToApp PathCounters `json:"to_app"`
	Other uint64       `json:"other"`
	Seed  uint64       `json:"seed"`
}

// pathHelperArgs is what the helper learns from its environment.
type pathHelperArgs struct {
	Tun    string `json:"tun"`
	AppNet string `json:"app_net"`
	DBNet  string `json:"db_net"`
}

// pathProc is the lab's handle on a running emulator process.
type pathProc struct {
	p     *process
	tun   string
	sched string
	in    *os.File // the helper's stdin; closing it asks it to drain and exit
	outF  *os.File
	out   *bufio.Reader
	rules [][]string // ip rule arguments added, for removal
}

// do sends one command and reads its answer.
func (pp *pathProc) do(c pathCmd) (pathReply, error) {
	b, _ := json.Marshal(c)
	if _, err := pp.in.Write(append(b, '\n')); err != nil {
		return pathReply{}, fmt.Errorf("lab: path emulator: %w: %s", err, pp.p.logTail())
	}
	return pp.read()
}

func (pp *pathProc) read() (pathReply, error) {
	var r pathReply
	pp.outF.SetReadDeadline(time.Now().Add(pathReplyTimeout))
	line, err := pp.out.ReadBytes('\n')
	if err != nil {
		return r, fmt.Errorf("lab: path emulator did not answer: %w: %s", err, pp.p.logTail())
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("lab: path emulator said %q: %w", line, err)
	}
	if r.Err != "" {
		return r, fmt.Errorf("lab: path emulator: %s", r.Err)
	}
	return r, nil
}

// startPathLocked starts the helper, sends it c, then routes the path
// through it. On error nothing is left behind.
func (l *Lab) startPathLocked(c pathCmd) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lab: path emulator: %w", err)
	}
	tun := strings.TrimSuffix(l.ifVPNApp, "va") + "tn"
	args, _ := json.Marshal(pathHelperArgs{Tun: tun, AppNet: l.appNet.String(), DBNet: l.dbNet.String()})
	// The helper is this very binary, re-executed inside the vpn namespace
	// (see emulate.go for why not a goroutine); checkArgv confines it like
	// every other command.
	argv := []string{l.tl.ip, "netns", "exec", l.vpn.name, exe}
	if err := checkArgv(argv, l.owns); err != nil {
		return err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout = inR, outW
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C", envPathHelper + "=" + string(args),
		// A -race binary sleeps 1s at exit by default; the helper has no
		// goroutine whose report that would wait for.
		"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
	p, err := startCmd("path emulator", cmd, filepath.Join(l.workDir, "path.log"))
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return err
	}
	pp := &pathProc{p: p, tun: tun, in: inW, outF: outR, out: bufio.NewReader(outR)}
	l.path = pp
	defer func() {
		if err != nil {
			err = errors.Join(err, l.clearPathLocked())
		}
	}()
	r, err := pp.read()
	if err != nil {
		return err
	}
	if !r.Ready {
		return fmt.Errorf("lab: path emulator: first line is not ready: %+v", r)
	}
	pp.sched = r.Sched
	if _, err := pp.do(c); err != nil {
		return err
	}
	return l.routePathLocked(pp)
}

// routePathLocked brings the TUN up and sends both veths' traffic into it.
func (l *Lab) routePathLocked(pp *pathProc) error {
	if err := l.vpn.do(func() error {
		// The emulator hands packets back with their original source: the
		// reverse-path filter would see them arrive on the "wrong" device.
		for _, f := range []string{"all", pp.tun} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+f+"/rp_filter", []byte("0\n"), 0o644); err != nil {
				return err
			}
		}
		// Best effort: no IPv6 chatter (router solicitations) into the TUN.
		os.WriteFile("/proc/sys/net/ipv6/conf/"+pp.tun+"/disable_ipv6", []byte("1\n"), 0o644)
		return nil
	}); err != nil {
		return fmt.Errorf("lab: path sysctls: %w", err)
	}
	if _, err := l.ipn(l.vpn.name, "link", "set", "dev", pp.tun, "up"); err != nil {
		return err
	}
	if _, err := l.ipn(l.vpn.name, "route", "add", "default", "dev", pp.tun, "table", pathTable); err != nil {
		return err
	}
	for i, iif := range []string{l.ifVPNApp, l.ifVPNDB} {
		rule := []string{"iif", iif, "lookup", pathTable, "pref", fmt.Sprint(pathRulePref + i)}
		if _, err := l.ipn(l.vpn.name, append([]string{"rule", "add"}, rule...)...); err != nil {
			return err
		}
		pp.rules = append(pp.rules, rule)
	}
	return nil
}

// clearPathLocked unroutes the path first (no new packet enters the TUN),
// then lets the helper drain and exit, and reaps it.
func (l *Lab) clearPathLocked() error {
	pp := l.path
	if pp == nil {
		return nil
	}
	l.path = nil
	var errs []error
	for _, rule := range pp.rules {
		if _, err := l.ipn(l.vpn.name, append([]string{"rule", "del"}, rule...)...); err != nil {
			errs = append(errs, err)
		}
	}
	pp.in.Close()
	// Draining takes at most the longest delay the helper holds a packet.
	select {
	case <-pp.p.done:
	case <-time.After(MaxPathDelay + 2*time.Second):
		errs = append(errs, pp.p.stop(syscall.SIGTERM, time.Second))
	}
	pp.outF.Close()
	if pp.p.waitErr != nil {
		errs = append(errs, fmt.Errorf("lab: path emulator exited: %v: %s", pp.p.waitErr, pp.p.logTail()))
	}
	return errors.Join(errs...)
}
