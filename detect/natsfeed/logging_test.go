package natsfeed

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedtest"
)

// 1000 garbage messages used to write a line each (3000 with stale and
// oversized ones mixed in); the lines are rate-limited per reason and the
// next one lets through says how many were held back.
func TestGarbageFloodIsRateLimited(t *testing.T) {
	ns := startServer(t, -1)
	pub, sub := connect(t, ns.ClientURL()), connect(t, ns.ClientURL())
	logger, logs := feedtest.NewLogger()
	now := time.Now()
	var mu sync.Mutex
	clock := now
	events := make(chanNotifier, 4)
	s, err := Subscribe(sub, "g", events, Options{Logger: logger, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		switch i % 3 {
		case 0:
			pub.Publish("g", []byte("garbage"))
		case 1:
			publishAt(pub, "g", detect.Event{Tunnel: "old", State: detect.Down}, now.Add(-time.Hour))
		case 2:
			pub.Publish("g", make([]byte, maxPayload+1))
		}
	}
	publishAt(pub, "g", detect.Event{Tunnel: "good", State: detect.Up}, now)
	if ev := recv(t, events); ev.Tunnel != "good" { // per-publisher order: the flood was handled
		t.Fatalf("got %+v", ev)
	}
	if got := logs.Count(); got > 3 {
		t.Errorf("1000 bad messages: %d log lines, want at most 3 (one per reason)", got)
	}
	if st := s.Stats(); st.Invalid != 667 || st.Stale != 333 || st.Events != 1 {
		t.Errorf("stats = %+v: the counters keep the totals", st)
	}
	mu.Lock()
	clock = clock.Add(time.Second)
	mu.Unlock()
	pub.Publish("g", []byte("garbage"))
	// Sent a moment later: the same bytes again would be a repeat, dropped.
	publishAt(pub, "g", detect.Event{Tunnel: "good", State: detect.Up}, now.Add(time.Millisecond))
	recv(t, events)
	found := false
	for _, l := range logs.Lines() {
		found = found || strings.Contains(l, "suppressed=")
	}
	if !found {
		t.Errorf("no line reports the suppressed count: %q", logs.Lines())
	}
}
