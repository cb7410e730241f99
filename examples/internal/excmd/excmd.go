// Package excmd is what the example commands share: main's signal and
// exit-code handling, the local test servers' DSNs, opening and checking a
// pool, and a writer safe for the pool's event goroutines. Each example's
// main.go keeps only what is its own.
package excmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// ErrUsage marks a bad command line (exit code 2); the message was
// printed.
var ErrUsage = errors.New("usage")

// Main runs a command's run function until it returns, an interrupt or
// SIGTERM cancelling its context, and exits: 0 done (or -h), 1 an error
// (printed as "name: err"), 2 a bad command line.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, ErrUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// LocalDSNs are the machine's test servers (.ci/run starts them), by
// pool.Open driver name.
var LocalDSNs = map[string]string{
	"pgx":   "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5",
	"mysql": "root@tcp(127.0.0.1:3306)/test?timeout=5s",
}

// OpenChecked opens a pool and pings it within 5 s. Neither error carries
// the DSN's password.
func OpenChecked(ctx context.Context, driver, dsn string, cfg pool.Config) (*pool.Pool, error) {
	p, err := pool.Open(driver, dsn, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = p.DB().PingContext(pctx)
	cancel()
	if err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("cannot reach the %s server: %w", driver, err)
	}
	return p, nil
}

// Query runs the examples' light workload, one SELECT 1 with a 2 s
// deadline, and says how it went ("ok" or the error) and how long it took.
func Query(ctx context.Context, p *pool.Pool) (status string, took time.Duration) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	var one int
	status = "ok"
	if err := p.DB().QueryRowContext(qctx, "SELECT 1").Scan(&one); err != nil {
		status = err.Error()
	}
	return status, time.Since(start).Round(time.Millisecond)
}

// EnvOr is the environment variable k, or def when it is empty.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// SyncWriter serialises writes: Config.OnEvent and feeds' handlers run on
// their own goroutines.
type SyncWriter struct {
	mu sync.Mutex // protects W
	W  io.Writer
}

func (s *SyncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(b)
}
