package mssqladapter

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/nettest"
)

func TestMSSQLConstructed(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want detect.Verdict
	}{
		{"constructed/Error 2627 class 14 (unique key)", mssql.Error{Number: 2627, Class: 14}, detect.Alive},
		{"constructed/Error 1205 deadlock victim class 13", mssql.Error{Number: 1205, Class: 13}, detect.Alive},
		{"constructed/Error 18456 login failed class 14", mssql.Error{Number: 18456, Class: 14}, detect.Alive},
		{"constructed/Error 4060 cannot open database class 11", mssql.Error{Number: 4060, Class: 11}, detect.Alive},
		{"constructed/Error class 19 (batch ended, conn kept)", mssql.Error{Number: 701, Class: 19}, detect.Alive},
		{"constructed/Error class 20", mssql.Error{Number: 9999, Class: 20}, detect.Lost},
		{"constructed/Error 596 class 21", mssql.Error{Number: 596, Class: 21}, detect.Lost},
		{"constructed/Error 6005 shutdown class 10", mssql.Error{Number: 6005, Class: 10}, detect.Lost},
		{"constructed/Error 6006 shut down class 10", mssql.Error{Number: 6006, Class: 10}, detect.Lost},
		{"constructed/*Error class 21", &mssql.Error{Number: 596, Class: 21}, detect.Lost},
		{"constructed/nil *Error", (*mssql.Error)(nil), detect.Alive},
		{"constructed/Error last ordinary, earlier fatal in All", mssql.Error{Number: 3621, Class: 10,
			All: []mssql.Error{{Number: 596, Class: 21}, {Number: 3621, Class: 10}}}, detect.Lost},
		{"constructed/wrapped Error 1205", fmt.Errorf("tx: %w", mssql.Error{Number: 1205, Class: 13}), detect.Alive},
		{"constructed/StreamError", mssql.StreamError{InnerError: errors.New("did not get cancellation confirmation from the server")}, detect.Lost},
		{"constructed/StreamError wrapping a deadline", mssql.StreamError{InnerError: fmt.Errorf("x: %w", context.DeadlineExceeded)}, detect.Lost},
		{"constructed/ServerError (zero)", mssql.ServerError{}, detect.Lost},
		{"constructed/RetryableError (zero)", mssql.RetryableError{}, detect.LostUnsent},
		{"constructed/join RetryableError + Error 1205", errors.Join(mssql.RetryableError{}, mssql.Error{Number: 1205, Class: 13}), detect.LostUnsent},
		{"constructed/join Error 2627 + EOF", errors.Join(mssql.Error{Number: 2627, Class: 14}, io.EOF), detect.Lost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detect.Classify(tt.err, classifier); got != tt.want {
				t.Fatalf("Classify(%#v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	for _, n := range mssqlAliveNumbers {
		for _, class := range []uint8{11, 13, 14, 16} {
			if v := detect.Classify(mssql.Error{Number: n, Class: class}, classifier); v != detect.Alive {
				t.Fatalf("Error %d class %d: %v, want alive", n, class, v)
			}
		}
	}
}

// --- the real go-mssqldb driver against loopback listeners ----------------

// mssqlConnect runs the real driver's Connect against addr and returns its
// error. The DSN carries a password only to exercise the driver; it is not
// a secret.
func mssqlConnect(t *testing.T, ctx context.Context, addr, extra string) error {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	c, err := mssql.NewConnector(fmt.Sprintf("sqlserver://sa:x@%s:%s?encrypt=disable&dial+timeout=2%s", host, port, extra))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err == nil {
		conn.Close()
		t.Fatal("connect succeeded")
	}
	return err
}

func TestMSSQLRealConnectErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("real/mssql connect: server RSTs after PRELOGIN arrives", func(t *testing.T) {
		err := mssqlConnect(t, ctx, nettest.ServeOnce(t, nettest.RSTAfterByte), "")
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Lost) // raw read error: the driver does not mark connect errors
		expect(t, &detect.ConnectError{Err: err}, detect.LostUnsent)
	})
	t.Run("real/mssql connect: server FINs", func(t *testing.T) {
		err := mssqlConnect(t, ctx, nettest.ServeOnce(t, func(c net.Conn) { c.Close() }), "")
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Lost)
		expect(t, &detect.ConnectError{Err: err}, detect.LostUnsent)
	})
	t.Run("real/mssql connect: refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		err = mssqlConnect(t, ctx, addr, "")
		t.Logf("%T: %v", err, err)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("want ECONNREFUSED in chain, got %v", err)
		}
		expect(t, err, detect.LostUnsent)
	})
	t.Run("real/mssql connect: silent server, connection timeout", func(t *testing.T) {
		// PRELOGIN ignores the context (docs/drivers.md); the per-read deadline
		// of "connection timeout" is what ends it.
		release := make(chan struct{})
		defer close(release)
		addr := nettest.ServeOnce(t, func(c net.Conn) { <-release; c.Close() })
		err := mssqlConnect(t, ctx, addr, "&connection+timeout=1")
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Lost)
	})
	t.Run("real/mssql connect: login failed 18456", func(t *testing.T) {
		srv := newFakeTDS(t, func(req tdsRequest) []byte { return nil })
		srv.loginReply = append(tdsError(18456, 14, "Login failed for user 'sa'."), tdsDone(doneError, 0)...)
		err := mssqlConnect(t, ctx, srv.addr, "")
		t.Logf("%T: %v", err, err)
		var me mssql.Error
		if !errors.As(err, &me) || me.Number != 18456 {
			t.Fatalf("want mssql.Error 18456, got %v", err)
		}
		expect(t, err, detect.Alive)
		expect(t, &detect.ConnectError{Err: err}, detect.Alive)
	})
}

