package mssqladapter

import (
	"encoding/binary"
	"testing"
)

func tdsPacket(typ byte, spid uint16, body int) []byte {
	p := make([]byte, 8+body)
	p[0], p[1] = typ, 1
	binary.BigEndian.PutUint16(p[2:4], uint16(8+body))
	binary.BigEndian.PutUint16(p[4:6], spid)
	return p
}

func TestSPIDWatch(t *testing.T) {
	var stream []byte
	stream = append(stream, tdsPacket(tdsPreloginType, 0, 30)...) // PRELOGIN response: no SPID
	stream = append(stream, tdsPacket(tdsReplyType, 57, 100)...)  // login response
	for _, step := range []int{1, 3, 7, 8, 64, len(stream)} {
		var got []int64
		w := &spidWatch{found: func(id int64, fp string) { got = append(got, id) }}
		for b := stream; len(b) > 0; {
			k := min(step, len(b))
			w.scan(b[:k])
			b = b[k:]
		}
		if len(got) != 1 || got[0] != 57 {
			t.Errorf("reads of %d bytes: found %v; want [57] once", step, got)
		}
	}
	// TLS records after the handshake (encrypt=true): not TDS framing, so
	// the watch ends without a SPID (the pool then asks).
	tls := append(tdsPacket(tdsPreloginType, 0, 10), 0x17, 0x03, 0x03, 0x00, 0x40, 0x33, 0x44, 0x55)
	called := false
	w := &spidWatch{found: func(int64, string) { called = true }}
	w.scan(tls)
	if called || !w.done {
		t.Fatalf("TLS after PRELOGIN: found called=%v done=%v; want no SPID and the watch ended", called, w.done)
	}
}
