// Package feedtest holds test helpers shared by the feeds' tests.
package feedtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Logs is a slog.Handler that keeps every record it is handed, so a test
// can count the lines a flood of bad input produced. It is safe for
// concurrent use.
type Logs struct {
	mu    sync.Mutex
	lines []string // message and attributes, "msg k=v k=v"
}

// NewLogger returns a logger writing to a new Logs at every level.
func NewLogger() (*slog.Logger, *Logs) {
	l := &Logs{}
	return slog.New(l), l
}

// Enabled implements slog.Handler: every level.
func (l *Logs) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (l *Logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler; the attributes are not kept.
func (l *Logs) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup implements slog.Handler; groups are not kept.
func (l *Logs) WithGroup(string) slog.Handler { return l }

// Lines returns a copy of the lines so far.
func (l *Logs) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Count returns how many lines there are so far.
func (l *Logs) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}
