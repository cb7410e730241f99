package tdsserver

import (
	"fmt"
	"math"
	"unicode/utf16"
)

// Token ids (MS-TDS 2.2.7, go-mssqldb token.go:26).
const (
	tokReturnStatus byte = 0x79
	tokColMetadata  byte = 0x81
	tokError        byte = 0xAA
	tokInfo         byte = 0xAB
	tokLoginAck     byte = 0xAD
	tokRow          byte = 0xD1
	tokEnvChange    byte = 0xE3
	tokDone         byte = 0xFD
	tokDoneProc     byte = 0xFE
	tokDoneInProc   byte = 0xFF
)

// DONE status bits and CurCmd values (token.go:48).
const (
	doneFinal    uint16 = 0
	doneMore     uint16 = 0x01
	doneError    uint16 = 0x02
	doneCount    uint16 = 0x10
	doneAttn     uint16 = 0x20
	doneSrvError uint16 = 0x100

	cmdSelect uint16 = 0xC1
	cmdInsert uint16 = 0xC3
	cmdDelete uint16 = 0xC4
)

// ENVCHANGE types (token.go:74).
const (
	envDatabase     byte = 1
	envPacketSize   byte = 4
	envSQLCollation byte = 7
	envBeginTran    byte = 8
	envCommitTran   byte = 9
	envRollbackTran byte = 10
	envResetAck     byte = 18
)

// collation is Latin1_General_CI_AS: LCID 0x0409, flags, version, sort id.
var collation = []byte{0x09, 0x04, 0xD0, 0x00, 0x34}

// SQLError is an error sent to the client as an ERROR token. Handlers may
// return one to choose the number, state and class the driver reports
// (go-mssqldb turns it into mssql.Error).
type SQLError struct {
	Number  int32
	State   uint8
	Class   uint8
	Message string
}

func (e *SQLError) Error() string {
	return fmt.Sprintf("tdsserver: error %d, class %d: %s", e.Number, e.Class, e.Message)
}

func (w *wbuf) done(tok byte, status, cmd uint16, rows uint64) {
	w.u8(tok)
	w.u16(status)
	w.u16(cmd)
	w.u64(rows)
}

// message appends an ERROR or INFO token.
func (w *wbuf) message(tok byte, e *SQLError, server string) {
	w.u8(tok)
	at := w.beginLen16()
	w.u32(uint32(e.Number))
	w.u8(e.State)
	w.u8(e.Class)
	w.usvarchar(e.Message, 4000)
	w.bvarchar(server)
	w.bvarchar("") // procedure
	w.u32(1)       // line
	w.endLen16(at)
}

// envChange appends an ENVCHANGE whose values are B_VARCHARs.
func (w *wbuf) envChange(typ byte, newValue, oldValue string) {
	w.u8(tokEnvChange)
	at := w.beginLen16()
	w.u8(typ)
	w.bvarchar(newValue)
	w.bvarchar(oldValue)
	w.endLen16(at)
}

// envChangeBytes appends an ENVCHANGE whose values are B_VARBYTEs.
func (w *wbuf) envChangeBytes(typ byte, newValue, oldValue []byte) {
	w.u8(tokEnvChange)
	at := w.beginLen16()
	w.u8(typ)
	w.u8(byte(len(newValue)))
	w.raw(newValue)
	w.u8(byte(len(oldValue)))
	w.raw(oldValue)
	w.endLen16(at)
}

// Column kinds the server can send, chosen from Go values.
type colKind byte

const (
	colInt2 colKind = iota
	colInt4
	colInt8
	colBit
	colFloat
	colNVarChar
	colVarBinary
)

const (
	maxNVarCharUnits = 4000 // nvarchar(4000): 8000 bytes
	maxVarBinary     = 8000
)

func kindOf(v any) (colKind, error) {
	switch v.(type) {
	case nil, int32:
		return colInt4, nil
	case int16:
		return colInt2, nil
	case int, int64:
		return colInt8, nil
	case bool:
		return colBit, nil
	case float64:
		return colFloat, nil
	case string:
		return colNVarChar, nil
	case []byte:
		return colVarBinary, nil
	}
	return 0, fmt.Errorf("unsupported column value type %T", v)
}

