package mssqladapter_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flapguard/flapguard/internal/tdsserver"
	"github.com/flapguard/flapguard/pool"
)

// reqProxy forwards TCP to the TDS test server and counts the requests
// the client sends: each SQL batch (0x01) or RPC (0x03) message waits for
// one response. PRELOGIN and LOGIN7 are not counted (plain makes them too).
type reqProxy struct {
	ln   net.Listener
	reqs atomic.Int64
	wg   sync.WaitGroup
}

func newReqProxy(t *testing.T, target string) *reqProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &reqProxy{ln: ln}
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

func (px *reqProxy) count(c, s net.Conn) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[2:4])) - 8
		if (hdr[0] == 0x01 || hdr[0] == 0x03) && hdr[1]&0x01 != 0 { // the message's last packet
			px.reqs.Add(1)
		}
		body := make([]byte, max(n, 0))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if _, err := s.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
}

// A new connection costs no request beyond plain's with orphan reaping on:
// the SPID comes from the login response's packet headers, not from a
// query (on main: one request more, SELECT @@SPID ...).
func TestRoundTripsEqualPlainMSSQL(t *testing.T) {
	srv := startTDS(t)
	measure := func(t *testing.T, open func(dsn string) *sql.DB) int64 {
		px := newReqProxy(t, srv.Addr().String())
		db := open(tdsserver.DSNFor(px.ln.Addr().String()))
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		return px.reqs.Load()
	}
	plain := measure(t, func(dsn string) *sql.DB {
		db, err := sql.Open("sqlserver", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	fg := measure(t, func(dsn string) *sql.DB {
		p, err := pool.Open("sqlserver", dsn, pool.Config{ProbeInterval: -1, Orphans: pool.OrphansOn})
		if err != nil {
			t.Fatal(err)
		}
		return p.DB()
	})
	t.Logf("requests on the wire for connect + first statement: plain %d, flapguard %d", plain, fg)
	if fg != plain {
		t.Fatalf("flapguard sent %d requests where plain sent %d", fg, plain)
	}
}
