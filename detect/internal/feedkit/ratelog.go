package feedkit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxReasons bounds the limiter's table. Reasons are meant to be constant
// strings; should a caller build them from input, the extra ones share one
// limit instead of growing memory.
const maxReasons = 64

// RateLog writes at most one line per reason per interval to a
// *slog.Logger, so that a flood of bad input (a datagram storm, a
// misconfigured sender retrying every millisecond) cannot become a flood of
// log lines; the feeds' counters keep the totals. The limit is per reason,
// shared by every sender and goroutine: a line let through after others of
// its reason were held back carries "suppressed"=N, the number held back
// since the previous line of that reason. It is safe for concurrent use;
// the zero value is not usable, call NewRateLog.
type RateLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex // protects following fields
	reasons map[string]*reasonState
}

type reasonState struct {
	last       time.Time // when a line of the reason was last written
	suppressed int       // lines held back since then
}

// NewRateLog returns a RateLog writing to l (nil = discard), letting one
// line per reason through every interval (0 = one second), measured with
// now (nil = time.Now).
func NewRateLog(l *slog.Logger, interval time.Duration, now func() time.Time) *RateLog {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &RateLog{log: l, every: interval, now: now, reasons: make(map[string]*reasonState)}
}

// Log writes msg with args at level unless a line with the same reason was
// written less than the interval ago. reason names the kind of trouble
// ("source not in AllowFrom", "unauthorized"); it should be a constant,
// not text from the input. It reports whether the line was written.
func (r *RateLog) Log(level slog.Level, reason, msg string, args ...any) bool {
	if !r.log.Enabled(context.Background(), level) {
		return false
	}
	now := r.now()
	r.mu.Lock()
	st := r.reasons[reason]
	if st == nil && len(r.reasons) >= maxReasons {
		reason = "" // overflow reasons share one limit
		st = r.reasons[reason]
	}
	fresh := st == nil
	if fresh {
		st = &reasonState{}
		r.reasons[reason] = st
	}
	if !fresh && now.Sub(st.last) < r.every {
		st.suppressed++
		r.mu.Unlock()
		return false
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	r.mu.Unlock()
	if suppressed > 0 {
		args = append(args[:len(args):len(args)], "suppressed", suppressed)
	}
	r.log.Log(context.Background(), level, msg, args...)
	return true
}
