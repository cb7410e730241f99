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
