package tdsserver

import (
	"encoding/binary"
	"unicode/utf16"
)

// wbuf builds a reply payload; all integers are little-endian unless a
// method says otherwise.
type wbuf struct{ b []byte }

func (w *wbuf) u8(v byte)    { w.b = append(w.b, v) }
func (w *wbuf) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *wbuf) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *wbuf) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *wbuf) raw(p []byte) { w.b = append(w.b, p...) }

// ucs2 appends s as UTF-16LE, at most maxUnits code units.
func (w *wbuf) ucs2(s string, maxUnits int) int {
	units := utf16.Encode([]rune(s))
	if len(units) > maxUnits {
		units = units[:maxUnits]
	}
	for _, u := range units {
		w.u16(u)
	}
	return len(units)
}

// bvarchar appends a B_VARCHAR: a length byte in characters, then UTF-16LE.
// Longer strings are cut at 255 code units.
func (w *wbuf) bvarchar(s string) {
	at := len(w.b)
	w.u8(0)
	w.b[at] = byte(w.ucs2(s, 0xff))
}

// usvarchar appends a US_VARCHAR (16-bit length in characters), cut at max units.
func (w *wbuf) usvarchar(s string, maxUnits int) {
	at := len(w.b)
	w.u16(0)
	n := w.ucs2(s, maxUnits)
	binary.LittleEndian.PutUint16(w.b[at:], uint16(n))
}

// beginLen16 reserves a 16-bit length; endLen16 fills it with the number of
// bytes written since.
func (w *wbuf) beginLen16() int { w.u16(0); return len(w.b) }
func (w *wbuf) endLen16(at int) {
	binary.LittleEndian.PutUint16(w.b[at-2:], uint16(len(w.b)-at))
}

// rbuf reads a request payload. Every read is bounds-checked; the first
// shortfall sets err and later reads return zero values, so a parser can run
// to its end and check err once. Nothing is allocated from a length that the
// remaining bytes cannot back.
type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) fail(what string) {
	if r.err == nil {
		r.err = protocolErrorf("truncated %s", what)
	}
}

func (r *rbuf) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(what)
		r.b = nil
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *rbuf) u8(what string) byte {
	if p := r.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (r *rbuf) u16(what string) uint16 {
	if p := r.take(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *rbuf) u32(what string) uint32 {
	if p := r.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *rbuf) u64(what string) uint64 {
	if p := r.take(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// ucs2 reads n UTF-16LE code units.
func (r *rbuf) ucs2(n int, what string) string {
	return decodeUCS2(r.take(2*n, what))
}

func (r *rbuf) bvarchar(what string) string { return r.ucs2(int(r.u8(what)), what) }

// skipAllHeaders skips the ALL_HEADERS block that starts every SQLBatch, RPC
// and transaction manager request since TDS 7.2 (go-mssqldb writeAllHeaders,
// tds.go:941).
func (r *rbuf) skipAllHeaders() {
	total := r.u32("ALL_HEADERS")
	if r.err == nil && total < 4 {
		r.err = protocolErrorf("ALL_HEADERS length %d", total)
		return
	}
	r.take(int(min(total-4, uint32(len(r.b))+1)), "ALL_HEADERS")
}

func decodeUCS2(p []byte) string {
	units := make([]uint16, len(p)/2)
	for i := range units {
		units[i] = binary.LittleEndian.Uint16(p[2*i:])
	}
	return string(utf16.Decode(units))
}
