package feedkit

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanSource(t *testing.T) {
	for in, want := range map[string]string{
		"tunnelhook":         "tunnelhook",
		"hook\u0007er\x7f\n": "hooker",
		"bad\xffutf8\ufffd":  "badutf8",
		// Issue 22 item 9: on main, U+202E and U+2066 (bidi override and
		// isolate, category Cf) passed through and reached log lines raw.
		"hook\u202eevil\u2066x\u2069": "hookevilx",
		"zero\u200bwidth\ufeff":       "zerowidth",
		"c1\u0085\u009bcontrol":       "c1control",
		"":                            "",
		strings.Repeat("é", 80):       strings.Repeat("é", MaxSource/2),
	} {
		got := CleanSource(in)
		if got != want {
			t.Errorf("CleanSource(%q) = %q, want %q", in, got, want)
		}
		if len(got) > MaxSource || !utf8.ValidString(got) {
			t.Errorf("CleanSource(%q) = %q: over %d bytes or not UTF-8", in, got, MaxSource)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("short", 10); got != "short" {
		t.Errorf("got %q", got)
	}
	if got := Truncate("abcdef", 3); got != "abc…" {
		t.Errorf("got %q", got)
	}
	if got := Truncate("aé", 2); got != "a…" { // never cuts a rune in two
		t.Errorf("got %q", got)
	}
}
