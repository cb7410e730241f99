package webhookfeed

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedtest"
)

// refuser is a detect.Acceptor that takes only the tunnels in ok and
// refuses the rest as a *pool.Pool refuses an event older than its
// EventMaxAge.
type refuser struct {
	ok    map[string]bool
	asked []detect.Event
}

func (r *refuser) Notify(ev detect.Event) { _ = r.Accept(ev) }
func (r *refuser) Accept(ev detect.Event) error {
	r.asked = append(r.asked, ev)
	if r.ok[ev.Tunnel] {
		return nil
	}
	return fmt.Errorf("%w: event is 3m0s old (EventMaxAge 2m0s)", detect.ErrIgnored)
}

// Issue 22 item 4: on main the handler answered 204 for an event its
// receiver dropped (the pool counted it ignored; the sender was told it
// was taken). Now the answer is the receiver's verdict: 204 all taken,
// 200 naming the part not taken, 422 none taken.
func TestAnswerIsTheReceiversVerdict(t *testing.T) {
	r := &refuser{ok: map[string]bool{"aws-1": true}}
	h, err := New(Config{Notifier: r, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	if code, body := post(t, srv.URL, []byte(`{"tunnel":"aws-1","state":"down"}`), bearer); code != http.StatusNoContent {
		t.Errorf("taken: %d %q, want 204", code, body)
	}
	code, body := post(t, srv.URL, []byte(`{"tunnel":"aws-2","state":"down"}`), bearer)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "not taken") || !strings.Contains(body, "EventMaxAge") {
		t.Errorf("refused: %d %q, want 422 naming the receiver's reason", code, body)
	}
	am := `{"version":"4","status":"firing","alerts":[
		{"status":"firing","labels":{"tunnel":"aws-1"}},
		{"status":"firing","labels":{"tunnel":"aws-2"}}]}`
	code, body = post(t, srv.URL, []byte(am), bearer)
	if code != http.StatusOK || !strings.Contains(body, "1 of 2 events taken") {
		t.Errorf("half taken: %d %q, want 200 saying 1 of 2", code, body)
	}
	st := h.Stats()
	if st.Events != 2 || st.Refused != 2 || len(r.asked) != 4 {
		t.Errorf("stats %+v, asked %d; want Events 2, Refused 2, asked 4", st, len(r.asked))
	}
}

type fakePool struct{}

func (*fakePool) Notify(detect.Event) {}

// Issue 23: New accepted a typed nil (a (*pool.Pool)(nil) in the
// Notifier interface); the first event then panicked in the handler.
func TestNewRefusesTypedNilNotifier(t *testing.T) {
	var p *fakePool
	_, err := New(Config{Notifier: p, Token: testToken})
	if err == nil || !strings.Contains(err.Error(), "Notifier is nil") {
		t.Fatalf("typed nil Notifier: err = %v, want a clear refusal", err)
	}
	var f detect.NotifierFunc
	if _, err := New(Config{Notifier: f, Token: testToken}); err == nil {
		t.Fatal("nil NotifierFunc accepted")
	}
}

// Issue 22 item 6: on main, an Insecure webhook behind a reverse proxy on
// the same host accepted anyone: the proxy connects from 127.0.0.1 and
// this one rewrites Host to 127.0.0.1, so a remote client's "*" DOWN got
// 204. Now the proxy's X-Forwarded-For gives it away: 403, no event.
func TestInsecureRefusesRequestsThroughAProxy(t *testing.T) {
	_, rec, srv, _ := newTestWebhook(t, Config{Insecure: true})
	target, _ := url.Parse(srv.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = target.Host // 127.0.0.1:port, whatever the client sent
		pr.SetXForwarded()
	}}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	code, body := post(t, proxy.URL, []byte(`{"tunnel":"*","state":"down"}`), map[string]string{"Host": "attacker.example"})
	if code != http.StatusForbidden || !strings.Contains(body, "proxy") {
		t.Errorf("through a proxy: %d %q, want 403 naming the proxy", code, body)
	}
	for _, hdr := range []string{"Forwarded", "X-Forwarded-Host", "X-Real-IP", "Via"} {
		code, _ := post(t, srv.URL, []byte(`{"tunnel":"*","state":"down"}`), map[string]string{hdr: "for=192.0.2.1"})
		if code != http.StatusForbidden {
			t.Errorf("header %s: %d, want 403", hdr, code)
		}
	}
	if n := len(rec.take()); n != 0 {
		t.Errorf("%d events through a proxy, want 0", n)
	}
	// Without proxy headers a local program is still served.
	if code, body := post(t, srv.URL, []byte(`{"tunnel":"*","state":"down"}`), nil); code != http.StatusNoContent {
		t.Errorf("direct: %d %q, want 204", code, body)
	}
}

