//go:build linux

package lab

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDBPort is where lab MariaDB servers listen, on the db address.
const MariaDBPort = 3306

// mariadbInit runs at every server start: a passwordless root@'%' (real
// grants, so KILL and CONNECTION_ID() behave as in production, unlike
// --skip-grant-tables) and the test database.
const mariadbInit = `CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
`

// MariaDB is a private MariaDB server in the lab's db namespace, with a
// throwaway data directory.
type MariaDB struct {
	srv  server
	addr netip.AddrPort
}

// StartMariaDB runs mariadb-install-db into a fresh directory and starts
// mariadbd on DBAddr():3306. It fails t on error; the server is stopped
// when t ends (or the lab is torn down, if that comes first).
func (l *Lab) StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	m, err := l.startMariaDB(t)
	if err != nil {
		t.Fatalf("lab: mariadb: %v", err)
	}
	return m
}

func (l *Lab) startMariaDB(t testing.TB) (*MariaDB, error) {
	began := time.Now()
	dir := l.serverDir("mariadb")
	if err := os.Mkdir(dir, 0o700); errors.Is(err, os.ErrExist) {
		return nil, errors.New("already started in this lab (one mariadb per lab)")
	} else if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := l.exec(l.db.name, "", l.tl.installDB, "--no-defaults", "--user=root",
		"--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve",
		// Passed through to the bootstrap server: a small redo log is most of
		// the difference between 114 MB and 26 MB of files to write.
		"--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M",
		"--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--innodb-flush-method=nosync"); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out)
	}
	installTime := time.Since(began)
	initFile := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(initFile, []byte(mariadbInit), 0o600); err != nil {
		return nil, err
	}
	m := &MariaDB{addr: netip.AddrPortFrom(l.dbAddr, MariaDBPort)}
	m.srv = server{
		lab: l, name: "mariadb", stopSig: syscall.SIGTERM,
		logPath: filepath.Join(l.workDir, "mariadb.log"),
		argv: []string{l.tl.ip, "netns", "exec", l.db.name, l.tl.mariadbd, "--no-defaults",
			"--user=root", "--datadir=" + data, "--socket=" + filepath.Join(dir, "sock"),
			"--pid-file=" + filepath.Join(dir, "pid"), "--port=" + strconv.Itoa(MariaDBPort),
			"--bind-address=" + l.dbAddr.String(), "--init-file=" + initFile,
			"--skip-name-resolve", "--log-error=" + filepath.Join(l.workDir, "mariadb.err"),
			"--skip-log-bin", "--performance-schema=OFF",
			// Throwaway data: durability buys nothing, startup speed does.
			"--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M",
			"--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
			"--innodb-flush-method=nosync", "--max-connections=200"},
		openDB: func() *sql.DB {
			c, _ := mysql.NewConnector(m.config(l.DialDB)) // fixed config: cannot fail
			return sql.OpenDB(c)
		},
	}
	if err := m.srv.register(t); err != nil {
		return nil, err
	}
	d, err := m.srv.start()
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail(filepath.Join(l.workDir, "mariadb.err"), 1500))
	}
	t.Logf("lab: mariadb up in %v (install-db %v, start %v), pid %d", time.Since(began).Round(time.Millisecond),
		installTime.Round(time.Millisecond), d.Round(time.Millisecond), m.PID())
	return m, nil
}

// DSN is the go-sql-driver/mysql DSN: root@tcp(<db>:3306)/test.
func (m *MariaDB) DSN() string { return fmt.Sprintf("root@tcp(%s)/test", m.addr) }

// Config returns a go-sql-driver/mysql config for this server whose
// DialFunc is dial (e.g. lab.DialApp), ready for mysql.NewConnector.
func (m *MariaDB) Config(dial DialFunc) *mysql.Config { return m.config(dial) }

func (m *MariaDB) config(dial DialFunc) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = m.addr.String()
	cfg.DBName = "test"
	cfg.DialFunc = dial
	return cfg
}

// PID is mariadbd's pid, 0 while stopped.
func (m *MariaDB) PID() int { return m.srv.pid() }

// PIDs lists every mariadbd pid this server has had (one per start).
func (m *MariaDB) PIDs() []int { return m.srv.allPIDs() }

// Restart stops the server (every session ends) and starts it again.
func (m *MariaDB) Restart() error { return m.srv.restart() }

// Stop shuts the server down and waits until its process is gone.
func (m *MariaDB) Stop() error { return m.srv.stop() }

// Admin returns a small pool on this server dialled from the db namespace,
// immune to faults. Do not Close it; it is reopened after a restart.
func (m *MariaDB) Admin() *sql.DB { return m.srv.adminDB() }

// SessionsFrom counts the server's sessions connected from addr (e.g.
// lab.AppAddr()), via information_schema.PROCESSLIST.
func (m *MariaDB) SessionsFrom(ctx context.Context, addr netip.Addr) (int, error) {
	return m.srv.count(ctx,
		`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE HOST LIKE CONCAT(?, ':%')`,
		addr.String())
}
