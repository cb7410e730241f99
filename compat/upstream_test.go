package compat

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestUpstreamSuites runs the drivers' own database/sql test suites, taken
// from the module cache at the versions this module's go.mod pins, twice:
// as they are (plain) and with only their opening swapped for flapguard's
// (FLAPGUARD_UPSTREAM=flapguard) and the conn inside sql.Conn.Raw routed
// through pool.DriverConn. A test that passes plain and fails through
// flapguard fails this test, unless upstreamAllowed names it with its
// reason.
//
// Nothing upstream is committed here: the test copies the pinned module
// out of the read-only cache into a temporary directory, rewrites the
// calls listed in upstreamSuites (a handful of textual replacements, shown
// in each suite's rewrite), adds two small files of its own, and builds
// one test binary that both runs share. The copy is its own main module
// (so go-sql-driver/mysql's tests, which are inside package mysql, can be
// built with flapguard's mysqladapter importing that very package) with
// flapguard replaced by this checkout.
//
// It needs the Go toolchain and the module proxy or a filled module cache
// (go mod download), and the shared servers; each run gets a database of
// its own, dropped at the end. Set FLAPGUARD_UPSTREAM_RUN to a -run
// pattern to run part of a suite.
func TestUpstreamSuites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the drivers' own suites (minutes)")
	}
	for _, s := range upstreamSuites {
		t.Run(s.name, func(t *testing.T) { runUpstream(t, s) })
	}
}

// upstreamMarker is printed by the injected openings the first time they
// open through flapguard: a run that never did cannot pass for one.
const upstreamMarker = "flapguard-upstream: opened through flapguard"

// upstreamSuite is one driver's test package.
type upstreamSuite struct {
	name    string
	module  string // module path, version from go.mod
	pkg     string // package directory inside the module
	files   []string
	rewrite []rewriteRule
	inject  map[string]string           // file name → content, into pkg
	setup   func(t *testing.T) []string // makes a database of its own; returns the suite's environment
}

type rewriteRule struct {
	re   *regexp.Regexp
	with string
}

func rule(re, with string) rewriteRule { return rewriteRule{regexp.MustCompile(re), with} }

// upstreamAllowed lists the tests that may pass plain and fail through
// flapguard, each with the reason (docs/drivers.md, README's drop-in
// section). Keys are "suite/TestName" (subtests included in the name).
var upstreamAllowed = map[string]string{}

var upstreamSuites = []upstreamSuite{
	{
		name:   "pgx-stdlib",
		module: "github.com/jackc/pgx/v5",
		pkg:    "stdlib",
		files:  []string{"sql_test.go"},
		rewrite: []rewriteRule{
			// Every way the suite opens a *sql.DB.
			rule(`\bsql\.Open\(`, "fgOpen("),
			rule(`\bstdlib\.OpenDBFromPool\(`, "fgOpenDBFromPool("),
			rule(`\bstdlib\.OpenDB\(`, "fgOpenDB("),
			// Raw hands the callback flapguard's conn: unwrap it to pgx's.
			rule(`\b(\w+)\.\(\*stdlib\.Conn\)`, "fgRaw($1).(*stdlib.Conn)"),
		},
		inject: map[string]string{"flapguard_open_test.go": pgxInject},
		setup:  pgxUpstreamEnv,
	},
	{
		name:   "go-sql-driver-mysql",
		module: "github.com/go-sql-driver/mysql",
		pkg:    ".",
		files:  []string{"driver_test.go"},
		rewrite: []rewriteRule{
			rule(`\bsql\.Open\(`, "FgOpen("),
			rule(`\bsql\.OpenDB\(`, "FgOpenDB("),
			rule(`\b(\w+)\.\(\*mysqlConn\)`, "FgRaw($1).(*mysqlConn)"),
			rule(`\b(\w+)\.\(driver\.(Execer|Queryer)\)`, "FgRaw($1).(driver.$2)"),
		},
		inject: map[string]string{
			"flapguard_open_test.go":    mysqlInjectInternal,
			"flapguard_adapter_test.go": mysqlInjectExternal,
		},
		setup: mysqlUpstreamEnv,
	},
}

