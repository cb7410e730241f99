package syslogfeed

import (
	"bufio"
	"errors"
	"fmt"
)

// RFC 6587 stream framing: octet counting and newline-terminated frames.

// readOctetCount reads "LEN SP" (at most 9 digits).
func readOctetCount(r *bufio.Reader) (int, error) {
	n := 0
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		if b == ' ' && i > 0 {
			return n, nil
		}
		if b < '0' || b > '9' || i >= 9 {
			return 0, fmt.Errorf("%w: bad octet-counting frame length", ErrMalformed)
		}
		n = n*10 + int(b-'0')
	}
}

// readLine appends bytes up to '\n' to buf. Past max it discards the rest
// of the line and returns ErrLineTooLong.
func readLine(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max+1 { // +1: the newline itself
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil {
				return buf[:0], errors.Join(ErrLineTooLong, err)
			}
			return buf[:0], ErrLineTooLong
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return buf, err
	}
}

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