func TestMSSQLRealSessionErrors(t *testing.T) {
	t.Run("real/mssql exec: 2627 unique violation", func(t *testing.T) {
		srv := newFakeTDS(t, func(req tdsRequest) []byte {
			return append(tdsError(2627, 14, "Violation of PRIMARY KEY constraint"), tdsDone(doneError, 0)...)
		})
		db, _ := srv.open(t, "")
		_, err := db.ExecContext(context.Background(), "INSERT t VALUES (1)")
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Alive)
	})
	t.Run("real/mssql exec: 1205 deadlock victim", func(t *testing.T) {
		srv := newFakeTDS(t, func(req tdsRequest) []byte {
			return append(tdsError(1205, 13, "Transaction was deadlocked"), tdsDone(doneError, 0)...)
		})
		db, _ := srv.open(t, "")
		_, err := db.ExecContext(context.Background(), "UPDATE t SET a=1")
		expect(t, err, detect.Alive)
	})
	t.Run("real/mssql exec: fatal 596 -> ServerError", func(t *testing.T) {
		srv := newFakeTDS(t, func(req tdsRequest) []byte {
			return append(tdsError(596, 21, "Cannot continue the execution because the session is in the kill state."),
				tdsDone(doneError|doneSrvError, 0)...)
		})
		db, _ := srv.open(t, "")
		_, err := db.ExecContext(context.Background(), "UPDATE t SET a=1")
		t.Logf("%T: %v", err, err)
		var se mssql.ServerError
		if !errors.As(err, &se) {
			t.Fatalf("want mssql.ServerError, got %T %v", err, err)
		}
		expect(t, err, detect.Lost)
	})
	t.Run("real/mssql exec: our socket closed before send -> RetryableError", func(t *testing.T) {
		srv := newFakeTDS(t, func(req tdsRequest) []byte { return tdsDone(0, 1) })
		db, dialer := srv.open(t, "")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		dialer.closeAll() // what Pool.Sever does
		_, err = conn.ExecContext(context.Background(), "INSERT t VALUES (1)")
		t.Logf("%T: %v", err, err)
		var re mssql.RetryableError
		if !errors.As(err, &re) || !errors.Is(err, driver.ErrBadConn) {
			t.Fatalf("want mssql.RetryableError, got %T %v", err, err)
		}
		expect(t, err, detect.LostUnsent)
		if n := srv.requests(); n != 1 {
			t.Fatalf("server saw %d requests, want 1: the second must not have arrived", n)
		}
	})
	t.Run("real/mssql exec: server RSTs while the statement runs", func(t *testing.T) {
		srv := newFakeTDS(t, nil)
		srv.onRequest = func(c net.Conn, req tdsRequest) bool {
			if req.n == 2 {
				nettest.RST(c)
				return false
			}
			return true
		}
		srv.reply = func(tdsRequest) []byte { return tdsDone(0, 1) }
		db, _ := srv.open(t, "")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(context.Background(), "INSERT t VALUES (1)")
		t.Logf("%T: %v", err, err)
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
			t.Fatalf("want a reset/EOF read error, got %T %v", err, err)
		}
		expect(t, err, detect.Lost)
	})
	t.Run("real/mssql exec: server FINs while the statement runs", func(t *testing.T) {
		srv := newFakeTDS(t, nil)
		srv.onRequest = func(c net.Conn, req tdsRequest) bool {
			if req.n == 2 {
				c.Close()
				return false
			}
			return true
		}
		srv.reply = func(tdsRequest) []byte { return tdsDone(0, 1) }
		db, _ := srv.open(t, "")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(context.Background(), "INSERT t VALUES (1)")
		t.Logf("%T: %v", err, err)
		expect(t, err, detect.Lost)
	})
	t.Run("real/mssql exec: caller deadline, server confirms ATTENTION", func(t *testing.T) {
		srv := newFakeTDS(t, func(req tdsRequest) []byte {
			if req.typ == tdsAttention {
				return tdsDone(doneAttn, 0)
			}
			if req.n == 1 {
				return tdsDone(0, 1)
			}
			return nil // the statement "runs" until cancelled
		})
		db, _ := srv.open(t, "")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, "WAITFOR DELAY '00:01'")
		t.Logf("%T: %v", err, err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want context.DeadlineExceeded, got %T %v", err, err)
		}
		expect(t, err, detect.Alive)
	})
	t.Run("real/mssql exec: caller deadline, ATTENTION never confirmed -> StreamError", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for go-mssqldb's 5 s cancelDrainTimeout (token.go:118)")
		}
		srv := newFakeTDS(t, func(req tdsRequest) []byte {
			if req.n == 1 {
				return tdsDone(0, 1)
			}
			return nil // silent, like a blackholed path
		})
		db, _ := srv.open(t, "")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = conn.ExecContext(ctx, "WAITFOR DELAY '00:01'")
		t.Logf("after %v: %T: %v", time.Since(start).Round(time.Millisecond), err, err)
		var se mssql.StreamError
		if !errors.As(err, &se) {
			t.Fatalf("want mssql.StreamError, got %T %v", err, err)
		}
		expect(t, err, detect.Lost)
	})
}