// encodeResultSet appends COLMETADATA and one ROW per row. Column kinds come
// from the first non-nil value of each column.
func (w *wbuf) encodeResultSet(cols []string, rows [][]any) error {
	if len(cols) == 0 || len(cols) > 4096 {
		return fmt.Errorf("result set needs 1..4096 columns, has %d", len(cols))
	}
	kinds := make([]colKind, len(cols))
	for i := range cols {
		kinds[i] = colInt4
		for _, row := range rows {
			if i < len(row) && row[i] != nil {
				k, err := kindOf(row[i])
				if err != nil {
					return err
				}
				kinds[i] = k
				break
			}
		}
	}
	w.u8(tokColMetadata)
	w.u16(uint16(len(cols)))
	for i, name := range cols {
		w.u32(0) // user type
		w.u16(1) // flags: nullable
		switch kinds[i] {
		case colInt2, colInt4, colInt8:
			w.u8(0x26) // INTN
			w.u8([...]byte{colInt2: 2, colInt4: 4, colInt8: 8}[kinds[i]])
		case colBit:
			w.u8(0x68) // BITN
			w.u8(1)
		case colFloat:
			w.u8(0x6D) // FLTN
			w.u8(8)
		case colNVarChar:
			w.u8(0xE7) // NVARCHAR
			w.u16(2 * maxNVarCharUnits)
			w.raw(collation)
		case colVarBinary:
			w.u8(0xA5) // BIGVARBINARY
			w.u16(maxVarBinary)
		}
		w.bvarchar(name)
	}
	for r, row := range rows {
		if len(row) != len(cols) {
			return fmt.Errorf("row %d has %d values for %d columns", r, len(row), len(cols))
		}
		w.u8(tokRow)
		for i, v := range row {
			if err := w.value(kinds[i], v); err != nil {
				return fmt.Errorf("row %d column %q: %w", r, cols[i], err)
			}
		}
	}
	return nil
}

func (w *wbuf) value(k colKind, v any) error {
	if v == nil {
		if k == colNVarChar || k == colVarBinary {
			w.u16(0xFFFF)
		} else {
			w.u8(0)
		}
		return nil
	}
	switch k {
	case colInt2, colInt4, colInt8:
		n, ok := toInt64(v)
		if !ok {
			return fmt.Errorf("%T in an integer column", v)
		}
		switch {
		case k == colInt2 && n == int64(int16(n)):
			w.u8(2)
			w.u16(uint16(n))
		case k == colInt4 && n == int64(int32(n)):
			w.u8(4)
			w.u32(uint32(n))
		case k == colInt8:
			w.u8(8)
			w.u64(uint64(n))
		default:
			return fmt.Errorf("%d does not fit the column", n)
		}
	case colBit:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%T in a bit column", v)
		}
		w.u8(1)
		if b {
			w.u8(1)
		} else {
			w.u8(0)
		}
	case colFloat:
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("%T in a float column", v)
		}
		w.u8(8)
		w.u64(math.Float64bits(f))
	case colNVarChar:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T in an nvarchar column", v)
		}
		units := utf16.Encode([]rune(s))
		if len(units) > maxNVarCharUnits {
			return fmt.Errorf("string of %d characters exceeds nvarchar(%d)", len(units), maxNVarCharUnits)
		}
		w.u16(uint16(2 * len(units)))
		for _, u := range units {
			w.u16(u)
		}
	case colVarBinary:
		p, ok := v.([]byte)
		if !ok {
			return fmt.Errorf("%T in a varbinary column", v)
		}
		if len(p) > maxVarBinary {
			return fmt.Errorf("%d bytes exceed varbinary(%d)", len(p), maxVarBinary)
		}
		w.u16(uint16(len(p)))
		w.raw(p)
	}
	return nil
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}
