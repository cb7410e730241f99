package webhookfeed

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect/internal/feedtest"
)

// serveDirect runs one request through h without a network.
func serveDirect(h http.Handler, body []byte, hdr map[string]string) int {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.RemoteAddr = "127.0.0.1:4242"
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, req)
	return rw.Code
}

// An authenticated Alertmanager body near the 64 KiB cap, every alert
// without the tunnel label, used to log one line per alert (21,835 for
// this body): now one line for the request.
func TestAlertmanagerFloodLogsOneLine(t *testing.T) {
	logger, logs := feedtest.NewLogger()
	h, err := New(Config{Notifier: &recorder{}, Token: testToken, Logger: logger, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`{"version":"4","alerts":[`)
	n := 0
	for b.Len() < MaxBody-64 {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"labels":{}}`)
		n++
	}
	b.WriteString(`]}`)
	if code := serveDirect(h, []byte(b.String()), bearer); code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", code)
	}
	if got := logs.Count(); got != 1 {
		t.Errorf("%d alerts ignored: %d log lines, want 1", n, got)
	}
	if line := logs.Lines()[0]; !strings.Contains(line, fmt.Sprintf("ignored=%d", n)) {
		t.Errorf("line %q does not count the %d ignored alerts", line, n)
	}
	if st := h.Stats(); st.Ignored != uint64(n) {
		t.Errorf("stats = %+v, want %d ignored", st, n)
	}

	// A payload that yields an event and ignores alerts: one line too.
	body := `{"version":"4","alerts":[{"labels":{}},{"labels":{}},{"status":"firing","labels":{"tunnel":"a"}}]}`
	if code := serveDirect(h, []byte(body), bearer); code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", code)
	}
	if got := logs.Count(); got != 2 {
		t.Errorf("204 with 2 ignored alerts: %d lines in all, want 2: %q", got, firstLines(logs, 3))
	}
}

// 500 unauthenticated requests used to write 500 Warn lines; the lines are
// rate-limited per reason and the next one says how many were held back.
func TestRejectionsAreRateLimited(t *testing.T) {
	logger, logs := feedtest.NewLogger()
	clk := &clock{t: fixedNow}
	h, err := New(Config{Notifier: &recorder{}, Token: testToken, Logger: logger, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"tunnel":"a","state":"down"}`)
	for range 500 {
		if code := serveDirect(h, body, nil); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	}
	for range 100 {
		serveDirect(h, []byte("garbage"), bearer)
	}
	if got := logs.Count(); got != 2 {
		t.Errorf("500 × 401 and 100 × 400: %d lines, want 2 (one per reason): %q", got, firstLines(logs, 3))
	}
	clk.Add(time.Second)
	serveDirect(h, body, nil)
	lines := logs.Lines()
	if last := lines[len(lines)-1]; !strings.Contains(last, "suppressed=499") {
		t.Errorf("first line after the burst = %q, want suppressed=499", last)
	}
	if st := h.Stats(); st.Unauthorized != 501 || st.Rejected != 100 {
		t.Errorf("stats = %+v: the counters keep the totals", st)
	}
}

func firstLines(l *feedtest.Logs, n int) []string {
	lines := l.Lines()
	return lines[:min(n, len(lines))]
}
