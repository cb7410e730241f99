package feedkit

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	if b, err := ReadBody(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Errorf("at the limit: %q, %v", b, err)
	}
	// An endless body: ReadBody stops one byte past the limit.
	endless := &countingReader{r: iotest.OneByteReader(bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)))}
	if _, err := ReadBody(endless, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: err = %v, want ErrTooLarge", err)
	}
	if endless.n != 101 {
		t.Errorf("read %d bytes of an oversized body, want 101", endless.n)
	}
	boom := errors.New("client went away")
	if _, err := ReadBody(iotest.ErrReader(boom), 100); !errors.Is(err, boom) {
		t.Errorf("read error: %v, want it wrapped", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		`plain "quoted" text`:     `plain "quoted" text`,
		"bell\a nl\n cr\r":        `bell\a nl\n cr\r`,
		"nul\x00 esc\x1b del\x7f": `nul\x00 esc\x1b del\x7f`,
		"bidi\u202eevil":          `bidi\u202eevil`,
		"bad\xffutf8":             `bad\xffutf8`,
		`back\slash`:              `back\\slash`,
		"日本語":                     "日本語",
	} {
		if got := Escape(in, 100); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Escape(strings.Repeat("\n", 10), 7); got != `\n\n\n…` {
		t.Errorf("cut = %q, want whole escapes only", got)
	}
	if got := Escape(strings.Repeat("a", 300), 16); len(got) > 16+len("…") {
		t.Errorf("cut = %q, longer than the limit", got)
	}
}
