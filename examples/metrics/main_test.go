package main

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flapguard/flapguard/pool"
)

// nopConnector is the smallest driver.Connector: the collector is our own
// logic and needs no server to be tested.
type nopConnector struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) { return nopConn{}, nil }
func (nopConnector) Driver() driver.Driver                        { return nil }

type nopConn struct{}

func (nopConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("nop") }
func (nopConn) Close() error                        { return nil }
func (nopConn) Begin() (driver.Tx, error)           { return nil, errors.New("nop") }
func (nopConn) Ping(context.Context) error          { return nil }

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	return string(b)
}

func hasLine(body, line string) bool {
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func newTestPool(t *testing.T, labels prometheus.Labels) (*pool.Pool, *httptest.Server) {
	t.Helper()
	ev := newEventCounter(labels)
	p := pool.OpenDB(nopConnector{}, pool.Config{OnEvent: ev.observe, ProbeInterval: -1})
	t.Cleanup(func() { p.Close() })
	reg, err := newRegistry(p, ev, labels)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(srv.Close)
	return p, srv
}

func TestScrapeAfterReset(t *testing.T) {
	p, srv := newTestPool(t, nil)
	if err := p.DB().Ping(); err != nil {
		t.Fatal(err)
	}

	before := scrape(t, srv.URL)
	for _, want := range []string{
		"flapguard_resets_total 0",
		"flapguard_generation 1",
		"flapguard_open_connections 1",
		"flapguard_idle_connections 1",
		"flapguard_connections_opened_total 1",
		`flapguard_state{state="healthy"} 1`,
		`flapguard_state{state="unreachable"} 0`,
		`flapguard_events_total{kind="reset"} 0`,
	} {
		if !hasLine(before, want) {
			t.Errorf("before Reset: no line %q", want)
		}
	}

	p.Reset("test")
	after := scrape(t, srv.URL)
	for _, want := range []string{
		"flapguard_resets_total 1",
		"flapguard_severs_total 0",
		"flapguard_generation 2",
		"flapguard_reset_closed_connections_total 1",
		"flapguard_open_connections 1", // database/sql still holds it, retired
		`flapguard_events_total{kind="reset"} 1`,
	} {
		if !hasLine(after, want) {
			t.Errorf("after Reset: no line %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape after Reset:\n%s", after)
	}
}

func TestPoolLabel(t *testing.T) {
	p, srv := newTestPool(t, prometheus.Labels{"pool": "orders"})
	p.Sever("test")
	body := scrape(t, srv.URL)
	for _, want := range []string{
		`flapguard_resets_total{pool="orders"} 1`,
		`flapguard_severs_total{pool="orders"} 1`,
		`flapguard_events_total{kind="sever",pool="orders"} 1`,
	} {
		if !hasLine(body, want) {
			t.Errorf("no line %q in\n%s", want, body)
		}
	}
}

// The names follow Prometheus conventions (client_golang's linter: units,
// _total on counters, no reserved suffixes on gauges).
func TestMetricNamesLint(t *testing.T) {
	p := pool.OpenDB(nopConnector{}, pool.Config{ProbeInterval: -1})
	defer p.Close()
	for name, c := range map[string]prometheus.Collector{
		"collector": newCollector(p, nil),
		"events":    newEventCounter(nil).vec,
	} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems {
			t.Errorf("%s: %s: %s", name, pr.Metric, pr.Text)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-driver", "sqlserver"}, // needs -dsn
		{"-duration", "-1s"},
		{"stray"},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want errUsage", args, err)
		}
	}
}

// notifyWriter hands the first line that matches re to found.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	re    *regexp.Regexp
	found chan string
	sent  bool
}

func (w *notifyWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if m := w.re.FindStringSubmatch(w.buf.String()); m != nil && !w.sent {
		w.sent = true
		w.found <- m[1]
	}
	return len(b), nil
}

// TestRunLocal serves metrics for a pool on the machine's PostgreSQL,
// resets it with a real SIGHUP and scrapes over real HTTP.
func TestRunLocal(t *testing.T) {
	if c, err := net.DialTimeout("tcp", "127.0.0.1:5432", time.Second); err != nil {
		t.Skipf("PostgreSQL not reachable at 127.0.0.1:5432: %v", err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &notifyWriter{re: regexp.MustCompile(`serving (http://\S+/metrics)`), found: make(chan string, 1)}
	var errOut bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-pool", "main"}, out, &errOut) }()

	var url string
	select {
	case url = <-out.found:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, &errOut)
	}
	body := scrape(t, url)
	for _, want := range []string{`flapguard_generation{pool="main"} 1`, `flapguard_open_connections{pool="main"} 1`, `flapguard_resets_total{pool="main"} 0`} {
		if !hasLine(body, want) {
			t.Errorf("no line %q", want)
		}
	}
	if !canSIGHUP {
		cancel()
		<-done
		t.Skip("no SIGHUP to send on " + runtime.GOOS + ": the scrape was checked, the reset by signal is not")
	}
	if err := sendSIGHUP(); err != nil {
		t.Fatal(err)
	}
	for !hasLine(scrape(t, url), `flapguard_resets_total{pool="main"} 1`) {
		if ctx.Err() != nil {
			t.Fatal("SIGHUP did not show up as flapguard_resets_total 1")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, &errOut)
	}
}
