package webhookfeed

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

func signedReq(t *testing.T, url string, body []byte, key []byte, at time.Time) *http.Request {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	SignRequest(req, body, key, at)
	return req
}

func TestHMAC(t *testing.T) {
	w, rec, srv, clk := newTestWebhook(t, Config{HMACKey: testKey, MaxSkew: time.Minute})
	body := []byte(`{"tunnel":"aws-1","state":"down","id":"1"}`)

	if code, msg := do(t, signedReq(t, srv.URL, body, testKey, clk.Now())); code != http.StatusNoContent {
		t.Fatalf("signed: %d %s", code, msg)
	}
	// The same request again is a replay.
	if code, _ := do(t, signedReq(t, srv.URL, body, testKey, clk.Now())); code != http.StatusConflict {
		t.Errorf("replay: %d, want 409", code)
	}
	// Wrong key, tampered body, timestamp changed after signing.
	if code, _ := do(t, signedReq(t, srv.URL, body, []byte("other"), clk.Now())); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", code)
	}
	req := signedReq(t, srv.URL, body, testKey, clk.Now())
	req.Body = io.NopCloser(strings.NewReader(`{"tunnel":"aws-2","state":"down","id":"1"}`))
	req.ContentLength = -1
	if code, _ := do(t, req); code != http.StatusUnauthorized {
		t.Errorf("tampered body: %d", code)
	}
	req = signedReq(t, srv.URL, body, testKey, clk.Now())
	req.Header.Set(TimestampHeader, strconv.FormatInt(clk.Now().Unix()+1, 10))
	if code, _ := do(t, req); code != http.StatusUnauthorized {
		t.Errorf("timestamp edited: %d", code)
	}
	req = signedReq(t, srv.URL, body, testKey, clk.Now())
	req.Header.Del(TimestampHeader)
	if code, _ := do(t, req); code != http.StatusUnauthorized {
		t.Errorf("no timestamp: %d", code)
	}
	req = signedReq(t, srv.URL, body, testKey, clk.Now())
	req.Header.Set(SignatureHeader, "sha256=zz")
	if code, _ := do(t, req); code != http.StatusUnauthorized {
		t.Errorf("bad hex: %d", code)
	}
	// Correctly signed but too old / too far in the future.
	body2 := []byte(`{"tunnel":"aws-1","state":"up","id":"2"}`)
	if code, _ := do(t, signedReq(t, srv.URL, body2, testKey, clk.Now().Add(-2*time.Minute))); code != http.StatusUnauthorized {
		t.Errorf("old timestamp: %d", code)
	}
	if code, _ := do(t, signedReq(t, srv.URL, body2, testKey, clk.Now().Add(2*time.Minute))); code != http.StatusUnauthorized {
		t.Errorf("future timestamp: %d", code)
	}
	// Within the skew it is fine.
	clk.Add(30 * time.Second)
	if code, _ := do(t, signedReq(t, srv.URL, body2, testKey, fixedNow)); code != http.StatusNoContent {
		t.Errorf("30s old: %d", code)
	}
	if evs := rec.take(); len(evs) != 2 || evs[0].State != detect.Down || evs[1].State != detect.Up {
		t.Errorf("events = %v", evs)
	}
	if st := w.Stats(); st.Replayed != 1 || st.Unauthorized != 7 {
		t.Errorf("stats = %+v, want 1 replayed, 7 unauthorized", st)
	}
}

// A signed plain event without "id" sent down, up, down within one
// second: the third request had the same body, timestamp and so signature
// as the first and got 409, losing a real DOWN. Signed plain events must
// carry an id (400 without); with ids the three are three events.
func TestSignedEventsNeedAnID(t *testing.T) {
	w, rec, srv, clk := newTestWebhook(t, Config{HMACKey: testKey})
	down := []byte(`{"tunnel":"aws-1","state":"down"}`)
	code, msg := do(t, signedReq(t, srv.URL, down, testKey, clk.Now()))
	if code != http.StatusBadRequest || !strings.Contains(msg, `"id"`) {
		t.Errorf("signed without id: %d %q, want 400 naming \"id\"", code, msg)
	}
	for i, body := range []string{
		`{"tunnel":"aws-1","state":"down","id":"n1"}`,
		`{"tunnel":"aws-1","state":"up","id":"n2"}`,
		`{"tunnel":"aws-1","state":"down","id":"n3"}`,
	} {
		if code, msg := do(t, signedReq(t, srv.URL, []byte(body), testKey, clk.Now())); code != http.StatusNoContent {
			t.Errorf("request %d: %d %q, want 204", i, code, msg)
		}
	}
	evs := rec.take()
	if len(evs) != 3 || evs[2].State != detect.Down {
		t.Errorf("events = %v, want down, up, down", evs)
	}
	// The id check comes before the replay check: a repeated id-less body
	// is told what is wrong, not that it is a replay.
	if code, _ := do(t, signedReq(t, srv.URL, down, testKey, clk.Now())); code != http.StatusBadRequest {
		t.Errorf("id-less body again: %d, want 400", code)
	}
	if st := w.Stats(); st.Replayed != 0 || st.Rejected != 2 {
		t.Errorf("stats = %+v, want 2 rejected, none replayed", st)
	}
	// Bearer requests need no id: a token cannot stop a replay anyway.
	_, rec2, srv2, _ := newTestWebhook(t, Config{Token: testToken})
	if code, _ := post(t, srv2.URL, down, bearer); code != http.StatusNoContent || len(rec2.take()) != 1 {
		t.Errorf("bearer without id: %d, want 204", code)
	}
}
