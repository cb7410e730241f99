package mysqladapter_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flapguard/flapguard/pool"
)

// cmdProxy forwards TCP to MariaDB and counts the commands the client
// sends: every client packet with sequence id 0 starts one (and waits for
// its answer: one round trip). The login exchange uses sequence ids from 1.
type cmdProxy struct {
	ln   net.Listener
	cmds atomic.Int64
	wg   sync.WaitGroup
}

func newCmdProxy(t *testing.T, target string) *cmdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &cmdProxy{ln: ln}
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			px.wg.Add(2)
			go func() { defer px.wg.Done(); io.Copy(c, s); c.Close() }()
			go func() { defer px.wg.Done(); px.count(c, s); s.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); px.wg.Wait() })
	return px
}

func (px *cmdProxy) count(c, s net.Conn) {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.LittleEndian.Uint32(append(hdr[:3:3], 0)))
		if hdr[3] == 0 {
			px.cmds.Add(1)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if _, err := s.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
}

// A new connection costs no round trip beyond plain's, with orphan reaping
// on (the default for MySQL): the connection id comes from the server's
// greeting, not from SELECT CONNECTION_ID() (on main: one command more).
func TestRoundTripsEqualPlainMySQL(t *testing.T) {
	requireMariaDB(t)
	measure := func(t *testing.T, open func(dsn string) *sql.DB) int64 {
		px := newCmdProxy(t, "127.0.0.1:3306")
		db := open("root@tcp(" + px.ln.Addr().String() + ")/test?tls=false")
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DO 1"); err != nil {
			t.Fatal(err)
		}
		return px.cmds.Load()
	}
	plain := measure(t, func(dsn string) *sql.DB {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	var p *pool.Pool
	fg := measure(t, func(dsn string) *sql.DB {
		var err error
		p, err = pool.Open("mysql", dsn, pool.Config{ProbeInterval: -1, Orphans: pool.OrphansOn})
		if err != nil {
			t.Fatal(err)
		}
		return p.DB()
	})
	t.Logf("commands on the wire for connect + first statement: plain %d, flapguard %d", plain, fg)
	if fg != plain {
		t.Fatalf("flapguard sent %d commands where plain sent %d", fg, plain)
	}
}