const pgxInject = `package stdlib_test

// Added by flapguard's compat/upstream_test.go: the suite's openings,
// plain or through flapguard (FLAPGUARD_UPSTREAM=flapguard).

import (
	"database/sql"
	"fmt"
	"os"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	fgpool "github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/pgxadapter"
)

var fgOn = os.Getenv("FLAPGUARD_UPSTREAM") == "flapguard"

// fgMark tells the harness that flapguard did open the suite's pools.
var fgMark sync.Once

func fgMarked() { fgMark.Do(func() { fmt.Fprintln(os.Stderr, "` + upstreamMarker + `") }) }

func fgOpen(name, dsn string) (*sql.DB, error) {
	if !fgOn {
		return sql.Open(name, dsn)
	}
	fgMarked()
	p, err := fgpool.Open(name, dsn, fgpool.Config{})
	if err != nil {
		return nil, err
	}
	return p.DB(), nil
}

func fgOpenDB(cfg pgx.ConnConfig, opts ...stdlib.OptionOpenDB) *sql.DB {
	if !fgOn {
		return stdlib.OpenDB(cfg, opts...)
	}
	fgMarked()
	return fgpool.OpenDB(stdlib.GetConnector(cfg, opts...), fgpool.Config{}).DB()
}

func fgOpenDBFromPool(p *pgxpool.Pool, opts ...stdlib.OptionOpenDB) *sql.DB {
	if !fgOn {
		return stdlib.OpenDBFromPool(p, opts...)
	}
	fgMarked()
	return fgpool.OpenDB(stdlib.GetPoolConnector(p, opts...), fgpool.Config{}).DB()
}

func fgRaw(c any) any { return fgpool.DriverConn(c) }
`

// The suite is inside package mysql: it cannot import flapguard's
// mysqladapter (which imports package mysql) without an import cycle. The
// internal file declares the openings as variables; the external test
// file (package mysql_test, same test binary) imports the adapter and
// sets them.
const mysqlInjectInternal = `package mysql

// Added by flapguard's compat/upstream_test.go (see the external file).

import (
	"database/sql"

	fgpool "github.com/flapguard/flapguard/pool"
)

var (
	FgOpen   = sql.Open
	FgOpenDB = sql.OpenDB
)

func FgRaw(c any) any { return fgpool.DriverConn(c) }
`

const mysqlInjectExternal = `package mysql_test

// Added by flapguard's compat/upstream_test.go: the suite's openings
// through flapguard when FLAPGUARD_UPSTREAM=flapguard.

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"sync"

	"github.com/go-sql-driver/mysql"

	fgpool "github.com/flapguard/flapguard/pool"
	_ "github.com/flapguard/flapguard/pool/mysqladapter"
)

func init() {
	if os.Getenv("FLAPGUARD_UPSTREAM") != "flapguard" {
		return
	}
	var mark sync.Once
	marked := func() { mark.Do(func() { fmt.Fprintln(os.Stderr, "` + upstreamMarker + `") }) }
	mysql.FgOpen = func(name, dsn string) (*sql.DB, error) {
		marked()
		p, err := fgpool.Open(name, dsn, fgpool.Config{})
		if err != nil {
			return nil, err
		}
		return p.DB(), nil
	}
	mysql.FgOpenDB = func(c driver.Connector) *sql.DB {
		marked()
		return fgpool.OpenDB(c, fgpool.Config{}).DB()
	}
}
`

