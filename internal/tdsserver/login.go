package tdsserver

import (
	"encoding/binary"
	"strconv"
)

// PRELOGIN option tokens (MS-TDS 2.2.6.5, tds.go:147).
const (
	preVersion    byte = 0
	preEncryption byte = 1
	preInstOpt    byte = 2
	preThreadID   byte = 3
	preMARS       byte = 4
	preTerminator byte = 0xFF

	encryptNotSup byte = 2
)

// checkPrelogin validates the option table of a PRELOGIN request: every
// option's data must lie inside the message and the table must end in a
// terminator. The values themselves are not needed.
func checkPrelogin(p []byte) error {
	for off := 0; ; off += 5 {
		if off >= len(p) {
			return protocolErrorf("PRELOGIN without terminator")
		}
		if p[off] == preTerminator {
			return nil
		}
		if off+5 > len(p) {
			return protocolErrorf("truncated PRELOGIN option")
		}
		o := int(binary.BigEndian.Uint16(p[off+1:]))
		n := int(binary.BigEndian.Uint16(p[off+3:]))
		if o+n > len(p) {
			return protocolErrorf("PRELOGIN option %d outside the message", p[off])
		}
	}
}

// preloginReply answers with encryption not supported, so go-mssqldb skips
// TLS (tds.go:1228) unless the DSN demands it, in which case the client
// itself fails with "server does not support encryption" (tds.go:1090).
func preloginReply() []byte {
	opts := []struct {
		tok  byte
		data []byte
	}{
		{preVersion, []byte{16, 0, 0x03, 0xE8, 0, 0}}, // 16.0.1000, like SQL Server 2022
		{preEncryption, []byte{encryptNotSup}},
		{preInstOpt, []byte{0}},
		{preThreadID, []byte{0, 0, 0, 0}},
		{preMARS, []byte{0}},
	}
	var w wbuf
	off := len(opts)*5 + 1
	for _, o := range opts {
		w.u8(o.tok)
		w.b = binary.BigEndian.AppendUint16(w.b, uint16(off))
		w.b = binary.BigEndian.AppendUint16(w.b, uint16(len(o.data)))
		off += len(o.data)
	}
	w.u8(preTerminator)
	for _, o := range opts {
		w.raw(o.data)
	}
	return w.b
}

// loginRequest is what the server keeps from LOGIN7. The password is
// deliberately not here: it is never decoded.
type loginRequest struct {
	user       string
	app        string
	database   string
	packetSize int
	sspi       bool
}

// login7FixedLen is the fixed part of LOGIN7 for TDS 7.2+ (go-mssqldb
// loginHeader, tds.go:579).
const login7FixedLen = 94

// parseLogin7 reads the fields the server needs from a LOGIN7 message
// (MS-TDS 2.2.6.4), checking that every offset/length pair lies inside it.
func parseLogin7(p []byte) (loginRequest, error) {
	var lr loginRequest
	if len(p) < login7FixedLen {
		return lr, protocolErrorf("LOGIN7 of %d bytes", len(p))
	}
	if total := binary.LittleEndian.Uint32(p[0:]); int64(total) > int64(len(p)) {
		return lr, protocolErrorf("LOGIN7 length %d exceeds message of %d bytes", total, len(p))
	}
	lr.packetSize = int(binary.LittleEndian.Uint32(p[8:]))
	field := func(at int) (string, error) {
		off := int(binary.LittleEndian.Uint16(p[at:]))
		n := int(binary.LittleEndian.Uint16(p[at+2:]))
		if off+2*n > len(p) {
			return "", protocolErrorf("LOGIN7 field at %d outside the message", at)
		}
		return decodeUCS2(p[off : off+2*n]), nil
	}
	// Only bounds are checked for the password (offset 44): its bytes stay put.
	if off, n := int(binary.LittleEndian.Uint16(p[44:])), int(binary.LittleEndian.Uint16(p[46:])); off+2*n > len(p) {
		return lr, protocolErrorf("LOGIN7 password outside the message")
	}
	var err error
	if lr.user, err = field(40); err != nil {
		return lr, err
	}
	if lr.app, err = field(48); err != nil {
		return lr, err
	}
	if lr.database, err = field(68); err != nil {
		return lr, err
	}
	if off, n := int(binary.LittleEndian.Uint16(p[78:])), int(binary.LittleEndian.Uint16(p[80:])); off+n > len(p) {
		return lr, protocolErrorf("LOGIN7 SSPI outside the message")
	} else {
		lr.sspi = n > 0 || binary.LittleEndian.Uint32(p[90:]) > 0
	}
	return lr, nil
}

// negotiatePacketSize clamps what the client asked for to the range
// go-mssqldb itself uses; 0 means the TDS default of 4096.
func negotiatePacketSize(asked int) int {
	if asked == 0 {
		return 4096
	}
	return min(max(asked, minPacketSize), maxPacketSize)
}

// loginReply is the token stream SQL Server sends after a successful login,
// trimmed to what go-mssqldb reads (tds.go:1322): the database and collation
// ENVCHANGEs, LOGINACK with TDS 7.4, the negotiated packet size, DONE.
func loginReply(database string, packetSize int, server string) []byte {
	var w wbuf
	w.envChange(envDatabase, database, "master")
	w.message(tokInfo, &SQLError{Number: 5701, State: 2, Message: "Changed database context to '" + database + "'."}, server)
	w.envChangeBytes(envSQLCollation, collation, nil)

	w.u8(tokLoginAck)
	at := w.beginLen16()
	w.u8(1) // interface: SQL_TSQL
	w.b = binary.BigEndian.AppendUint32(w.b, 0x74000004)
	w.bvarchar("flapguard tdsserver")
	w.raw([]byte{16, 0, 0x03, 0xE8})
	w.endLen16(at)

	ps := strconv.Itoa(packetSize)
	w.envChange(envPacketSize, ps, ps)
	w.done(tokDone, doneFinal, 0, 0)
	return w.b
}

// loginFailed is error 18452, the rejection for logins the double cannot
// serve (integrated authentication).
func loginFailed(server string) []byte {
	var w wbuf
	w.message(tokError, &SQLError{Number: 18452, State: 1, Class: 14,
		Message: "Login failed. tdsserver supports SQL Server authentication only."}, server)
	w.done(tokDone, doneError, 0, 0)
	return w.b
}
