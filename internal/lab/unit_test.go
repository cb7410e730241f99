//go:build linux

package lab

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests need no root: they pin down the logic the lab tests rely on.

func TestCheckArgvConfinesCommands(t *testing.T) {
	owns := func(ns string) bool { return ns == "fgl-1-abcd-vpn" }
	ok := [][]string{
		{"/usr/sbin/ip", "-n", "fgl-1-abcd-vpn", "route", "add", "10.0.0.0/30", "via", "10.0.0.1"},
		{"ip", "netns", "exec", "fgl-1-abcd-vpn", "nft", "-f", "-"},
		{"ip", "netns", "add", "fgl-1-abcd-vpn"},
		{"ip", "netns", "del", "fgl-1-abcd-vpn"},
		{"ip", "netns", "pids", "fgl-1-abcd-vpn"},
	}
	for _, argv := range ok {
		if err := checkArgv(argv, owns); err != nil {
			t.Errorf("checkArgv(%q) = %v, want nil", argv, err)
		}
	}
	bad := [][]string{
		{"nft", "-f", "-"}, // host namespace
		{"/usr/sbin/ip", "route", "add", "10.0.0.0/30"},        // host namespace
		{"ip", "-n", "other-ns", "route", "add", "x"},          // not ours
		{"ip", "netns", "exec", "other-ns", "nft", "-f", "-"},  // not ours
		{"ip", "netns", "exec", "fgl-1-abcd-vpn"},              // no command
		{"ip", "netns", "add", "fgl-1-abcd-vpn", "extra"},      // odd shape
		{"ip", "netns", "delete-all"},                          // odd shape
		{"ip", "-n", "fgl-1-abcd-vpn"},                         // no subcommand
		{"sh", "-c", "ip netns exec fgl-1-abcd-vpn nft flush"}, // not ip
		{"ip", "-all", "netns", "exec", "nft", "flush", "ruleset"},
	}
	for _, argv := range bad {
		if err := checkArgv(argv, owns); !errors.Is(err, ErrOutsideLab) {
			t.Errorf("checkArgv(%q) = %v, want ErrOutsideLab", argv, err)
		}
	}
}

func TestRunIPRefusesBeforeRunning(t *testing.T) {
	// A refused command must not run at all: "false" would fail differently.
	_, err := runIP(func(string) bool { return false }, "", "ip", "netns", "add", "fgl-1-abcd-app")
	if !errors.Is(err, ErrOutsideLab) {
		t.Fatalf("runIP = %v, want ErrOutsideLab", err)
	}
}

func TestRequireVerdict(t *testing.T) {
	cause := errors.New("lab: unavailable: nft not found")
	if fatal, msg := requireVerdict(cause, "require"); !fatal || !strings.Contains(msg, "nft not found") {
		t.Errorf("require: fatal=%v msg=%q", fatal, msg)
	}
	for _, env := range []string{"", "1", "skip"} {
		if fatal, msg := requireVerdict(cause, env); fatal || strings.Contains(msg, "\n") {
			t.Errorf("env %q: fatal=%v msg=%q, want a one-line skip", env, fatal, msg)
		}
	}
}

func TestParseSS(t *testing.T) {
	app := netip.MustParsePrefix("10.201.7.0/30")
	db := netip.MustParsePrefix("10.201.7.4/30")
	out := `LISTEN 0      4096      10.201.7.6:5432       0.0.0.0:*
ESTAB  0      0         10.201.7.1:41000      10.201.7.6:5432
ESTAB  0      0         10.201.7.6:3306       10.201.7.1:41002
FIN-WAIT-1 0  1         10.201.7.1:41004      10.201.7.6:5432
ESTAB  0      0         10.201.7.6:5432       10.201.7.6:41010
ESTAB  0      0         [::ffff:10.201.7.6]:5432 [::ffff:10.201.7.1]:41006
ESTAB  0      0         [::1]:5432            [::1]:41008
`
	got, err := parseSS(out, app, db)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"10.201.7.1:41000<->10.201.7.6:5432",
		"10.201.7.1:41002<->10.201.7.6:3306",
		"10.201.7.1:41004<->10.201.7.6:5432",
		"10.201.7.1:41006<->10.201.7.6:5432",
	}
	if len(got) != len(want) {
		t.Fatalf("parseSS = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("flow %d = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := parseSS("ESTAB 0\n", app, db); err == nil {
		t.Error("parseSS accepted a truncated line")
	}
	merged := mergeFlows(got[:2], got)
	if len(merged) != len(got) {
		t.Errorf("mergeFlows kept duplicates: %v", merged)
	}
}

func TestRulesetOrderAndElements(t *testing.T) {
	l := &Lab{ifVPNApp: "fgabcdva", ifVPNDB: "fgabcdvd"}
	f := Flow{netip.MustParseAddrPort("10.201.7.1:41000"), netip.MustParseAddrPort("10.201.7.6:5432")}
	s := l.ruleset(faultState{blackhole: true, reset: true, asym: DBToApp, dead: []Flow{f}}, addElements([]Flow{f}))
	lines := strings.Split(strings.TrimSpace(s), "\n")
	want := []string{
		"add element inet fglab dead { 10.201.7.1 . 41000 . 10.201.7.6 . 5432 }",
		"flush chain inet fglab faults",
		"add rule inet fglab faults ip saddr . tcp sport . ip daddr . tcp dport @dead drop",
		"add rule inet fglab faults ip daddr . tcp dport . ip saddr . tcp sport @dead drop",
		"add rule inet fglab faults drop",
		`add rule inet fglab faults iifname "fgabcdvd" drop`,
		"add rule inet fglab faults meta l4proto tcp reject with tcp reset",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("ruleset:\n%s\nwant:\n%s", s, strings.Join(want, "\n"))
	}
	// With no dead flows the set is flushed, so ReviveFlows really revives.
	if s := l.ruleset(faultState{}, ""); !strings.HasPrefix(s, "flush set inet fglab dead\n") {
		t.Errorf("empty state does not flush the dead set:\n%s", s)
	}
}

func TestCheckNetwork(t *testing.T) {
	for _, c := range []struct {
		network, addr string
		ok            bool
	}{
		{"tcp", "10.1.2.3:5432", true},
		{"tcp4", ":0", true},
		{"unix", "/tmp/sock", false},
		{"tcp", "db.example:5432", false},
		{"tcp", "10.1.2.3", false},
	} {
		if err := checkNetwork(c.network, c.addr); (err == nil) != c.ok {
			t.Errorf("checkNetwork(%q, %q) = %v, want ok=%v", c.network, c.addr, err, c.ok)
		}
	}
}

func TestIsLabWorkDir(t *testing.T) {
	for _, base := range []string{os.TempDir(), shmDir, workBase()} {
		if !isLabWorkDir(filepath.Join(base, "fgl-123-abcd-999")) {
			t.Errorf("lab work dir under %s not recognised", base)
		}
	}
	for _, d := range []string{"/", "/tmp", "/etc/fgl-1", "/tmp/other", "/tmp/fgl-1/../../etc", "/dev/shm/x/fgl-1"} {
		if isLabWorkDir(d) {
			t.Errorf("isLabWorkDir(%q) = true", d)
		}
	}
}