// --- a minimal TDS responder: PRELOGIN, LOGIN7, then scripted replies -----

const (
	tdsReply     = 4
	tdsAttention = 6
	tdsPrelogin  = 18

	doneError    = 0x0002
	doneAttn     = 0x0020
	doneSrvError = 0x0100
)

type tdsRequest struct {
	n   int  // 1 for the first request after login
	typ byte // TDS packet type
}

type fakeTDS struct {
	addr       string
	loginReply []byte                          // default: LOGINACK + DONE
	reply      func(tdsRequest) []byte         // tokens to send back; nil = stay silent
	onRequest  func(net.Conn, tdsRequest) bool // optional; false = stop serving
	mu         sync.Mutex                      // protects following fields
	nreq       int
}

func newFakeTDS(t *testing.T, reply func(tdsRequest) []byte) *fakeTDS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeTDS{addr: ln.Addr().String(), reply: reply, loginReply: append(tdsLoginAck(), tdsDone(0, 0)...)}
	var wg sync.WaitGroup
	var conns []net.Conn
	var cmu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *fakeTDS) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nreq
}

func (s *fakeTDS) serve(c net.Conn) {
	defer c.Close()
	typ, _, err := readTDSMessage(c)
	if err != nil || typ != tdsPrelogin {
		return
	}
	// PRELOGIN reply: VERSION (6 bytes) and ENCRYPTION = NOT_SUP (2).
	pl := []byte{0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xFF, 16, 0, 0, 0, 0, 0, 2}
	if writeTDS(c, pl) != nil {
		return
	}
	if _, _, err := readTDSMessage(c); err != nil { // LOGIN7
		return
	}
	if writeTDS(c, s.loginReply) != nil {
		return
	}
	for {
		typ, _, err := readTDSMessage(c)
		if err != nil {
			return
		}
		s.mu.Lock()
		if typ != tdsAttention {
			s.nreq++
		}
		req := tdsRequest{n: s.nreq, typ: typ}
		s.mu.Unlock()
		if s.onRequest != nil && !s.onRequest(c, req) {
			return
		}
		if s.reply == nil {
			continue
		}
		if toks := s.reply(req); toks != nil {
			if writeTDS(c, toks) != nil {
				return
			}
		}
	}
}

// trackingDialer records the sockets it dials so a test can close them from
// our side, as Pool.Sever does.
type trackingDialer struct {
	mu    sync.Mutex // protects following fields
	conns []net.Conn
}

func (d *trackingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

func (d *trackingDialer) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}

func (s *fakeTDS) open(t *testing.T, extra string) (*sql.DB, *trackingDialer) {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	c, err := mssql.NewConnector(fmt.Sprintf("sqlserver://sa:x@%s:%s?encrypt=disable&dial+timeout=2%s", host, port, extra))
	if err != nil {
		t.Fatal(err)
	}
	d := &trackingDialer{}
	c.Dialer = d
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, d
}

