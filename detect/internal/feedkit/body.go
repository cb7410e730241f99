package feedkit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned by ReadBody for input longer than its limit.
var ErrTooLarge = errors.New("feedkit: body larger than the limit")

// ReadBody reads r to the end and returns what it read, or ErrTooLarge
// once r has given more than max bytes. It reads at most max+1 bytes, so
// memory is bounded by the limit, never by the sender. Other read errors
// (a client gone, a read deadline) are returned wrapped.
//
// In an http.Handler, answer ErrTooLarge with 413 and set "Connection:
// close" so that net/http does not go on reading the rest of the body.
func ReadBody(r io.Reader, max int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("feedkit: reading body: %w", err)
	}
	if n > max {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}
