package snsfeed

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzHandler posts arbitrary bodies and type headers. Whatever comes in:
// no panic, a known status, one printable reply line, only valid events,
// and no fetch from a URL the host rules refuse. The seeds (signed
// messages of every type, the testdata envelopes, broken shapes) run
// under plain go test.
func FuzzHandler(f *testing.F) {
	p := getPKI(f)
	alarm := notification(alarmJSON("ALARM", "2026-03-14T11:59:57.412+0000"))
	seeds := [][]byte{
		alarm.signedBy(p.key).json(),
		alarm.with("SignatureVersion", "1", "MessageId", "v1").signedBy(p.key).json(),
		notification(alarmJSON("OK", "2026-03-14T11:59:58+0000")).with("MessageId", "ok").signedBy(p.key).json(),
		confirmation(typeSubscribe).signedBy(p.key).json(),
		confirmation(typeUnsubscribe).with("MessageId", "u").signedBy(p.key).json(),
		alarm.signedBy(p.other).json(),
		alarm.with("SigningCertURL", "http://127.0.0.1:1/x.pem").signedBy(p.key).json(),
		confirmation(typeSubscribe).with("SubscribeURL", "https://evil.example/?Action=ConfirmSubscription").signedBy(p.key).json(),
		[]byte(`{}`), []byte(`null`), []byte(`[]`), []byte(`{"Type":"Notification"`), []byte("\x00\xff"),
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, s := range seeds {
		f.Add(s, "")
		f.Add(s, typeNotification)
	}
	allowed := []int{200, 400, 403, 405, 413, 415, 502, 503}
	f.Fuzz(func(t *testing.T, body []byte, typ string) {
		r := newRig(t, nil)
		req := httptest.NewRequest(http.MethodPost, "/sns", bytes.NewReader(body))
		req.Header.Set("x-amz-sns-message-type", typ)
		rec := httptest.NewRecorder()
		r.h.ServeHTTP(rec, req)
		if !slices.Contains(allowed, rec.Code) {
			t.Fatalf("status %d", rec.Code)
		}
		checkReplyLine(t, rec)
		for _, ev := range r.got() {
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid event %v: %v", ev, err)
			}
		}
		for _, u := range r.fetch.urls() {
			if _, err := r.h.s.checkURL(u); err != nil {
				t.Fatalf("fetched %q, which the host rules refuse", u)
			}
		}
		st := r.h.Stats()
		if st.Received != 1 || (rec.Code == 200) == (st.RejectedTotal() == 1) {
			t.Fatalf("status %d, stats %+v", rec.Code, st)
		}
	})
}
