package snsfeed

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxReply bounds a response line; maxQuoted bounds one quoted value in it.
const (
	maxReply  = 300
	maxQuoted = 80
)

// reply writes one line of printable ASCII: outside input is never echoed
// raw (no control characters, no HTML a browser would sniff).
func reply(rw http.ResponseWriter, code int, msg string) {
	h := rw.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	line := "snsfeed: " + strconv.Itoa(code) + " " + http.StatusText(code) + ": " + printable(msg, maxReply)
	rw.Write([]byte(line + "\n"))
}

// quote returns s, cut to maxQuoted runes, as a Go string literal in
// ASCII: control characters and non-ASCII become escapes.
func quote(s string) string {
	if utf8.RuneCountInString(s) > maxQuoted {
		r := []rune(s)
		s = string(r[:maxQuoted]) + "…"
	}
	return strconv.QuoteToASCII(s)
}

// printable replaces anything but printable ASCII with '?' and cuts s to
// max bytes.
func printable(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}