func runUpstream(t *testing.T, s upstreamSuite) {
	dir := copyUpstream(t, s)
	env := s.setup(t)
	bin := filepath.Join(t.TempDir(), "suite.test")
	build := exec.Command("go", "test", "-c", "-race", "-o", bin, "./"+filepath.ToSlash(s.pkg))
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s's tests: %v\n%s", s.name, err, out)
	}
	// A test that crashes the binary (a panic) takes every later test
	// with it: it is recorded as PANIC and the binary run again without
	// it, for as many as there are. Plain's crashes are skipped through
	// flapguard as well, so both sides run the same tests.
	var crashed []string
	run := func(mode string) map[string]string {
		res := map[string]string{}
		opened := false
		for range 20 {
			args := []string{"-test.v", "-test.count=1", "-test.timeout=8m"}
			if p := os.Getenv("FLAPGUARD_UPSTREAM_RUN"); p != "" {
				args = append(args, "-test.run="+p)
			}
			if len(crashed) > 0 {
				args = append(args, "-test.skip=^("+strings.Join(crashed, "|")+")$")
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = filepath.Join(dir, s.pkg)
			cmd.Env = append(append(os.Environ(), env...), "FLAPGUARD_UPSTREAM="+mode)
			out, err := cmd.CombinedOutput() // failing tests exit non-zero; the lines say which
			if d := os.Getenv("FLAPGUARD_UPSTREAM_LOG"); d != "" {
				f, _ := os.OpenFile(filepath.Join(d, s.name+"-"+mode+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				f.Write(out)
				f.Close()
			}
			opened = opened || bytes.Contains(out, []byte(upstreamMarker))
			got, _ := testResults(out)
			for n, r := range got {
				res[n] = r
			}
			culprit := panicked(out)
			if err == nil || culprit == "" {
				break
			}
			top, _, _ := strings.Cut(culprit, "/")
			res[culprit] = "PANIC"
			res[top] = "PANIC"
			crashed = append(crashed, regexp.QuoteMeta(top))
			t.Logf("%s (%s): %s crashed the test binary; running the rest without it", s.name, mode, top)
		}
		if len(res) == 0 {
			t.Fatalf("%s (%s): no test results", s.name, mode)
		}
		if opened != (mode == "flapguard") {
			t.Fatalf("%s (%s): opened through flapguard: %v (the %q line): the swap did not take as it should", s.name, mode, opened, upstreamMarker)
		}
		return res
	}
	plain := run("plain")
	fg := run("flapguard")
	count := func(res map[string]string, want string) int {
		n := 0
		for _, r := range res {
			if r == want {
				n++
			}
		}
		return n
	}
	t.Logf("%s: plain %d passed, %d failed, %d skipped; flapguard %d passed, %d failed, %d skipped",
		s.name, count(plain, "PASS"), count(plain, "FAIL"), count(plain, "SKIP"),
		count(fg, "PASS"), count(fg, "FAIL"), count(fg, "SKIP"))
	names := make([]string, 0, len(plain))
	for n := range plain {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if plain[n] != "PASS" {
			continue
		}
		got, ok := fg[n]
		if !ok {
			got = "did not run"
		}
		if got == "PASS" {
			continue
		}
		key := s.name + "/" + n
		if why, ok := upstreamAllowed[key]; ok {
			t.Logf("allowed: %s passes plain, %s through flapguard: %s", n, got, why)
			continue
		}
		t.Errorf("%s passes plain but %s through flapguard", n, strings.ToLower(got))
	}
	for key := range upstreamAllowed {
		if n, ok := strings.CutPrefix(key, s.name+"/"); ok && fg[n] == "PASS" {
			t.Errorf("allow-list entry %s is stale: it passes through flapguard now", key)
		}
	}
}

var (
	resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)
	runLine    = regexp.MustCompile(`^=== (?:RUN|CONT)\s+(\S+)`)
)

// testResults reads `go test -v` output: test name (with subtests) →
// PASS, FAIL or SKIP; and the last test started that has no result (the
// one running when the binary died), if any.
func testResults(out []byte) (map[string]string, string) {
	res := map[string]string{}
	var started []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := resultLine.FindStringSubmatch(sc.Text()); m != nil {
			res[m[2]] = m[1]
		} else if m := runLine.FindStringSubmatch(sc.Text()); m != nil {
			started = append(started, m[1])
		}
	}
	running := ""
	for i := len(started) - 1; i >= 0; i-- {
		if _, done := res[started[i]]; !done {
			running = started[i]
			break
		}
	}
	return res, running
}

