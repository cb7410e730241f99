//go:build linux

package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
)

// EnvRequire is the environment variable that turns a missing prerequisite
// from a skip into a failure: FLAPGUARD_LAB=require (CI sets it).
const EnvRequire = "FLAPGUARD_LAB"

// ErrUnavailable is wrapped by every error Check returns.
var ErrUnavailable = errors.New("lab: unavailable")

// tools are the resolved paths of every binary the lab runs.
type tools struct {
	ip, nft, ss, setpriv string
	pgBin                string // directory holding postgres and initdb
	mariadbd, installDB  string
}

var (
	toolsOnce sync.Once
	toolsVal  *tools
	toolsErr  error
)

// Check reports the first missing prerequisite of the lab, or nil when the
// lab can run here. The result is computed once per process.
func Check() error {
	_, err := lookupTools()
	return err
}

func lookupTools() (*tools, error) {
	toolsOnce.Do(func() { toolsVal, toolsErr = findTools() })
	return toolsVal, toolsErr
}

// Require skips t when the lab cannot run here, with a one-line reason, or
// fails it when FLAPGUARD_LAB=require.
func Require(t testing.TB) {
	t.Helper()
	err := Check()
	if err == nil {
		return
	}
	fatal, msg := requireVerdict(err, os.Getenv(EnvRequire))
	if fatal {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireVerdict decides Require's outcome; split out so it is testable
// without a lab.
func requireVerdict(err error, env string) (fatal bool, msg string) {
	if env == "require" {
		return true, fmt.Sprintf("%v (%s=require)", err, EnvRequire)
	}
	return false, fmt.Sprintf("%v (set %s=require to fail instead of skip)", err, EnvRequire)
}

func findTools() (*tools, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("%w: needs Linux network namespaces, this is %s", ErrUnavailable, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root for ip netns and nft", ErrUnavailable)
	}
	var tl tools
	for _, b := range []struct {
		dst  *string
		name string
		pkg  string
	}{
		{&tl.ip, "ip", "iproute2"},
		{&tl.ss, "ss", "iproute2"},
		{&tl.nft, "nft", "nftables"},
		{&tl.setpriv, "setpriv", "util-linux"},
		{&tl.mariadbd, "mariadbd", "mariadb-server"},
		{&tl.installDB, "mariadb-install-db", "mariadb-server"},
	} {
		p, err := lookPath(b.name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s not found (apt-get install %s)", ErrUnavailable, b.name, b.pkg)
		}
		*b.dst = p
	}
	dir, err := postgresBin("/usr/lib/postgresql")
	if err != nil {
		return nil, fmt.Errorf("%w: %v (apt-get install postgresql)", ErrUnavailable, err)
	}
	tl.pgBin = dir
	return &tl, nil
}

// lookPath finds name on PATH or in the sbin directories a non-login root
// shell (or CI) may lack on PATH.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// postgresBin returns the bin directory of the newest PostgreSQL major under
// root that has both postgres and initdb.
func postgresBin(root string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(root, "*", "bin", "postgres"))
	type cand struct {
		major int
		dir   string
	}
	var cands []cand
	for _, m := range matches {
		dir := filepath.Dir(m)
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			continue
		}
		cands = append(cands, cand{major, dir})
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("no PostgreSQL server binaries (postgres, initdb) under %s/*/bin", root)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].major > cands[j].major })
	return cands[0].dir, nil
}
