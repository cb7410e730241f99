package tdsserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// countingListener is a net.Listener of another type than *net.TCPListener,
// as the lab's namespace listener may be.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func TestServeAnyListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	srv := New(Config{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	waitFor(t, "Serve to register", 5*time.Second, func() bool { return srv.Addr() != nil })

	db := openDB(t, srv, "")
	if err := db.PingContext(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ln.accepted.Load() != 1 {
		t.Fatalf("accepted %d conns through the custom listener", ln.accepted.Load())
	}
	_ = db.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	if err := srv.Start("127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	_ = srv.Close() // idempotent
}

// TestCloseLeavesNoGoroutines closes a server with a running query, a
// frozen session, an idle session and a hung connection, and checks that
// no goroutine of the server (or of the driver's conns) is left.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	srv := New(Config{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlserver", srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frozen, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := frozen.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	running, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(ctx); err != nil { // a third, idle session
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := running.ExecContext(ctx, "WAITFOR DELAY '00:01:00'")
		done <- err
	}()
	waitBusy(t, srv)
	srv.HangAfterAccept(true)
	raw, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	waitFor(t, "the hung connection", 5*time.Second, func() bool { return srv.HungConns() == 1 })

	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close with %d sessions took %v", 3, time.Since(start))
	if err := <-done; err == nil {
		t.Fatal("running query survived Close")
	}
	if srv.SessionCount() != 0 || srv.HungConns() != 0 {
		t.Fatalf("after Close: %d sessions, %d hung", srv.SessionCount(), srv.HungConns())
	}
	_ = running.Close()
	_ = frozen.Close()
	_ = db.Close()
	goleak.VerifyNone(t, ignore)
}

func TestReadMessageBounds(t *testing.T) {
	packet := func(typ, status byte, size int, body int) []byte {
		p := []byte{typ, status, byte(size >> 8), byte(size), 0, 0, 1, 0}
		return append(p, make([]byte, body)...)
	}
	cases := []struct {
		name  string
		in    []byte
		proto bool
	}{
		{"short length", packet(1, 1, 7, 0), true},
		{"longer than the packet size", packet(1, 1, 600, 592), true},
		{"type change", append(packet(1, 0, 10, 2), packet(3, 1, 10, 2)...), true},
		{"message too long", append(packet(1, 0, 512, 504), packet(1, 1, 512, 504)...), true},
		{"truncated body", packet(1, 1, 100, 10), false},
		{"ok, two packets", append(packet(1, 0, 10, 2), packet(1, 1, 12, 4)...), false},
	}
	for _, c := range cases {
		m, err := readMessage(bytes.NewReader(c.in), 512, 600)
		if c.proto != errors.Is(err, errProtocol) {
			t.Errorf("%s: err = %v, protocol violation expected: %v", c.name, err, c.proto)
		}
		if c.name == "ok, two packets" && (err != nil || len(m.data) != 6 || m.typ != 1) {
			t.Errorf("%s: %+v, %v", c.name, m, err)
		}
	}
}
