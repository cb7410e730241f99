package webhookfeed

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzHandler: any body, signed or bearer-authenticated, gets a documented
// status; 204 only with at least one valid event delivered, never an event
// otherwise. Seeds: testdata/*.json.
func FuzzHandler(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	now := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		rec := &recorder{}
		w, err := New(Config{Notifier: rec, Token: testToken, HMACKey: testKey, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sign {
			SignRequest(req, body, testKey, now)
		} else {
			req.Header.Set("Authorization", "Bearer "+testToken)
		}
		rw := httptest.NewRecorder()
		w.ServeHTTP(rw, req)
		evs := rec.take()
		switch rw.Code {
		case http.StatusNoContent:
			if len(evs) == 0 {
				t.Fatal("204 without an event")
			}
			for _, ev := range evs {
				if err := ev.Validate(); err != nil {
					t.Fatalf("invalid event %+v: %v", ev, err)
				}
			}
		case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
			if len(evs) != 0 {
				t.Fatalf("status %d with events %v", rw.Code, evs)
			}
			if msg := strings.TrimSuffix(rw.Body.String(), "\n"); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("error body not one line: %q", msg)
			}
		default:
			t.Fatalf("status %d (%s)", rw.Code, rw.Body.String())
		}
	})
}