func readTDSMessage(c net.Conn) (typ byte, body []byte, err error) {
	hdr := make([]byte, 8)
	for {
		if _, err = io.ReadFull(c, hdr); err != nil {
			return 0, nil, err
		}
		n := int(binary.BigEndian.Uint16(hdr[2:4]))
		if n < 8 {
			return 0, nil, errors.New("bad TDS length")
		}
		b := make([]byte, n-8)
		if _, err = io.ReadFull(c, b); err != nil {
			return 0, nil, err
		}
		typ = hdr[0]
		body = append(body, b...)
		if hdr[1]&0x01 != 0 { // end of message
			return typ, body, nil
		}
	}
}

func writeTDS(c net.Conn, body []byte) error {
	p := make([]byte, 8, 8+len(body))
	p[0], p[1] = tdsReply, 0x01
	binary.BigEndian.PutUint16(p[2:], uint16(8+len(body)))
	p[6] = 1
	_, err := c.Write(append(p, body...))
	return err
}

func ucs2(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

func tdsLoginAck() []byte {
	prog := "fake"
	body := []byte{1, 0x74, 0x00, 0x00, 0x04, byte(len(prog))}
	body = append(body, ucs2(prog)...)
	body = append(body, 1, 0, 0, 0)
	tok := []byte{0xAD, 0, 0}
	binary.LittleEndian.PutUint16(tok[1:], uint16(len(body)))
	return append(tok, body...)
}

func tdsDone(status uint16, rows uint64) []byte {
	b := make([]byte, 13)
	b[0] = 0xFD
	binary.LittleEndian.PutUint16(b[1:], status)
	binary.LittleEndian.PutUint64(b[5:], rows)
	return b
}

func tdsError(number int32, class uint8, msg string) []byte {
	var body []byte
	body = binary.LittleEndian.AppendUint32(body, uint32(number))
	body = append(body, 1, class)
	body = binary.LittleEndian.AppendUint16(body, uint16(len(utf16.Encode([]rune(msg)))))
	body = append(body, ucs2(msg)...)
	srv := "fake"
	body = append(body, byte(len(srv)))
	body = append(body, ucs2(srv)...)
	body = append(body, 0)                           // proc name
	body = binary.LittleEndian.AppendUint32(body, 1) // line
	tok := []byte{0xAA, 0, 0}
	binary.LittleEndian.PutUint16(tok[1:], uint16(len(body)))
	return append(tok, body...)
}

// --- cost: Default runs on every failed query -------------------------------

func TestDefaultNoAlloc(t *testing.T) {
	errs := map[string]error{
		"mssql.Error":            mssql.Error{Number: 2627, Class: 14, Message: "Violation of PRIMARY KEY constraint"},
		"wrapped mssql.Error":    fmt.Errorf("insert: %w", mssql.Error{Number: 2627, Class: 14}),
		"plain":                  errors.New("boom"),
		"joined read reset":      errors.Join(errors.New("a"), &net.OpError{Op: "read", Err: syscall.ECONNRESET}),
		"RetryableError":         mssql.RetryableError{},
		"context.DeadlineExceed": context.DeadlineExceeded,
	}
	for name, err := range errs {
		if n := testing.AllocsPerRun(100, func() { detect.Classify(err, classifier) }); n != 0 {
			t.Errorf("%s: %v allocations per Classify, want 0", name, n)
		}
		if n := testing.AllocsPerRun(100, func() { detect.Classify(err, classifier) }); n != 0 {
			t.Errorf("Classify %s: %v allocations, want 0", name, n)
		}
	}
}

func BenchmarkDefaultSQLError(b *testing.B) {
	err := error(fmt.Errorf("insert: %w", mssql.Error{Number: 2627, Class: 14, Message: "Violation of PRIMARY KEY constraint"}))
	b.ReportAllocs()
	for b.Loop() {
		if detect.Classify(err, classifier) != detect.Alive {
			b.Fatal("wrong verdict")
		}
	}
}

func BenchmarkDefaultNetError(b *testing.B) {
	err := error(&net.OpError{Op: "read", Net: "tcp", Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}})
	b.ReportAllocs()
	for b.Loop() {
		if detect.Classify(err, classifier) != detect.Lost {
			b.Fatal("wrong verdict")
		}
	}
}

func expect(t *testing.T, err error, want detect.Verdict) {
	t.Helper()
	if got := detect.Classify(err, classifier); got != want {
		t.Fatalf("Classify(%T %v) = %v, want %v", err, err, got, want)
	}
}