// panicked returns the test whose panic ended the binary: testing prints
// its "--- FAIL" line just before the "panic:" line.
func panicked(out []byte) string {
	i := bytes.Index(out, []byte("\npanic: "))
	if i < 0 {
		return ""
	}
	before := out[:i+1]
	m := regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`).FindAllSubmatch(before, -1)
	if len(m) == 0 {
		_, running := testResults(before)
		return running
	}
	return string(m[len(m)-1][1])
}

// copyUpstream copies the pinned module out of the module cache, applies
// the suite's rewrites and injections, and makes the copy require this
// checkout of flapguard.
func copyUpstream(t *testing.T, s upstreamSuite) string {
	t.Helper()
	mod := goList(t, s.module)
	dst := filepath.Join(t.TempDir(), "mod")
	err := filepath.WalkDir(mod.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mod.Dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", mod.Dir, err)
	}
	for _, f := range s.files {
		p := filepath.Join(dst, s.pkg, f)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		for _, r := range s.rewrite {
			if !r.re.MatchString(src) {
				t.Fatalf("%s: rewrite %q matches nothing in %s@%s: the upstream file changed, check the rules", s.name, r.re, s.module, mod.Version)
			}
			src = r.re.ReplaceAllString(src, r.with)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range s.inject {
		if err := os.WriteFile(filepath.Join(dst, s.pkg, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	gomod := filepath.Join(dst, "go.mod")
	b, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, fmt.Sprintf("\nrequire github.com/flapguard/flapguard v0.0.0-00010101000000-000000000000\n\nreplace github.com/flapguard/flapguard => %s\n", root)...)
	if err := os.WriteFile(gomod, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s@%s copied from %s", s.module, mod.Version, mod.Dir)
	return dst
}

type listedModule struct{ Path, Version, Dir string }

func goList(t *testing.T, module string) listedModule {
	t.Helper()
	dl := exec.Command("go", "mod", "download", module)
	dl.Env = append(os.Environ(), "GOWORK=off")
	if out, err := dl.CombinedOutput(); err != nil {
		t.Fatalf("go mod download %s: %v\n%s", module, err, out)
	}
	cmd := exec.Command("go", "list", "-m", "-json", module)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	var m listedModule
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go list -m %s: no module directory (%v): %s", module, err, out)
	}
	return m
}

// scratchDB creates a database of its own on the server admin reaches,
// dropped when the test ends.
func scratchDB(t *testing.T, admin *sql.DB, create, drop string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, create); err != nil {
		t.Fatalf("%s: %v", create, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, drop); err != nil {
			t.Logf("%s: %v", drop, err)
		}
	})
}

func upstreamDBName() string {
	return fmt.Sprintf("fgupstream_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
}

func pgxUpstreamEnv(t *testing.T) []string {
	srv := servers[0]
	admin := srv.admin(t)
	name := upstreamDBName()
	scratchDB(t, admin, "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	u, err := url.Parse(srv.dsn)
	if err != nil {
		t.Fatalf("PG_DSN is not a URL: %v", err)
	}
	u.Path = "/" + name
	return []string{"PGX_TEST_DATABASE=" + u.String()}
}

func mysqlUpstreamEnv(t *testing.T) []string {
	srv := servers[1]
	admin := srv.admin(t)
	name := upstreamDBName()
	scratchDB(t, admin, "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name)
	cfg, err := mysql.ParseDSN(srv.dsn)
	if err != nil {
		t.Fatalf("MYSQL_DSN: %v", err)
	}
	return []string{"MYSQL_TEST_USER=" + cfg.User, "MYSQL_TEST_PASS=" + cfg.Passwd, "MYSQL_TEST_PROT=" + cfg.Net,
		"MYSQL_TEST_ADDR=" + cfg.Addr, "MYSQL_TEST_DBNAME=" + name}
}
