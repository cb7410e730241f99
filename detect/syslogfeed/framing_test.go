package syslogfeed

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

// readLine must survive lines longer than the bufio buffer.
func TestReadLineLongerThanBuffer(t *testing.T) {
	in := strings.Repeat("a", 5000) + "\n" + strings.Repeat("b", 100) + "\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 16)
	if _, err := readLine(r, nil, 1000); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: err = %v", err)
	}
	got, err := readLine(r, nil, 1000)
	if err != nil || string(got) != strings.Repeat("b", 100)+"\n" {
		t.Fatalf("next line: %q, %v", got, err)
	}
}
