package webhookfeed

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Two endpoints that check the same key (two pools' webhooks on one
// server, or two services): a request signed for one could be replayed
// against the other. SignRequestPath binds the signature to method and
// path; RequirePath refuses signatures that are not bound.
func TestPathBoundSignatures(t *testing.T) {
	recA, recB := &recorder{}, &recorder{}
	a, err := New(Config{Notifier: recA, HMACKey: testKey, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Notifier: recB, HMACKey: testKey, RequirePath: true, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/a", a)
	mux.Handle("/b", b)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	send := func(path string, sign func(*http.Request, []byte, []byte, time.Time), id string, to string) (int, string) {
		body := []byte(`{"tunnel":"aws-1","state":"down","id":"` + id + `"}`)
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		sign(req, body, testKey, fixedNow)
		// Replay the signed headers and body against another path.
		if to != "" {
			replay, _ := http.NewRequest(http.MethodPost, srv.URL+to, bytes.NewReader(body))
			replay.Header = req.Header.Clone()
			req = replay
		}
		return do(t, req)
	}
	// A path-bound request is good where it was signed for ...
	if code, msg := send("/a", SignRequestPath, "1", ""); code != http.StatusNoContent {
		t.Errorf("bound, to /a: %d %q", code, msg)
	}
	// ... and nowhere else.
	if code, _ := send("/a", SignRequestPath, "2", "/b"); code != http.StatusUnauthorized {
		t.Errorf("bound to /a, replayed to /b: %d, want 401", code)
	}
	if code, msg := send("/b", SignRequestPath, "3", ""); code != http.StatusNoContent {
		t.Errorf("bound, to /b: %d %q", code, msg)
	}
	// An unbound (v1) signature is still accepted where RequirePath is off,
	// and refused where it is on.
	if code, msg := send("/a", SignRequest, "4", ""); code != http.StatusNoContent {
		t.Errorf("unbound, to /a: %d %q", code, msg)
	}
	code, msg := send("/b", SignRequest, "5", "")
	if code != http.StatusUnauthorized || !strings.Contains(msg, "path") {
		t.Errorf("unbound, to /b with RequirePath: %d %q, want 401 naming the path", code, msg)
	}
	if na, nb := len(recA.take()), len(recB.take()); na != 2 || nb != 1 {
		t.Errorf("events: %d at /a, %d at /b; want 2 and 1", na, nb)
	}
}
