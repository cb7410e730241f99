package detect

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseLine: no input panics; an event always validates; ok and err
// never come together; a rejected line is classified (ignored, malformed or
// too long). Seeds: every fixture line, so plain `go test` runs them.
func FuzzParseLine(f *testing.F) {
	for _, fl := range loadFixtures(f) {
		f.Add([]byte(fl.line))
	}
	f.Add([]byte("<34>1 2003-10-11T22:14:15.003Z h a - - [x a=\"\\\"]\"] \xef\xbb\xbfIP Tunnel[1] Down"))
	f.Add([]byte("[IKE] rekeyed CHILD_SA a{1} x with a{2}"))
	var rules []Rule
	for _, p := range Packs() {
		rules = append(rules, p.Rules...)
	}
	mapped := YamahaRTX().WithTunnelMap(map[string]string{"1": "aws-1"}).Rules
	p, err := NewParser(append(mapped, rules...), 512)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, ok, err := p.ParseLine(line)
		switch {
		case ok && err != nil:
			t.Fatalf("ok with error %v", err)
		case ok:
			if verr := ev.Validate(); verr != nil {
				t.Fatalf("event %+v fails Validate: %v", ev, verr)
			}
			if !strings.HasPrefix(ev.Source, "syslog:") {
				t.Fatalf("source %q", ev.Source)
			}
		case err != nil:
			if !errors.Is(err, ErrIgnored) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLineTooLong) {
				t.Fatalf("unclassified error %v", err)
			}
		}
	})
}

// FuzzWebhook: any body, signed or bearer-authenticated, gets a documented
// status; 204 only with at least one valid event delivered, never an event
// otherwise. Seeds: testdata/webhook/*.json.
func FuzzWebhook(f *testing.F) {
	files, _ := filepath.Glob("testdata/webhook/*.json")
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
		w, err := NewWebhook(WebhookConfig{Notifier: rec, Token: testToken, HMACKey: testKey, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
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
