package pgxadapter_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// rtProxy forwards TCP to PostgreSQL and counts the round trips the client
// asks for on the wire: every simple Query ('Q') and every Sync ('S') of
// the extended protocol is answered by one ReadyForQuery.
type rtProxy struct {
	ln    net.Listener
	hole  atomic.Bool // a blackhole: nothing is forwarded, new connections hang
	trips atomic.Int64
	conns sync.Map // client address → *atomic.Int64, that connection's trips
	wg    sync.WaitGroup
}

// tripsOf returns the round trips counted on the connection from addr.
func (px *rtProxy) tripsOf(addr string) int64 {
	if n, ok := px.conns.Load(addr); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func newRTProxy(t *testing.T, target string) *rtProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &rtProxy{ln: ln}
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if px.hole.Load() {
				px.wg.Add(1)
				go func() { defer px.wg.Done(); io.Copy(io.Discard, c); c.Close() }()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			px.wg.Add(2)
			go func() { defer px.wg.Done(); px.forward(c, s); c.Close() }()
			go func() { defer px.wg.Done(); px.count(c, s); s.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); px.wg.Wait() })
	return px
}

// forward copies server→client, dropping what arrives while the hole is
// open.
func (px *rtProxy) forward(c, s net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 && !px.hole.Load() {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// count copies client→server, parsing frontend messages: the startup
// message first (length-prefixed, no type byte), then type + length.
func (px *rtProxy) count(c, s net.Conn) {
	mine := new(atomic.Int64)
	px.conns.Store(c.RemoteAddr().String(), mine)
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:4]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint32(hdr[:4]))
	body := make([]byte, n-4)
	if _, err := io.ReadFull(c, body); err != nil {
		return
	}
	s.Write(append(hdr[:4:4], body...))
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		if hdr[0] == 'Q' || hdr[0] == 'S' {
			px.trips.Add(1)
			mine.Add(1)
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		body := make([]byte, n-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if px.hole.Load() {
			continue
		}
		if _, err := s.Write(append(hdr[:5:5], body...)); err != nil {
			return
		}
	}
}

// The round trips of a new connection and of a borrow after the pooled
// connection sat idle past pgx's 1s ping threshold (and the pool's
// LivenessIdle), counted on the wire: flapguard must make exactly as many
// as plain pgx (issue: no round trip plain database/sql would not make).
func TestRoundTripsEqualPlainPgx(t *testing.T) {
	requirePostgres(t)
	measure := func(t *testing.T, open func(dsn string) *sql.DB) (connect, borrow int64) {
		px := newRTProxy(t, "127.0.0.1:5432")
		db := open("postgres://postgres@" + px.ln.Addr().String() + "/test?sslmode=disable")
		defer db.Close()
		ctx := context.Background()
		var x int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&x); err != nil {
			t.Fatal(err)
		}
		connect = px.trips.Load()
		time.Sleep(1200 * time.Millisecond) // the pooled conn sits idle past both thresholds
		before := px.trips.Load()
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&x); err != nil {
			t.Fatal(err)
		}
		return connect, px.trips.Load() - before
	}
	pc, pb := measure(t, func(dsn string) *sql.DB {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	fc, fb := measure(t, func(dsn string) *sql.DB {
		p, err := pool.Open("pgx", dsn, pool.Config{ProbeInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return p.DB()
	})
	t.Logf("round trips on the wire: connect+first query plain %d, flapguard %d; borrow after idle + query plain %d, flapguard %d", pc, fc, pb, fb)
	if fc != pc || fb != pb {
		t.Fatalf("flapguard made %d/%d round trips where plain pgx made %d/%d (connect/borrow after idle)", fc, fb, pc, pb)
	}
}

// requirePostgres skips when the machine's PostgreSQL does not answer,
// and fails instead under FLAPGUARD_LAB=require or CI.
func requirePostgres(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:5432", time.Second)
	if err != nil {
		if os.Getenv("FLAPGUARD_LAB") == "require" || os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL on 127.0.0.1:5432 not reachable: %v", err)
		}
		t.Skipf("PostgreSQL on 127.0.0.1:5432 not reachable: %v", err)
	}
	c.Close()
}
