package tdsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Packet types (MS-TDS 2.2.3.1.1), the ones go-mssqldb sends (tds.go:130).
const (
	packSQLBatch  byte = 1
	packRPC       byte = 3
	packReply     byte = 4
	packAttention byte = 6
	packTransMgr  byte = 14
	packLogin7    byte = 16
	packPrelogin  byte = 18
)

// Packet header status bits (MS-TDS 2.2.3.1.2).
const (
	statusEOM               byte = 0x01
	statusResetConn         byte = 0x08
	statusResetConnSkipTran byte = 0x10
)

const (
	headerLen = 8
	// minPacketSize and maxPacketSize are the bounds go-mssqldb clamps its
	// requested packet size to (tds.go:1180).
	minPacketSize = 512
	maxPacketSize = 32767
	// defaultMaxMessage bounds one request (all packets of one message).
	defaultMaxMessage = 4 << 20
)

// errProtocol marks input that no correct client sends; the session that
// sent it is closed without an answer.
var errProtocol = errors.New("tdsserver: protocol violation")

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// message is one TDS message: the payload of one or more packets of one
// type, the last of which has the EOM status bit.
type message struct {
	typ   byte
	reset bool // RESETCONNECTION (or its skip-tran variant) on the first packet
	data  []byte
}

// readMessage reads packets until EOM. A packet longer than maxPacket, a
// type change inside a message, or a message longer than maxMessage is a
// protocol violation; memory grows only by packets actually received.
func readMessage(r io.Reader, maxPacket, maxMessage int) (message, error) {
	var (
		m     message
		hdr   [headerLen]byte
		first = true
	)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return m, err
		}
		typ, status := hdr[0], hdr[1]
		size := int(binary.BigEndian.Uint16(hdr[2:4]))
		if size < headerLen || size > maxPacket {
			return m, protocolErrorf("packet length %d outside %d..%d", size, headerLen, maxPacket)
		}
		if first {
			m.typ = typ
			m.reset = status&(statusResetConn|statusResetConnSkipTran) != 0
			first = false
		} else if typ != m.typ {
			return m, protocolErrorf("packet type %d inside a message of type %d", typ, m.typ)
		}
		n := size - headerLen
		if len(m.data)+n > maxMessage {
			return m, protocolErrorf("message longer than %d bytes", maxMessage)
		}
		start := len(m.data)
		m.data = append(m.data, make([]byte, n)...)
		if _, err := io.ReadFull(r, m.data[start:]); err != nil {
			return m, err
		}
		if status&statusEOM != 0 {
			return m, nil
		}
	}
}

// encodeMessage splits payload into packets of at most packetSize bytes,
// each carrying spid, numbered from 1, the last one marked EOM, and returns
// them as one buffer so that a reply leaves in a single write.
func encodeMessage(typ byte, spid uint16, packetSize int, payload []byte) []byte {
	room := packetSize - headerLen
	npk := max(1, (len(payload)+room-1)/room)
	out := make([]byte, 0, len(payload)+npk*headerLen)
	id := byte(1)
	for {
		n := min(len(payload), room)
		status := byte(0)
		if n == len(payload) {
			status = statusEOM
		}
		out = append(out, typ, status, 0, 0, 0, 0, id, 0)
		h := out[len(out)-headerLen:]
		binary.BigEndian.PutUint16(h[2:4], uint16(headerLen+n))
		binary.BigEndian.PutUint16(h[4:6], spid)
		out = append(out, payload[:n]...)
		payload = payload[n:]
		if status == statusEOM {
			return out
		}
		id++ // wraps at 256, as the spec allows
	}
}
