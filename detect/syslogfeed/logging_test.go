package syslogfeed

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect/internal/feedtest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// A flood of bad datagrams of three kinds writes one line per reason; the
// next line of a reason says how many were held back.
func TestBadInputFloodIsRateLimited(t *testing.T) {
	logger, logs := feedtest.NewLogger()
	clk := &testClock{t: fixedNow}
	s := newTestSyslog(t, Config{Notifier: make(chanNotifier, 8), Rules: YamahaRTX().WithTunnelMap(map[string]string{"1": "a"}).Rules,
		MaxLine: 64, Logger: logger, Now: clk.Now})
	c, _ := serveUDP(t, s)
	const each = 300
	for i := range 3 * each {
		switch i % 3 {
		case 0:
			c.Write([]byte("<999>malformed"))
		case 1:
			c.Write([]byte(strings.Repeat("x", 100)))
		case 2:
			c.Write([]byte("IP Tunnel[7] Down")) // unmapped: ignored
		}
		// Pace on the receiver: the kernel may drop UDP sent faster than
		// it is read, which is not what this test is about.
		waitFor(t, "datagram read", func() bool { return s.Stats().Received == uint64(i+1) })
	}
	if st := s.Stats(); st.Malformed != each || st.Dropped != each || st.Ignored != each {
		t.Errorf("stats = %+v, want %d of each", st, each)
	}
	if got := logs.Count(); got != 3 {
		t.Errorf("%d bad datagrams: %d log lines, want 3 (one per reason): %q", 3*each, got, logs.Lines())
	}
	clk.Add(time.Second)
	c.Write([]byte("<999>malformed"))
	waitFor(t, "datagram read", func() bool { return s.Stats().Received == 3*each+1 })
	lines := logs.Lines()
	if last := lines[len(lines)-1]; !strings.Contains(last, "suppressed="+strconv.Itoa(each-1)) {
		t.Errorf("line after the burst = %q, want suppressed=%d", last, each-1)
	}
}
