//go:build linux

package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// nsPrefix starts every namespace name a lab creates.
	nsPrefix = "fgl-"
	// netnsDir is where `ip netns` keeps its named namespaces.
	netnsDir = "/var/run/netns"
)

// markerDir holds one marker per live lab, naming its owner; a variable so
// tests of the sweep could point it elsewhere.
var markerDir = "/run/flapguard-lab"

// nsName matches a lab namespace: fgl-<owner pid>-<4 hex>-<role>.
var nsName = regexp.MustCompile(`^fgl-([0-9]+)-([0-9a-f]{4})-(app|vpn|db)$`)

// marker is written before a lab creates anything and removed after it has
// removed everything, so a lab without a live owner is garbage.
type marker struct {
	PID     int    `json:"pid"`
	Start   uint64 `json:"start"` // owner's start time in clock ticks since boot (guards pid reuse)
	WorkDir string `json:"workdir"`
}

// newToken names one lab: owner pid plus randomness for several labs per
// process.
func newToken() string {
	return fmt.Sprintf("%d-%04x", os.Getpid(), rand.N(1<<16))
}

func markerPath(token string) string { return filepath.Join(markerDir, token+".json") }

func writeMarker(token string, m marker) error {
	if err := os.MkdirAll(markerDir, 0o755); err != nil {
		return fmt.Errorf("lab: marker dir: %w", err)
	}
	b, _ := json.Marshal(m)
	return os.WriteFile(markerPath(token), b, 0o644)
}

func readMarker(token string) (marker, bool) {
	var m marker
	b, err := os.ReadFile(markerPath(token))
	if err != nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	return m, true
}

// procStart returns pid's start time (field 22 of /proc/<pid>/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: split after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("lab: malformed stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("lab: short stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// ownerAlive reports whether the process that owns token still runs.
func ownerAlive(token string) bool {
	if m, ok := readMarker(token); ok {
		start, err := procStart(m.PID)
		return err == nil && start == m.Start
	}
	// No marker: judge by the pid in the name alone.
	pid, err := strconv.Atoi(strings.SplitN(token, "-", 2)[0])
	if err != nil {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// Sweep removes labs whose owning process is gone: it kills what still runs
// in their namespaces (servers), deletes the namespaces (which deletes their
// veths), their work directories and markers. New calls it; it is exported
// for tools that want to clean up by hand. It returns what it removed.
func Sweep() ([]string, error) {
	tl, err := lookupTools()
	if err != nil {
		return nil, err
	}
	tokens := map[string][]string{} // token -> namespaces
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if m := nsName.FindStringSubmatch(e.Name()); m != nil {
				tok := m[1] + "-" + m[2]
				tokens[tok] = append(tokens[tok], e.Name())
			}
		}
	}
	if ents, err := os.ReadDir(markerDir); err == nil {
		for _, e := range ents {
			if tok, ok := strings.CutSuffix(e.Name(), ".json"); ok {
				if _, seen := tokens[tok]; !seen {
					tokens[tok] = nil
				}
			}
		}
	}
	isLabNS := func(ns string) bool { return nsName.MatchString(ns) }
	var removed []string
	var errs []error
	for tok, nss := range tokens {
		if ownerAlive(tok) {
			continue
		}
		for _, ns := range nss {
			killNamespace(tl, isLabNS, ns)
			if _, err := runIP(isLabNS, "", tl.ip, "netns", "del", ns); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, ns)
		}
		if m, ok := readMarker(tok); ok && isLabWorkDir(m.WorkDir) {
			os.RemoveAll(m.WorkDir)
		}
		os.Remove(markerPath(tok))
	}
	return removed, errors.Join(errs...)
}

// killNamespace SIGKILLs every process still inside ns.
func killNamespace(tl *tools, owns func(string) bool, ns string) []int {
	out, err := runIP(owns, "", tl.ip, "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
			pids = append(pids, pid)
		}
	}
	return pids
}

// shmDir is preferred for work directories: server data on tmpfs makes
// initdb and mariadb-install-db several times faster when other jobs load
// the disk (measured: mariadb-install-db 18 s on /tmp, 1.3 s on /dev/shm).
const shmDir = "/dev/shm"

// workBase returns where lab work directories go: shmDir if it is a tmpfs,
// else the temp dir.
func workBase() string {
	var st unix.Statfs_t
	if unix.Statfs(shmDir, &st) == nil && st.Type == unix.TMPFS_MAGIC && unix.Access(shmDir, unix.W_OK) == nil {
		return shmDir
	}
	return os.TempDir()
}

// isLabWorkDir guards RemoveAll against a marker naming some other path.
func isLabWorkDir(dir string) bool {
	clean := filepath.Clean(dir)
	parent := filepath.Dir(clean)
	return (parent == shmDir || parent == filepath.Clean(os.TempDir())) &&
		strings.HasPrefix(filepath.Base(clean), nsPrefix)
}
