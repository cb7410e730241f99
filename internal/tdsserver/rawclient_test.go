package tdsserver

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// rawClient speaks TDS by hand, for what the driver cannot be made to do
// (idle ATTENTION, checking packet headers, garbage).
type rawClient struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, srv *Server) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, c: c}
}

// send writes payload as one message of packets of at most packetSize bytes.
func (rc *rawClient) send(typ, status byte, packetSize int, payload []byte) {
	rc.t.Helper()
	out := encodeMessage(typ, 0, packetSize, payload)
	out[1] |= status
	if _, err := rc.c.Write(out); err != nil {
		rc.t.Fatal(err)
	}
}

type rawHeader struct {
	typ, status byte
	size        int
	spid        int
	id          byte
}

// recv reads one message and returns its payload and packet headers.
func (rc *rawClient) recv() ([]byte, []rawHeader) {
	rc.t.Helper()
	var payload []byte
	var hdrs []rawHeader
	for {
		var h [headerLen]byte
		if _, err := readFull(rc.c, h[:]); err != nil {
			rc.t.Fatalf("reading header: %v", err)
		}
		rh := rawHeader{typ: h[0], status: h[1], size: int(binary.BigEndian.Uint16(h[2:])),
			spid: int(binary.BigEndian.Uint16(h[4:])), id: h[6]}
		hdrs = append(hdrs, rh)
		body := make([]byte, rh.size-headerLen)
		if _, err := readFull(rc.c, body); err != nil {
			rc.t.Fatalf("reading body: %v", err)
		}
		payload = append(payload, body...)
		if rh.status&statusEOM != 0 {
			return payload, hdrs
		}
	}
}

func readFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// login performs PRELOGIN and LOGIN7 asking for packetSize.
func (rc *rawClient) login(packetSize int) {
	rc.t.Helper()
	rc.send(packPrelogin, 0, 4096, preloginPayload())
	if p, _ := rc.recv(); checkPrelogin(p) != nil {
		rc.t.Fatalf("bad PRELOGIN reply % x", p)
	}
	rc.send(packLogin7, 0, 4096, login7Payload("sa", "test", packetSize))
	p, _ := rc.recv()
	if st := lastDoneStatus(p); st != doneFinal {
		rc.t.Fatalf("login DONE status %#x", st)
	}
}

func preloginPayload() []byte {
	// VERSION (6 bytes) and ENCRYPTION (1 byte, not supported), terminator.
	return []byte{
		0, 0, 11, 0, 6,
		1, 0, 17, 0, 1,
		0xFF,
		1, 2, 3, 4, 0, 0,
		encryptNotSup,
	}
}

func ucs2(s string) []byte {
	var w wbuf
	w.ucs2(s, 1<<20)
	return w.b
}

// login7Payload builds a LOGIN7 like go-mssqldb's sendLogin (tds.go:640).
func login7Payload(user, database string, packetSize int) []byte {
	fields := [][]byte{ucs2("host"), ucs2(user), {0xA5, 0xB5}, ucs2("app"), ucs2("srv"), nil, ucs2("raw"), nil, ucs2(database)}
	p := make([]byte, login7FixedLen)
	binary.LittleEndian.PutUint32(p[4:], 0x74000004)
	binary.LittleEndian.PutUint32(p[8:], uint32(packetSize))
	off := login7FixedLen
	for i, f := range fields {
		at := 36 + 4*i
		binary.LittleEndian.PutUint16(p[at:], uint16(off))
		binary.LittleEndian.PutUint16(p[at+2:], uint16(len(f)/2))
		off += len(f)
	}
	for _, at := range []int{78, 82, 86} { // SSPI, AtchDBFile, ChangePassword: empty
		binary.LittleEndian.PutUint16(p[at:], uint16(off))
	}
	for _, f := range fields {
		p = append(p, f...)
	}
	binary.LittleEndian.PutUint32(p[0:], uint32(len(p)))
	return p
}

// batchPayload is ALL_HEADERS (transaction descriptor) plus the UCS-2 text.
func batchPayload(sql string) []byte {
	var w wbuf
	w.u32(22)
	w.u32(18)
	w.u16(2)
	w.u64(0)
	w.u32(1)
	w.raw(ucs2(sql))
	return w.b
}

// lastDoneStatus returns the status of the DONE token that ends a reply.
func lastDoneStatus(p []byte) uint16 {
	if len(p) < 13 || (p[len(p)-13] != tokDone && p[len(p)-13] != tokDoneProc) {
		return 0xFFFF
	}
	return binary.LittleEndian.Uint16(p[len(p)-12:])
}