// Issue 22 item 6: on main a RemoteAddr that does not parse (a Unix
// socket's "@", or "") skipped the loopback-peer check: 204.
func TestInsecureRefusesUnparsablePeers(t *testing.T) {
	rec := &recorder{}
	h, err := New(Config{Notifier: rec, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ra := range []string{"@", "", "localhost:80", "/run/hook.sock"} {
		req := httptest.NewRequest(http.MethodPost, "http://localhost/", strings.NewReader(`{"tunnel":"a","state":"down"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = ra
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		if rw.Code != http.StatusForbidden {
			t.Errorf("RemoteAddr %q: status %d, want 403", ra, rw.Code)
		}
	}
	if n := len(rec.take()); n != 0 {
		t.Errorf("%d events, want 0", n)
	}
}

// Issue 22 item 9: bidi controls (U+202E, U+2066) in a webhook's source,
// or in an alertname quoted by a reason, reached log lines raw. Now a
// source loses them and a quoted reason escapes them.
func TestNoFormatCharactersReachLogsOrEvents(t *testing.T) {
	logger, logs := feedtest.NewLogger()
	rec := &recorder{}
	h, err := New(Config{Notifier: rec, Token: testToken, Logger: logger, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	serveDirect(h, []byte(`{"tunnel":"aws-1","state":"down","source":"hook\u202eevil\u2066"}`), bearer)
	serveDirect(h, []byte(`{"version":"4","alerts":[{"status":"firing","labels":{"tunnel":"aws-2"}},{"status":"firing","labels":{"alertname":"x\u202ey"}}]}`), bearer)
	serveDirect(h, []byte(`{"tunnel":"aws\u202e-1","state":"down"}`), bearer)
	evs := rec.take()
	if len(evs) != 2 {
		t.Fatalf("events %+v, want 2 (the id with U+202E refused)", evs)
	}
	for _, ev := range evs {
		if strings.ContainsAny(ev.Source+ev.Tunnel, "\u202e\u2066") {
			t.Errorf("event %+q carries a format character", ev)
		}
	}
	for _, l := range logs.Lines() {
		if strings.ContainsAny(l, "\u202e\u2066") {
			t.Errorf("log line carries a format character: %+q", l)
		}
	}
	if len(logs.Lines()) == 0 {
		t.Fatal("nothing logged: the test proves nothing")
	}
}

type failingBody struct{}

func (failingBody) Read([]byte) (int, error) {
	return 0, errors.New("read tcp 10.0.0.2:443->198.51.100.7:5555: i/o timeout")
}

// Issue 22 item 7: an error body quoted the read error, which names the
// listener's and the client's socket addresses. Now it is a fixed text,
// and the detail is logged.
func TestReadErrorBodyNamesNoSocket(t *testing.T) {
	logger, logs := feedtest.NewLogger()
	h, err := New(Config{Notifier: &recorder{}, Token: testToken, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", failingBody{})
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, req)
	if rw.Code != http.StatusBadRequest || strings.Contains(rw.Body.String(), "10.0.0.2") || strings.Contains(rw.Body.String(), "tcp") {
		t.Errorf("%d %q: want 400 without socket text", rw.Code, rw.Body)
	}
	if !strings.Contains(strings.Join(logs.Lines(), "\n"), "10.0.0.2:443") {
		t.Errorf("the log lost the detail: %q", logs.Lines())
	}
}
