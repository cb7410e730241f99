//go:build linux

package soak

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// warnLog keeps the pool's warnings (Config.Logger), with their time: the
// pool logs at WARN only what it could not do (orphan reaping skipped, an
// orphan it could not end), which an invariant report needs to explain.
// Lower levels are dropped; the summary counts events from OnEvent.
type warnLog struct {
	mu    sync.Mutex // protects lines
	lines []string
	t0    time.Time // reports are relative to it
}

func (w *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "+%v %s", r.Time.Sub(w.t0).Round(time.Millisecond), r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	w.mu.Lock()
	w.lines = append(w.lines, b.String())
	w.mu.Unlock()
	return nil
}

func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnLog) WithGroup(string) slog.Handler      { return w }

func (w *warnLog) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}
