// Package waitfor is the one polling helper the tests share: wait for the
// state a test needs, never a fixed sleep.
package waitfor

import (
	"testing"
	"time"
)

// True polls cond every millisecond until it holds, or fails t after
// within ("timed out after 5s waiting for <what>").
func True(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}
