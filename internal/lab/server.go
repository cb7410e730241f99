//go:build linux

package lab

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startupTimeout bounds a server's wait for readiness.
const startupTimeout = 60 * time.Second

// server is what Postgres and MariaDB share: one process in the db
// namespace that can be restarted, plus a lazily opened admin pool over
// DialDB.
type server struct {
	lab     *Lab
	name    string
	argv    []string       // full `ip netns exec <db> ...` command line
	stopSig syscall.Signal // graceful shutdown signal
	openDB  func() *sql.DB // admin pool over DialDB
	logPath string
	pids    []int      // every server pid ever started, for leak checks
	mu      sync.Mutex // protects following fields
	proc    *process
	admin   *sql.DB
}

// start runs the server and waits until an admin Ping succeeds.
func (s *server) start() (time.Duration, error) {
	began := time.Now()
	if err := checkArgv(s.argv, s.lab.owns); err != nil {
		return 0, err
	}
	p, err := startProcess(s.name, s.argv, s.logPath)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.proc = p
	s.pids = append(s.pids, p.pid())
	s.mu.Unlock()
	err = p.waitReady(startupTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		db := s.adminDB()
		if err := db.PingContext(ctx); err != nil {
			s.dropAdmin() // no retrying on a pool that may hold a half-started conn
			return err
		}
		return nil
	})
	if err != nil {
		p.stop(syscall.SIGKILL, 5*time.Second)
		return 0, err
	}
	return time.Since(began), nil
}

func (s *server) adminDB() *sql.DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin == nil {
		s.admin = s.openDB()
		s.admin.SetMaxOpenConns(2)
		s.admin.SetMaxIdleConns(1)
	}
	return s.admin
}

func (s *server) dropAdmin() {
	s.mu.Lock()
	db := s.admin
	s.admin = nil
	s.mu.Unlock()
	if db != nil {
		db.Close()
	}
}

// stop shuts the server down gracefully (its sessions end, clients see the
// connection close) and waits until the process is reaped.
func (s *server) stop() error {
	s.dropAdmin()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.stop(s.stopSig, 30*time.Second)
	if !pidGone(p.pid()) {
		return fmt.Errorf("lab: %s pid %d still exists after stop", s.name, p.pid())
	}
	return err
}

// restart is stop then start on the same data directory and address.
func (s *server) restart() error {
	if err := s.stop(); err != nil {
		return err
	}
	d, err := s.start()
	if err != nil {
		return err
	}
	s.lab.t.Logf("lab: %s restarted in %v", s.name, d.Round(time.Millisecond))
	return nil
}

// pid returns the running server's pid, 0 when stopped.
func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid()
}

// allPIDs returns every pid this server ever had.
func (s *server) allPIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.pids...)
}

// register makes both the lab's teardown and t's cleanup stop the server.
func (s *server) register(t testing.TB) error {
	if err := s.lab.addStopper(s.stop); err != nil {
		return err
	}
	t.Cleanup(func() {
		began := time.Now()
		running := s.pid() != 0
		if err := s.stop(); err != nil {
			t.Errorf("lab: stop %s: %v", s.name, err)
		} else if running {
			t.Logf("lab: %s stopped in %v", s.name, time.Since(began).Round(time.Millisecond))
		}
	})
	return nil
}

// count runs a one-row count query on the admin pool.
func (s *server) count(ctx context.Context, query string, args ...any) (int, error) {
	var n int
	if err := s.adminDB().QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("lab: %s admin query: %w", s.name, err)
	}
	return n, nil
}

func (l *Lab) serverDir(name string) string { return filepath.Join(l.workDir, name) }
