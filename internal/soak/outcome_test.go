//go:build linux

package soak

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
)

// The soak is only as good as its bookkeeping: these pin down what a
// caller may conclude from each kind of error.
func TestInsertOutcome(t *testing.T) {
	server := errors.New("ERROR: something (SQLSTATE 42000)")
	cases := []struct {
		name string
		err  error
		want outcome
	}{
		{"nil", nil, outOK},
		{"bad conn", driver.ErrBadConn, outUnsent},
		{"wrapped bad conn", fmt.Errorf("exec: %w", driver.ErrBadConn), outUnsent},
		{"lost unsent", &pool.LostError{Err: errors.New("broken pipe"), Unsent: true}, outUnsent},
		{"lost in flight", &pool.LostError{Err: errors.New("connection reset")}, outUnknown},
		{"lost in flight over bad conn", &pool.LostError{Err: driver.ErrBadConn}, outUnknown},
		{"tunnel down", fmt.Errorf("%w: still down", pool.ErrTunnelDown), outUnsent},
		{"tunnel down at deadline", fmt.Errorf("%w: %w", pool.ErrTunnelDown, context.DeadlineExceeded), outUnsent},
		{"connect error", &detect.ConnectError{Err: errors.New("connection refused")}, outUnsent},
		{"deadline", context.DeadlineExceeded, outUnknown},
		{"canceled", context.Canceled, outUnknown},
		{"server error", server, outUnknown},
	}
	for _, c := range cases {
		if got := insertOutcome(c.err); got != c.want {
			t.Errorf("%s: insertOutcome(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestTransferOutcome(t *testing.T) {
	fnErr := errors.New("lock wait timeout")
	cases := []struct {
		name       string
		err, fnErr error
		want       outcome
	}{
		{"committed", nil, nil, outOK},
		{"not committed", fmt.Errorf("%w: %w", pool.ErrNotCommitted, errors.New("EOF")), nil, outUnsent},
		{"fn failed", fnErr, fnErr, outUnsent},
		{"fn failed with the deadline", context.DeadlineExceeded, context.DeadlineExceeded, outUnsent},
		{"deadline in commit", context.DeadlineExceeded, nil, outUnknown},
		{"an earlier fn error is not this one", context.DeadlineExceeded, fnErr, outUnknown},
		{"lost during commit", &pool.LostError{Err: errors.New("EOF")}, nil, outUnknown},
		{"begin unsent", driver.ErrBadConn, nil, outUnsent},
		{"gate", pool.ErrTunnelDown, nil, outUnsent},
	}
	for _, c := range cases {
		if got := transferOutcome(c.err, c.fnErr); got != c.want {
			t.Errorf("%s: transferOutcome(%v, %v) = %v, want %v", c.name, c.err, c.fnErr, got, c.want)
		}
	}
}

func TestUnionAndOverlap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ws := []window{ // sorted by start, as allWindows returns them
		{"a", at(0), at(2)},
		{"b", at(1), at(3)},   // overlaps a
		{"c", at(1.5), at(2)}, // inside a∪b
		{"d", at(5), at(6)},
	}
	if got, want := union(ws), 4*time.Second; got != want {
		t.Errorf("union = %v, want %v", got, want)
	}
	if got := union(nil); got != 0 {
		t.Errorf("union(nil) = %v", got)
	}
	for _, c := range []struct {
		from, to float64
		want     int
	}{{3.5, 4.5, 0}, {2.5, 5.5, 2}, {-1, 0, 0}, {6, 7, 0}, {0.5, 0.6, 1}} {
		if got := len(overlapping(ws, at(c.from), at(c.to))); got != c.want {
			t.Errorf("overlapping(%v..%v) = %d windows, want %d", c.from, c.to, got, c.want)
		}
	}
}

func TestMaskDigits(t *testing.T) {
	got := maskDigits("read tcp 10.1.2.3:4567->10.1.2.6:5432: i/o timeout")
	if want := "read tcp #.#.#.#:#->#.#.#.#:#: i/o timeout"; got != want {
		t.Errorf("maskDigits = %q, want %q", got, want)
	}
}
