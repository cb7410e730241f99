package mssqladapter

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"time"
)

// TDS packet header (MS-TDS 2.2.3.1): type, status, length (big-endian,
// header included), SPID (big-endian), packet id, window.
const (
	tdsHeaderLen    = 8
	tdsReplyType    = 0x04 // tabular result: every server response
	tdsPreloginType = 0x12 // the PRELOGIN response, and TLS handshake records inside it
	tdsMaxPacket    = 32767
	sniffMaxBytes   = 1 << 16 // give up if no SPID came within the login's worth of bytes
)

// watchSocket returns a wrapper that reads the SPID from the headers of the
// packets the server sends while the connection logs in. SQL Server puts
// the session's SPID in every response header (MS-TDS 2.2.3.1.4);
// go-mssqldb parses it and throws it away (buf.go:164-170), so the pool
// read it with a query at connect (one round trip plain does not make).
//
// The wrapper follows the packet framing from the first byte the server
// sends and takes the SPID from the first well-formed response packet
// (type 0x04) that carries one. Anything that is not TDS framing (TLS
// records: encrypt=true or strict after the handshake) ends the watch
// without a result, and the pool asks SessionQuery as before: that is the
// case where the query stays. Once done it costs one branch per Read.
func watchSocket(_ context.Context, c net.Conn, found func(int64, string)) net.Conn {
	return &spidWatch{Conn: c, found: found}
}

type spidWatch struct {
	net.Conn
	found func(int64, string)
	done  bool
	seen  int                // bytes looked at
	skip  int                // body bytes of the current packet still to pass
	hdr   [tdsHeaderLen]byte // a header being collected
	have  int
}

func (w *spidWatch) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if !w.done && n > 0 {
		w.scan(b[:n])
	}
	return n, err
}

func (w *spidWatch) scan(b []byte) {
	w.seen += len(b)
	for len(b) > 0 && !w.done {
		if w.skip > 0 {
			k := min(w.skip, len(b))
			w.skip -= k
			b = b[k:]
			continue
		}
		k := copy(w.hdr[w.have:], b)
		w.have += k
		b = b[k:]
		if w.have < tdsHeaderLen {
			break
		}
		w.have = 0
		typ := w.hdr[0]
		length := int(binary.BigEndian.Uint16(w.hdr[2:4]))
		spid := binary.BigEndian.Uint16(w.hdr[4:6])
		if typ != tdsReplyType && typ != tdsPreloginType || length < tdsHeaderLen || length > tdsMaxPacket {
			w.done = true // not TDS framing (TLS): the pool asks instead
			return
		}
		if typ == tdsReplyType && spid != 0 {
			w.done = true
			w.found(int64(spid), "")
			return
		}
		w.skip = length - tdsHeaderLen
	}
	if w.seen > sniffMaxBytes {
		w.done = true
	}
}

// sessionCheck counts the sessions with id that started at least minAge
// ago (by the server's clock) and, with a fingerprint (from SessionQuery:
// connect_time and client port), that fingerprint. SQL Server reuses a
// SPID at once, so without a fingerprint the start time tells a later
// session with the same SPID apart: one that started after our
// connection cannot be its orphan.
func sessionCheck(id int64, fp string, minAge time.Duration) string {
	q := "SELECT COUNT(*) FROM sys.dm_exec_connections c WHERE c.session_id = " + strconv.FormatInt(id, 10)
	if fp == "" {
		return q + " AND c.connect_time <= DATEADD(millisecond, -" + strconv.FormatInt(minAge.Milliseconds(), 10) + ", GETDATE())"
	}
	return q + " AND CONVERT(varchar(30), c.connect_time, 126) + '|' + CAST(c.client_tcp_port AS varchar(10)) = " + fp
}
