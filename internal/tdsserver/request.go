package tdsserver

import (
	"encoding/binary"
	"fmt"
	"math"
)

// procExecuteSQL is sp_executesql's well-known id; go-mssqldb sends every
// query that has arguments as this RPC (mssql.go:593, rpc.go:41).
const procExecuteSQL = 10

// request is a parsed SQLBatch or RPC.
type request struct {
	rpc  bool
	proc string // named procedure (RPC by name); empty for batches and sp_executesql
	sql  string
	args []arg
	// bad is set when the message is well-formed but cannot be served (for
	// example a parameter type this double does not decode); it is sent as
	// an ERROR token and the session goes on.
	bad *SQLError
}

// arg is one RPC parameter: its name with the '@' ("" if unnamed) and value.
type arg struct {
	name  string
	value any
}

func parseBatch(p []byte) (request, error) {
	r := rbuf{b: p}
	r.skipAllHeaders()
	if r.err != nil {
		return request{}, r.err
	}
	if len(r.b)%2 != 0 {
		return request{}, protocolErrorf("SQLBatch text of odd length %d", len(r.b))
	}
	return request{sql: decodeUCS2(r.b)}, nil
}

// parseRPC reads one RPC request (MS-TDS 2.2.6.6). Batched RPCs (separated
// by 0x80/0xFF) are not sent by go-mssqldb and are rejected as malformed.
func parseRPC(p []byte) (request, error) {
	req := request{rpc: true}
	r := rbuf{b: p}
	r.skipAllHeaders()
	procID := 0
	if n := r.u16("procedure"); n == 0xFFFF {
		procID = int(r.u16("procedure id"))
	} else {
		req.proc = r.ucs2(int(n), "procedure name")
	}
	r.u16("option flags")
	var params []arg
	for r.err == nil && len(r.b) > 0 {
		name := r.bvarchar("parameter name")
		r.u8("parameter status")
		v, bad := readValue(&r)
		if bad != nil && req.bad == nil {
			req.bad = bad
		}
		params = append(params, arg{name: name, value: v})
	}
	if r.err != nil {
		return request{}, r.err
	}
	switch {
	case req.bad != nil:
	case req.proc != "":
		req.sql, req.args = req.proc, params
	case procID != procExecuteSQL:
		req.bad = &SQLError{Number: 2812, State: 62, Class: 16,
			Message: fmt.Sprintf("Could not find stored procedure with id %d (tdsserver serves sp_executesql only).", procID)}
	default:
		stmt, ok := firstValue(params).(string)
		if !ok {
			req.bad = &SQLError{Number: 214, State: 2, Class: 16,
				Message: "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'."}
			break
		}
		req.sql = stmt
		if len(params) > 2 {
			req.args = params[2:] // params[1] is the declaration list
		}
	}
	return req, nil
}

func firstValue(params []arg) any {
	if len(params) == 0 {
		return nil
	}
	return params[0].value
}

