package webhookfeed

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A page in a browser on the machine could shut the pool through an
// Insecure webhook on loopback: a cross-site POST with Content-Type
// text/plain needs no CORS preflight and was accepted (204). DNS
// rebinding (a hostile name resolving to 127.0.0.1) made even the
// same-origin checks of the browser useless.
func TestBrowsersCannotReachAnInsecureWebhook(t *testing.T) {
	_, rec, srv, _ := newTestWebhook(t, Config{Insecure: true})
	body := []byte(`{"tunnel":"aws-1","state":"down"}`)
	host := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"cross-site form post, text/plain", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"urlencoded form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"multipart form", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, http.StatusUnsupportedMediaType},
		{"no content type", map[string]string{"Content-Type": ""}, http.StatusUnsupportedMediaType},
		{"json lookalike", map[string]string{"Content-Type": "application/jsonx"}, http.StatusUnsupportedMediaType},
		{"cross-site origin", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"opaque origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"same host, other port", map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"fetch metadata cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"fetch metadata same-site (another port of localhost)", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"DNS rebinding: hostile Host", map[string]string{"Host": "evil.example:" + srv.Listener.Addr().String()[len("127.0.0.1:"):]}, http.StatusForbidden},
		{"DNS rebinding: hostile Host, no port", map[string]string{"Host": "rebind.evil.example"}, http.StatusForbidden},
		// What real senders (Alertmanager, tunnelhook, curl) and the
		// loopback names look like: accepted.
		{"json", nil, http.StatusNoContent},
		{"json with charset", map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}, http.StatusNoContent},
		{"same-origin", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, http.StatusNoContent},
		{"user typed it", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusNoContent},
		{"localhost", map[string]string{"Host": "localhost"}, http.StatusNoContent},
		{"LOCALHOST with port", map[string]string{"Host": "LOCALHOST:8080"}, http.StatusNoContent},
		{"127.0.0.0/8", map[string]string{"Host": "127.1.2.3:99"}, http.StatusNoContent},
		{"[::1]", map[string]string{"Host": "[::1]:8080"}, http.StatusNoContent},
		{"[::1] without port", map[string]string{"Host": "[::1]"}, http.StatusNoContent},
	}
	delivered := 0
	for _, c := range cases {
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range c.hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		code, msg := do(t, req)
		if code != c.want {
			t.Errorf("%s: status %d (%q), want %d", c.name, code, msg, c.want)
		}
		if code == http.StatusNoContent {
			delivered++
		}
	}
	if got := len(rec.take()); got != delivered {
		t.Errorf("%d events for %d accepted requests", got, delivered)
	}
}

// Insecure is for loopback listeners: a request from elsewhere is refused
// even with a loopback Host header.
func TestInsecureRefusesRemotePeers(t *testing.T) {
	rec := &recorder{}
	h, err := New(Config{Notifier: rec, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "http://localhost/", strings.NewReader(`{"tunnel":"a","state":"down"}`))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "192.0.2.7:5555"
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, req)
	if rw.Code != http.StatusForbidden || len(rec.take()) != 0 {
		t.Errorf("remote peer: status %d, want 403 and no event", rw.Code)
	}
}

// Content type and browser checks hold with credentials too: a bearer
// token sent by a browser page is still a browser page.
func TestAuthenticatedRequestsNeedJSONToo(t *testing.T) {
	_, rec, srv, _ := newTestWebhook(t, Config{Token: testToken})
	body := []byte(`{"tunnel":"aws-1","state":"down"}`)
	hdr := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "text/plain"}
	if code, _ := post(t, srv.URL, body, hdr); code != http.StatusUnsupportedMediaType {
		t.Errorf("bearer, text/plain: %d, want 415", code)
	}
	hdr = map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "cross-site"}
	if code, _ := post(t, srv.URL, body, hdr); code != http.StatusForbidden {
		t.Errorf("bearer, cross-site: %d, want 403", code)
	}
	// With a token, the Host is not restricted: the webhook may be served
	// under any name (behind a proxy, on a LAN address).
	hdr = map[string]string{"Authorization": "Bearer " + testToken, "Host": "flapguard.internal.example"}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(body)))
	req.Host = hdr["Host"]
	req.Header.Set("Authorization", hdr["Authorization"])
	req.Header.Set("Content-Type", "application/json")
	if code, msg := do(t, req); code != http.StatusNoContent {
		t.Errorf("bearer, any Host: %d %s, want 204", code, msg)
	}
	if n := len(rec.take()); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}
