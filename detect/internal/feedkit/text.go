package feedkit

import (
	"unicode/utf8"
)

// MaxSource is the longest source name, in bytes, that CleanSource keeps.
const MaxSource = 128

// CleanSource keeps a short, printable source name from outside input (a
// webhook's "source" field, a broker message's): control characters, DEL,
// U+FFFD and invalid UTF-8 are dropped, and the result is cut to at most
// MaxSource bytes on a rune boundary.
func CleanSource(s string) string {
	out := make([]byte, 0, min(len(s), MaxSource))
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
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