// readValue reads TYPE_INFO and a value of the types go-mssqldb's makeParam
// produces for plain Go values (mssql.go:1044): NULL, INTN, BITN, FLTN,
// NVARCHAR/NCHAR/VARCHAR/CHAR and VARBINARY/BINARY, short or PLP, plus the
// fixed-length integer and float types. Framing errors go to r.err; a type
// that is framed correctly but not decoded returns a non-nil *SQLError after
// skipping the value, when its length is knowable.
func readValue(r *rbuf) (any, *SQLError) {
	typ := r.u8("type")
	if fixed, ok := fixedLen[typ]; ok {
		return decodeFixed(typ, r.take(fixed, "fixed value")), nil
	}
	switch typ {
	case 0x26, 0x68, 0x6D: // INTN, BITN, FLTN
		r.u8("max length")
		p := r.take(int(r.u8("length")), "value")
		if r.err != nil || len(p) == 0 {
			return nil, nil
		}
		switch {
		case typ == 0x26 && (len(p) == 1 || len(p) == 2 || len(p) == 4 || len(p) == 8):
			return decodeInt(p), nil
		case typ == 0x68 && len(p) == 1:
			return p[0] != 0, nil
		case typ == 0x6D && len(p) == 4:
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(p))), nil
		case typ == 0x6D && len(p) == 8:
			return math.Float64frombits(binary.LittleEndian.Uint64(p)), nil
		}
		r.err = protocolErrorf("value of %d bytes for type 0x%02x", len(p), typ)
		return nil, nil
	case 0xE7, 0xEF, 0xA7, 0xAF, 0xA5, 0xAD: // N/VARCHAR, N/CHAR, VARBINARY, BINARY
		maxLen := r.u16("max length")
		if typ != 0xA5 && typ != 0xAD {
			r.take(len(collation), "collation")
		}
		var p []byte
		var null bool
		if maxLen == 0xFFFF {
			p, null = readPLP(r)
		} else {
			n := r.u16("length")
			null = n == 0xFFFF
			if !null {
				p = r.take(int(n), "value")
			}
		}
		if r.err != nil || null {
			return nil, nil
		}
		switch typ {
		case 0xE7, 0xEF:
			if len(p)%2 != 0 {
				r.err = protocolErrorf("nvarchar value of odd length %d", len(p))
				return nil, nil
			}
			return decodeUCS2(p), nil
		case 0xA7, 0xAF:
			return string(p), nil
		}
		return append([]byte(nil), p...), nil
	case 0x28: // DATEN
		r.take(int(r.u8("length")), "value")
	case 0x29, 0x2A, 0x2B: // TIMEN, DATETIME2N, DATETIMEOFFSETN
		r.u8("scale")
		r.take(int(r.u8("length")), "value")
	case 0x6F, 0x24: // DATETIMEN, GUID
		r.u8("max length")
		r.take(int(r.u8("length")), "value")
	default:
		r.err = protocolErrorf("parameter type 0x%02x", typ)
		return nil, nil
	}
	return nil, &SQLError{Number: 8016, State: 1, Class: 16,
		Message: fmt.Sprintf("tdsserver does not decode parameters of TDS type 0x%02X.", typ)}
}

// fixedLen maps the fixed-length types to their sizes (types.go:134).
var fixedLen = map[byte]int{
	0x1F: 0, // NULL
	0x30: 1, // INT1
	0x32: 1, // BIT
	0x34: 2, // INT2
	0x38: 4, // INT4
	0x7F: 8, // INT8
	0x3B: 4, // FLT4
	0x3E: 8, // FLT8
}

func decodeFixed(typ byte, p []byte) any {
	if len(p) != fixedLen[typ] {
		return nil // r.err is set
	}
	switch typ {
	case 0x30:
		return int64(p[0])
	case 0x32:
		return p[0] != 0
	case 0x34, 0x38, 0x7F:
		return decodeInt(p)
	case 0x3B:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))
	case 0x3E:
		return math.Float64frombits(binary.LittleEndian.Uint64(p))
	}
	return nil
}

func decodeInt(p []byte) int64 {
	switch len(p) {
	case 1:
		return int64(p[0])
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(p)))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(p)))
	}
	return int64(binary.LittleEndian.Uint64(p))
}

// readPLP reads a partially length-prefixed value: a 64-bit total (or the
// NULL / unknown-length markers), then 32-bit-length chunks up to a zero
// terminator (types.go:791). Chunks are bounded by the message.
func readPLP(r *rbuf) (p []byte, null bool) {
	switch total := r.u64("PLP length"); total {
	case 0xFFFFFFFFFFFFFFFF:
		return nil, true
	case 0xFFFFFFFFFFFFFFFE:
	default:
		if total > uint64(len(r.b)) {
			r.err = protocolErrorf("PLP length %d exceeds the message", total)
			return nil, false
		}
	}
	for r.err == nil {
		n := r.u32("PLP chunk length")
		if n == 0 {
			break
		}
		if uint64(n) > uint64(len(r.b)) {
			r.fail("PLP chunk")
			break
		}
		p = append(p, r.take(int(n), "PLP chunk")...)
	}
	return p, false
}

// Transaction manager request types (MS-TDS 2.2.6.9, tran.go:13).
const (
	tmBegin    = 5
	tmCommit   = 7
	tmRollback = 8
)

// parseTransMgr returns the request type of a transaction manager request.
func parseTransMgr(p []byte) (uint16, error) {
	r := rbuf{b: p}
	r.skipAllHeaders()
	t := r.u16("request type")
	return t, r.err
}
