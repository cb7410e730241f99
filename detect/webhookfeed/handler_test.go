package webhookfeed

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// recorder is a Notifier that keeps what it got.
type recorder struct {
	mu  sync.Mutex
	evs []detect.Event
}

func (r *recorder) Notify(ev detect.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) take() []detect.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evs
	r.evs = nil
	return out
}

const testToken = "s3cret-token"

var testKey = []byte("hmac-key-0123456789")

var fixedNow = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestWebhook(t *testing.T, cfg Config) (*Handler, *recorder, *httptest.Server, *clock) {
	t.Helper()
	rec := &recorder{}
	clk := &clock{t: fixedNow}
	cfg.Notifier = rec
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return w, rec, srv, clk
}

// post sends body with the given headers and returns status and body.
func post(t *testing.T, url string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var bearer = map[string]string{"Authorization": "Bearer " + testToken}

func TestNewRequiresAuth(t *testing.T) {
	_, err := New(Config{Notifier: &recorder{}})
	if err == nil || !strings.Contains(err.Error(), "Token or HMACKey") || !strings.Contains(err.Error(), "Insecure") {
		t.Errorf("no secret: err = %v, want it to name Token, HMACKey and Insecure", err)
	}
	if _, err := New(Config{Token: "x"}); err == nil || !strings.Contains(err.Error(), "Notifier") {
		t.Errorf("no notifier: err = %v", err)
	}
	if _, err := New(Config{Notifier: &recorder{}, Insecure: true}); err != nil {
		t.Errorf("explicit Insecure: %v", err)
	}
}

func TestFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 10 {
		t.Fatalf("only %d webhook fixtures", len(files))
	}
	w, rec, srv, _ := newTestWebhook(t, Config{Token: testToken})
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.Atoi(filepath.Base(f)[:3])
		code, msg := post(t, srv.URL, body, bearer)
		if code != want {
			t.Errorf("%s: status %d (%q), want %d", f, code, msg, want)
		}
		evs := rec.take()
		if code != http.StatusNoContent {
			if len(evs) != 0 {
				t.Errorf("%s: status %d but delivered %v", f, code, evs)
			}
			if strings.Count(strings.TrimSpace(msg), "\n") != 0 || msg == "" {
				t.Errorf("%s: error body is not one line: %q", f, msg)
			}
			continue
		}
		if len(evs) == 0 {
			t.Errorf("%s: 204 without an event", f)
		}
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				t.Errorf("%s: invalid event delivered: %v", f, err)
			}
		}
	}
	if st := w.Stats(); st.Requests != uint64(len(files)) || st.Events == 0 || st.Rejected == 0 || st.Ignored == 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPlainEventContent(t *testing.T) {
	_, rec, srv, _ := newTestWebhook(t, Config{Token: testToken})
	body := `{"tunnel":"aws-1","state":"DOWN","at":"2026-11-25T19:30:52Z","source":"hook\u0007er"}`
	if code, msg := post(t, srv.URL, []byte(body), bearer); code != http.StatusNoContent {
		t.Fatalf("status %d %s", code, msg)
	}
	evs := rec.take()
	want := detect.Event{Tunnel: "aws-1", State: detect.Down, At: time.Date(2026, 11, 25, 19, 30, 52, 0, time.UTC), Source: "webhook:hooker"}
	if len(evs) != 1 || evs[0].Tunnel != want.Tunnel || evs[0].State != want.State || !evs[0].At.Equal(want.At) || evs[0].Source != want.Source {
		t.Errorf("events = %+v, want [%+v]", evs, want)
	}
	post(t, srv.URL, []byte(`{"tunnel":"*","state":"up"}`), bearer)
	if evs := rec.take(); len(evs) != 1 || evs[0].Tunnel != detect.AllTunnels || evs[0].State != detect.Up {
		t.Errorf(`"*" events = %+v, want one Up for every tunnel`, evs)
	}
}

func TestAlertmanager(t *testing.T) {
	_, rec, srv, _ := newTestWebhook(t, Config{Token: testToken, TunnelLabel: "vpn"})
	body := `{"version":"4","status":"firing","receiver":"r","alerts":[
	 {"status":"resolved","labels":{"vpn":"a"},"startsAt":"2026-11-25T19:00:00Z","endsAt":"2026-11-25T19:10:00Z"},
	 {"status":"firing","labels":{"vpn":"a"},"startsAt":"2026-11-25T19:20:00Z","endsAt":"0001-01-01T00:00:00Z"},
	 {"status":"resolved","labels":{"vpn":"b"},"startsAt":"2026-11-25T19:00:00Z","endsAt":"2026-11-25T19:15:00Z"},
	 {"labels":{"vpn":"c"},"startsAt":"2026-11-25T19:00:00Z","endsAt":"0001-01-01T00:00:00Z"},
	 {"labels":{"vpn":"d"},"startsAt":"2026-11-25T19:00:00Z","endsAt":"2026-11-25T19:05:00Z"},
	 {"status":"weird","labels":{"vpn":"e"}},
	 {"status":"firing","labels":{"tunnel":"f"}}]}`
	if code, msg := post(t, srv.URL, []byte(body), bearer); code != http.StatusNoContent {
		t.Fatalf("status %d %s", code, msg)
	}
	got := map[string]string{}
	for _, ev := range rec.take() {
		got[ev.Tunnel] = ev.State.String() + "@" + ev.At.Format("15:04")
	}
	want := map[string]string{"a": "down@19:20", "b": "up@19:15", "c": "down@19:00", "d": "up@19:05"}
	if len(got) != len(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("tunnel %s: %q, want %q", k, got[k], v)
		}
	}
}

func TestBearer(t *testing.T) {
	w, rec, srv, _ := newTestWebhook(t, Config{Token: testToken})
	body := []byte(`{"tunnel":"aws-1","state":"down"}`)
	for _, h := range []map[string]string{
		nil,
		{"Authorization": "Bearer wrong"},
		{"Authorization": "Bearer " + testToken + "x"},
		{"Authorization": "Basic " + testToken},
		{"Authorization": testToken},
		{SignatureHeader: "sha256=00"}, // no HMACKey configured
	} {
		if code, _ := post(t, srv.URL, body, h); code != http.StatusUnauthorized {
			t.Errorf("headers %v: status %d, want 401", h, code)
		}
	}
	if code, _ := post(t, srv.URL, body, map[string]string{"Authorization": "bearer " + testToken}); code != http.StatusNoContent {
		t.Errorf("lower-case scheme: %d", code)
	}
	if n := len(rec.take()); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
	if st := w.Stats(); st.Unauthorized != 6 {
		t.Errorf("unauthorized = %d, want 6", st.Unauthorized)
	}
}

func TestMethodSizeAndInsecure(t *testing.T) {
	_, rec, srv, _ := newTestWebhook(t, Config{Insecure: true})
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	big := append([]byte(`{"tunnel":"aws-1","state":"down","source":"`), bytes.Repeat([]byte("x"), MaxBody)...)
	big = append(big, `"}`...)
	if code, _ := post(t, srv.URL, big, nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", code)
	}
	if code, _ := post(t, srv.URL, []byte(`{"tunnel":"aws-1","state":"up"}`), nil); code != http.StatusNoContent {
		t.Errorf("insecure, no auth: %d", code)
	}
	if evs := rec.take(); len(evs) != 1 {
		t.Errorf("events = %v", evs)
	}
}

func TestServerTimeouts(t *testing.T) {
	w, err := New(Config{Notifier: &recorder{}, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	s := w.Server("127.0.0.1:0")
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.Handler != w {
		t.Errorf("server = %+v", s)
	}
}
