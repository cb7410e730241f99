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
// log lines; the feeds' counters keep the totals. It is safe for
// concurrent use; the zero value is not usable, call NewRateLog.
type RateLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex // protects following fields
	last map[string]time.Time
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
	return &RateLog{log: l, every: interval, now: now, last: make(map[string]time.Time)}
}

// Log writes msg with args at level unless a line with the same reason was
// written less than the interval ago. reason names the kind of trouble
// ("source not in AllowFrom", "unauthorized"); it should be a constant,
// not text from the input.
func (r *RateLog) Log(level slog.Level, reason, msg string, args ...any) {
	if !r.log.Enabled(context.Background(), level) {
		return
	}
	now := r.now()
	r.mu.Lock()
	key := reason
	if _, ok := r.last[key]; !ok && len(r.last) >= maxReasons {
		key = "" // overflow reasons share one limit
	}
	last, seen := r.last[key]
	if seen && now.Sub(last) < r.every {
		r.mu.Unlock()
		return
	}
	r.last[key] = now
	r.mu.Unlock()
	r.log.Log(context.Background(), level, msg, args...)
}

// Logger returns the underlying logger, for lines that are not rate-limited
// (one per lifetime event: a listener closing, a reconnect).
func (r *RateLog) Logger() *slog.Logger { return r.log }
