package snsfeed

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLog writes at most one line per key per interval and counts the
// lines it held back, reporting the count ("suppressed") on the next line
// for that key. Keys are a fixed set (reasons), so its maps stay small.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex // protects following fields
	last  map[string]time.Time
	muted map[string]uint64
}

func newRateLog(l *slog.Logger, every time.Duration, now func() time.Time) *rateLog {
	return &rateLog{log: l, every: every, now: now, last: map[string]time.Time{}, muted: map[string]uint64{}}
}

// logf logs msg with args unless a line for key was written less than
// every ago. The line is written after the lock is released.
func (r *rateLog) logf(level slog.Level, key, msg string, args ...any) {
	if !r.log.Enabled(context.Background(), level) {
		return
	}
	r.mu.Lock()
	now := r.now()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.every && now.Sub(t) >= 0 {
		r.muted[key]++
		r.mu.Unlock()
		return
	}
	r.last[key] = now
	n := r.muted[key]
	delete(r.muted, key)
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.log.Log(context.Background(), level, msg, args...)
}
