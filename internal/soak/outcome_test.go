package soak

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

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
