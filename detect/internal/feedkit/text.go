package feedkit

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxSource is the longest source name, in bytes, that CleanSource keeps.
const MaxSource = 128

// CleanSource keeps a short, printable source name from outside input (a
// webhook's "source" field, a broker message's): control characters (C0,
// DEL, C1), format characters (Unicode category Cf: bidi overrides and
// isolates such as U+202E and U+2066, zero-width joiners, U+FEFF), U+FFFD
// and invalid UTF-8 are dropped, and the result is cut to at most
// MaxSource bytes on a rune boundary. A bidi override left in a source
// name would reorder the rest of the log line it is printed in.
func CleanSource(s string) string {
	out := make([]byte, 0, min(len(s), MaxSource))
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			continue // also drops invalid UTF-8 (decoded as RuneError, size 1)
		}
		if len(out)+size > MaxSource {
			break
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// Truncate returns s cut to at most n bytes on a rune boundary, with "…"
// appended when it was cut. It does not escape anything: use Escape for
// text a client will read.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Escape returns s fit to echo in a short plain-text answer (a 4xx body)
// or a log line: control characters (newlines included), DEL, other
// non-printing runes (bidi overrides, line separators), backslashes and
// invalid UTF-8 become Go escapes (\n, \x07, \u202e, \\, \xff); printable
// runes, quotes included, stay as they are. The result is cut between
// escapes to at most max bytes, and then "…" is appended.
func Escape(s string, max int) string {
	out := make([]byte, 0, min(len(s), max)+8)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		var esc []byte
		switch {
		case r == utf8.RuneError && size == 1:
			esc = fmt.Appendf(nil, `\x%02x`, s[0])
		case r == '\\':
			esc = []byte(`\\`)
		case r == ' ' || strconv.IsPrint(r):
			esc = []byte(s[:size])
		default:
			q := strconv.QuoteRune(r) // '\n', '\x07', '\u202e'
			esc = []byte(q[1 : len(q)-1])
		}
		if len(out)+len(esc) > max {
			return string(out) + "…"
		}
		out = append(out, esc...)
		s = s[size:]
	}
	return string(out)
}
