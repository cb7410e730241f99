package tdsserver

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// seedMessages returns well-formed and broken client streams that follow a
// valid PRELOGIN.
func seedMessages() [][]byte {
	login := encodeMessage(packLogin7, 0, 4096, login7Payload("sa", "test", 512))
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	batch := func(sql string) []byte { return encodeMessage(packSQLBatch, 0, 512, batchPayload(sql)) }
	rpc := func(params []byte) []byte {
		var w wbuf
		w.u32(4)
		w.u16(0xFFFF)
		w.u16(procExecuteSQL)
		w.u16(0)
		w.raw(params)
		return encodeMessage(packRPC, 0, 512, w.b)
	}
	var good wbuf // @stmt, @params, @p1 int
	for _, s := range []string{"INSERT INTO t (id) VALUES (@p1)", "@p1 bigint"} {
		good.u8(0)
		good.u8(0)
		good.u8(0xE7)
		good.u16(8000)
		good.raw(collation)
		good.u16(uint16(2 * len(s)))
		good.raw(ucs2(s))
	}
	good.bvarchar("@p1")
	good.u8(0)
	good.raw([]byte{0x26, 8, 8, 1, 0, 0, 0, 0, 0, 0, 0})
	hugePLP := []byte{0, 0, 0xE7, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}
	badLogin := login7Payload("sa", "test", 4096)
	binary.LittleEndian.PutUint16(badLogin[40:], 0xFFF0) // user name offset outside the message
	attn := encodeMessage(packAttention, 0, 512, nil)
	return [][]byte{
		cat(login, batch("select 1"), rpc(good.b), batch("SELECT COUNT(*) FROM t")),
		cat(login, batch("WAITFOR DELAY '00:00:30'"), attn, batch("select @@spid")),
		cat(login, rpc(hugePLP)),
		cat(login, rpc([]byte{0xFF, 0xFF, 0xFF})),
		cat(login, attn, attn, attn, attn, attn, attn, attn, attn, attn, attn, attn),
		encodeMessage(packLogin7, 0, 4096, badLogin),
		{packSQLBatch, 1, 0xFF, 0xFF, 0, 0, 1, 0},
		{packLogin7, 0, 0, 8, 0, 0, 1, 0, packLogin7, 0, 0, 8},
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{},
	}
}

// FuzzSession feeds arbitrary bytes after a valid PRELOGIN. The server must
// neither panic (which would crash this test binary) nor keep the session
// once the client has gone.
func FuzzSession(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	srv := New(Config{MaxMessageSize: 1 << 16})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	addr := srv.Addr().String()

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(encodeMessage(packPrelogin, 0, 4096, preloginPayload())); err != nil {
			t.Fatal(err)
		}
		rc := &rawClient{t: t, c: c}
		if p, _ := rc.recv(); checkPrelogin(p) != nil {
			t.Fatalf("bad PRELOGIN reply % x", p)
		}
		_, _ = c.Write(data) // the server may already have closed on a prefix
		_ = c.(*net.TCPConn).CloseWrite()
		buf := make([]byte, 1<<16)
		for {
			if _, err := c.Read(buf); err != nil {
				break // EOF, or reset by a server that closed with input unread
			}
		}
		waitFor(t, "the session to end after the client left", 5*time.Second,
			func() bool { return srv.SessionCount() == 0 })
	})
}

// FuzzParsers drives the message parsers directly, which finds panics much
// faster than going through sockets.
func FuzzParsers(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Add(login7Payload("sa", "db", 4096))
	f.Add(batchPayload("select 1"))
	f.Fuzz(func(t *testing.T, p []byte) {
		_ = checkPrelogin(p)
		_, _ = parseLogin7(p)
		_, _ = parseBatch(p)
		_, _ = parseRPC(p)
		_, _ = parseTransMgr(p)
	})
}
