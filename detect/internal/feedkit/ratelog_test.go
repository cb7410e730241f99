package feedkit

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect/internal/feedtest"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestRateLogOneLinePerReasonAndSuppressedCount(t *testing.T) {
	logger, logs := feedtest.NewLogger()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	rl := NewRateLog(logger, time.Second, clk.Now)
	var wg sync.WaitGroup
	for g := range 4 { // the limit is shared by every goroutine
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				rl.Log(slog.LevelWarn, "garbage", "bad input", "from", g, "i", i)
			}
		}()
	}
	wg.Wait()
	rl.Log(slog.LevelWarn, "unauthorized", "request rejected")
	if n := logs.Count(); n != 2 {
		t.Fatalf("1000 lines of one reason and 1 of another: %d written, want 2: %q", n, logs.Lines())
	}
	clk.Add(999 * time.Millisecond)
	if rl.Log(slog.LevelWarn, "garbage", "bad input") {
		t.Error("a line within the interval was written")
	}
	clk.Add(time.Millisecond)
	if !rl.Log(slog.LevelWarn, "garbage", "bad input") {
		t.Fatal("the first line after the interval was held back")
	}
	lines := logs.Lines()
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, " suppressed=1000") {
		t.Errorf("line after the burst = %q, want suppressed=1000 (999 in the burst, 1 held back since)", last)
	}
	clk.Add(time.Second)
	rl.Log(slog.LevelWarn, "garbage", "bad input")
	if last := logs.Lines()[logs.Count()-1]; strings.Contains(last, "suppressed") {
		t.Errorf("nothing was held back, yet %q", last)
	}
}

func TestRateLogBoundsItsReasons(t *testing.T) {
	logger, logs := feedtest.NewLogger()
	rl := NewRateLog(logger, time.Hour, func() time.Time { return time.Unix(0, 0) })
	for i := range 10 * maxReasons {
		rl.Log(slog.LevelWarn, fmt.Sprint("reason-", i), "x")
	}
	if len(rl.reasons) > maxReasons+1 || logs.Count() != maxReasons+1 {
		t.Errorf("%d reasons tracked, %d lines; want at most %d", len(rl.reasons), logs.Count(), maxReasons+1)
	}
}

func TestRateLogDisabledLevelCountsNothing(t *testing.T) {
	rl := NewRateLog(nil, 0, nil)
	if rl.Log(slog.LevelError, "x", "y") {
		t.Error("a discarding logger wrote a line")
	}
}
