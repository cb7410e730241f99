package pool

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestLostErrorChain(t *testing.T) {
	unknown := &LostError{Err: fmt.Errorf("read: %w", io.EOF)}
	if !errors.Is(unknown, ErrOutcomeUnknown) || !errors.Is(unknown, ErrConnLost) || errors.Is(unknown, driver.ErrBadConn) || !errors.Is(unknown, io.EOF) {
		t.Fatal("unknown-outcome LostError chain wrong")
	}
	unsent := &LostError{Err: io.EOF, Unsent: true}
	if errors.Is(unsent, ErrOutcomeUnknown) || !errors.Is(unsent, driver.ErrBadConn) {
		t.Fatal("unsent LostError chain wrong")
	}
	// A driver's ErrBadConn the pool does not believe must not reach
	// database/sql's retry.
	distrusted := &LostError{Err: driver.ErrBadConn}
	if errors.Is(distrusted, driver.ErrBadConn) || !errors.Is(distrusted, ErrOutcomeUnknown) {
		t.Fatal("a distrusted ErrBadConn leaks through the chain")
	}
}
