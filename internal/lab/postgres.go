//go:build linux

package lab

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresPort is where lab PostgreSQL servers listen, on the db address.
const PostgresPort = 5432

// Postgres is a private PostgreSQL server in the lab's db namespace, with a
// throwaway data directory and trust auth for the lab's two links only.
type Postgres struct {
	srv server
	dsn string
}

// StartPostgres runs initdb (as the postgres OS user: postgres refuses root)
// into a fresh directory and starts postgres on DBAddr():5432. It fails t on
// error; the server is stopped when t ends (or the lab is torn down, if
// that comes first).
func (l *Lab) StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p, err := l.startPostgres(t, PostgresPort)
	if err != nil {
		t.Fatalf("lab: postgres: %v", err)
	}
	return p
}

// StartPostgresOn is StartPostgres for a second, independent server in
// the same lab on DBAddr():port (port ≠ PostgresPort): the soak's plain
// twin gets a server of its own, behind the same faults.
func (l *Lab) StartPostgresOn(t testing.TB, port int) *Postgres {
	t.Helper()
	if port <= 0 || port > 65535 || port == PostgresPort {
		t.Fatalf("lab: postgres on port %d: want 1-65535 other than %d (StartPostgres)", port, PostgresPort)
	}
	p, err := l.startPostgres(t, port)
	if err != nil {
		t.Fatalf("lab: postgres on port %d: %v", port, err)
	}
	return p
}

func (l *Lab) startPostgres(t testing.TB, port int) (*Postgres, error) {
	began := time.Now()
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres OS user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, logName := l.serverDir("pg"), "postgres.log"
	if port != PostgresPort {
		dir, logName = l.serverDir(fmt.Sprintf("pg-%d", port)), fmt.Sprintf("postgres-%d.log", port)
	}
	if err := os.Mkdir(dir, 0o700); errors.Is(err, os.ErrExist) {
		return nil, errors.New("already started in this lab (one postgres per port per lab)")
	} else if err != nil {
		return nil, err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	asPostgres := []string{l.tl.setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups",
		// setpriv's credential change clears the parent-death signal that
		// startProcess set; ask for it again.
		"--pdeathsig=KILL", "--"}
	initdb := append(append([]string(nil), asPostgres...), filepath.Join(l.tl.pgBin, "initdb"),
		"-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := l.exec(l.db.name, "", initdb...); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out)
	}
	initTime := time.Since(began)
	hba := fmt.Sprintf("host all all %s trust\nhost all all %s trust\n", l.appNet, l.dbNet)
	if err := appendFile(filepath.Join(data, "pg_hba.conf"), hba); err != nil {
		return nil, err
	}
	p := &Postgres{dsn: fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable",
		netip.AddrPortFrom(l.dbAddr, uint16(port)))}
	p.srv = server{
		lab: l, name: "postgres", stopSig: syscall.SIGINT, // fast shutdown: sessions end now
		logPath: filepath.Join(l.workDir, logName),
		argv: append(append([]string{l.tl.ip, "netns", "exec", l.db.name}, asPostgres...),
			filepath.Join(l.tl.pgBin, "postgres"), "-D", data,
			"-c", "listen_addresses="+l.dbAddr.String(),
			"-c", "port="+strconv.Itoa(port),
			"-c", "unix_socket_directories="+dir,
			// Throwaway data: durability buys nothing, startup speed does.
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200", "-c", "shared_buffers=32MB"),
		openDB: func() *sql.DB {
			cfg, _ := pgx.ParseConfig(p.dsn) // our own DSN: cannot fail
			cfg.DialFunc = l.DialDB
			return stdlib.OpenDB(*cfg)
		},
	}
	if err := p.srv.register(t); err != nil {
		return nil, err
	}
	d, err := p.srv.start()
	if err != nil {
		return nil, err
	}
	t.Logf("lab: postgres up in %v (initdb %v, start %v), pid %d", time.Since(began).Round(time.Millisecond),
		initTime.Round(time.Millisecond), d.Round(time.Millisecond), p.PID())
	return p, nil
}

// DSN is the pgx DSN of this server: postgres://postgres@<db>:5432/postgres.
// Dial it with DialApp (pgconn.Config.DialFunc) to go through the vpn.
func (p *Postgres) DSN() string { return p.dsn }

// PID is the postmaster's pid, 0 while stopped.
func (p *Postgres) PID() int { return p.srv.pid() }

// PIDs lists every postmaster pid this server has had (one per start).
func (p *Postgres) PIDs() []int { return p.srv.allPIDs() }

// Restart stops the server (fast shutdown: every session is terminated) and
// starts it again on the same data and address.
func (p *Postgres) Restart() error { return p.srv.restart() }

// Stop shuts the server down and waits until its processes are gone.
func (p *Postgres) Stop() error { return p.srv.stop() }

// Admin returns a small pool on this server dialled from the db namespace,
// immune to faults. Do not Close it; it is reopened after a restart.
func (p *Postgres) Admin() *sql.DB { return p.srv.adminDB() }

// SessionsFrom counts the server's client backends connected from addr
// (e.g. lab.AppAddr()), via pg_stat_activity.
func (p *Postgres) SessionsFrom(ctx context.Context, addr netip.Addr) (int, error) {
	return p.srv.count(ctx,
		`SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND client_addr = $1::inet`,
		addr.String())
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
