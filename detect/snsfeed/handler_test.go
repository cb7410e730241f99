package snsfeed

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

func TestAlarmAndOKBecomeDownAndUp(t *testing.T) {
	for _, ver := range []string{"1", "2"} {
		t.Run("SignatureVersion"+ver, func(t *testing.T) {
			r := newRig(t, nil)
			down := notification(alarmJSON("ALARM", "2026-03-14T11:59:57.412+0000")).with("SignatureVersion", ver)
			up := notification(alarmJSON("OK", "2026-03-14T11:59:58.020+0000")).with("SignatureVersion", ver, "MessageId", "second")
			for _, m := range []msg{down, up} {
				if rec := r.send(m); rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			want := []detect.Event{
				{Tunnel: "aws-1", State: detect.Down, At: time.Date(2026, 3, 14, 11, 59, 57, 412e6, time.UTC), Source: "sns:" + testVPN + "-tunnel-1-down"},
				{Tunnel: "aws-1", State: detect.Up, At: time.Date(2026, 3, 14, 11, 59, 58, 20e6, time.UTC), Source: "sns:" + testVPN + "-tunnel-1-down"},
			}
			got := r.got()
			if len(got) != 2 {
				t.Fatalf("events %v", got)
			}
			for i := range want {
				if got[i].Tunnel != want[i].Tunnel || got[i].State != want[i].State || !got[i].At.Equal(want[i].At) || got[i].Source != want[i].Source {
					t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
				}
				if err := got[i].Validate(); err != nil {
					t.Errorf("event %d: %v", i, err)
				}
			}
			st := r.h.Stats()
			if st.Received != 2 || st.Events != 2 || st.RejectedTotal() != 0 {
				t.Fatalf("stats %+v", st)
			}
			// One certificate fetch for both messages: the cache works.
			if u := r.fetch.urls(); !slices.Equal(u, []string{testCertURL}) {
				t.Fatalf("fetches %q", u)
			}
		})
	}
}

func TestSubscriptionConfirmationFetchesSubscribeURL(t *testing.T) {
	r := newRig(t, nil)
	rec := r.send(confirmation(typeSubscribe))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if u := r.fetch.urls(); !slices.Equal(u, []string{testCertURL, testSubURL}) {
		t.Fatalf("fetches %q", u)
	}
	if st := r.h.Stats(); st.Confirmations != 1 || st.Events != 0 {
		t.Fatalf("stats %+v", st)
	}
	logs := r.logText()
	if !strings.Contains(logs, testTopic+":1") {
		t.Errorf("log does not name the subscription: %s", logs)
	}
	if strings.Contains(logs, "c0ffee") {
		t.Errorf("log holds the confirmation token: %s", logs)
	}
}

func TestConfirmationFailureIs502AndRetryable(t *testing.T) {
	r := newRig(t, nil)
	r.fetch.set(testSubURL, nil)
	delete(r.fetch.bodies, testSubURL)
	m := confirmation(typeSubscribe)
	rec := r.send(m)
	r.wantRejected(rec, http.StatusBadGateway, ReasonConfirm)
	if strings.Contains(rec.Body.String(), "c0ffee") || strings.Contains(r.logText(), "c0ffee") {
		t.Fatalf("token leaked: %s / %s", rec.Body, r.logText())
	}
	// SNS's retry (same MessageId) is not taken for a duplicate.
	r.fetch.set(testSubURL, []byte("<ok/>"))
	if rec := r.send(m); rec.Code != http.StatusOK || r.h.Stats().Confirmations != 1 {
		t.Fatalf("retry: status %d, stats %+v", rec.Code, r.h.Stats())
	}
}

func TestUnsubscribeConfirmationIsCountedNotFollowed(t *testing.T) {
	r := newRig(t, nil)
	rec := r.send(confirmation(typeUnsubscribe))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if u := r.fetch.urls(); !slices.Equal(u, []string{testCertURL}) {
		t.Fatalf("fetched %q: an unsubscribe must not resubscribe", u)
	}
	if st := r.h.Stats(); st.Unsubscribes != 1 || st.Confirmations != 0 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(r.logText(), "unsubscribed") {
		t.Fatalf("not logged: %s", r.logText())
	}
}

func TestRedeliveryIsNotAppliedTwice(t *testing.T) {
	r := newRig(t, nil)
	m := notification(alarmJSON("ALARM", "2026-03-14T11:59:57.412+0000"))
	for range 3 {
		if rec := r.send(m); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if st := r.h.Stats(); st.Events != 1 || st.Duplicates != 2 || len(r.got()) != 1 {
		t.Fatalf("stats %+v, events %v", st, r.got())
	}

	off := newRig(t, func(c *Config) { c.SeenIDs = -1 })
	off.send(m)
	off.send(m)
	if n := len(off.got()); n != 2 {
		t.Fatalf("SeenIDs -1: %d events, want 2", n)
	}
}

func TestIgnoredAndUnmappedAlarms(t *testing.T) {
	r := newRig(t, nil)
	insufficient := notification(alarmJSON("INSUFFICIENT_DATA", "2026-03-14T11:59:57+0000")).with("MessageId", "a")
	inverted := notification(strings.Replace(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"), "LessThanThreshold", "GreaterThanOrEqualToThreshold", 1)).with("MessageId", "b")
	unmapped := notification(strings.ReplaceAll(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"), testVPN, "vpn-0nothing")).with("MessageId", "c")
	for _, m := range []msg{insufficient, inverted, unmapped} {
		rec := r.send(m)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "ignored") {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if st := r.h.Stats(); st.Ignored != 2 || st.Unmapped != 1 || st.Events != 0 {
		t.Fatalf("stats %+v", st)
	}
	if ev := r.got(); len(ev) != 0 {
		t.Fatalf("events %v", ev)
	}
}

func TestRequestShapeRejections(t *testing.T) {
	good := notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000")).signedBy(getPKI(t).key)
	tests := []struct {
		name   string
		method string
		ctype  string
		header string
		body   []byte
		code   int
		reason Reason
	}{
		{"GET", http.MethodGet, "", "", nil, 405, ReasonMethod},
		{"PUT", http.MethodPut, "text/plain", "", nil, 405, ReasonMethod},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", "", []byte("Type=Notification"), 415, ReasonContentType},
		{"bad content type", http.MethodPost, "text/plain; charset", "", nil, 415, ReasonContentType},
		{"huge", http.MethodPost, "text/plain", "", bytes.Repeat([]byte("x"), DefaultMaxBody+1), 413, ReasonTooLarge},
		{"empty", http.MethodPost, "text/plain", "", nil, 400, ReasonMalformed},
		{"not JSON", http.MethodPost, "text/plain", "", []byte("hello\x00\x1b[31m"), 400, ReasonMalformed},
		{"JSON array", http.MethodPost, "application/json", "", []byte(`[1,2]`), 400, ReasonMalformed},
		{"trailing", http.MethodPost, "application/json", "", append(good.json(), []byte(" {}")...), 400, ReasonMalformed},
		{"unknown Type", http.MethodPost, "", "", good.with("Type", "Notification\x1b[2J").json(), 400, ReasonMalformed},
		{"no Type", http.MethodPost, "", "", good.without("Type").json(), 400, ReasonMalformed},
		{"header disagrees", http.MethodPost, "", typeSubscribe, good.json(), 400, ReasonMalformed},
		{"no MessageId", http.MethodPost, "", "", good.without("MessageId").json(), 400, ReasonMalformed},
		{"no Signature", http.MethodPost, "", "", good.without("Signature").json(), 400, ReasonMalformed},
		{"no SigningCertURL", http.MethodPost, "", "", good.without("SigningCertURL").json(), 400, ReasonMalformed},
		{"confirmation without SubscribeURL", http.MethodPost, "", "", confirmation(typeSubscribe).signedBy(getPKI(t).key).without("SubscribeURL").json(), 400, ReasonMalformed},
		{"bad Timestamp", http.MethodPost, "", "", good.with("Timestamp", "yesterday").json(), 400, ReasonMalformed},
		{"wrong topic", http.MethodPost, "", "", good.with("TopicArn", "arn:aws:sns:us-west-2:123456789012:other").json(), 403, ReasonTopic},
		{"expired", http.MethodPost, "", "", good.with("Timestamp", "2026-03-14T11:50:00Z").json(), 400, ReasonExpired},
		{"from the future", http.MethodPost, "", "", good.with("Timestamp", "2026-03-14T12:10:00Z").json(), 400, ReasonExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			req := httptest.NewRequest(tc.method, "/sns", bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.header != "" {
				req.Header.Set("x-amz-sns-message-type", tc.header)
			}
			rec := httptest.NewRecorder()
			r.h.ServeHTTP(rec, req)
			r.wantRejected(rec, tc.code, tc.reason)
			if u := r.fetch.urls(); len(u) != 0 {
				t.Fatalf("fetched %q for a request refused before verification", u)
			}
			if tc.code == 405 && rec.Header().Get("Allow") != http.MethodPost {
				t.Fatalf("405 without Allow: POST")
			}
		})
	}
}

func TestNonAlarmMessages(t *testing.T) {
	for name, message := range map[string]string{
		"plain text":       "Hello world!",
		"JSON string":      `"ALARM"`,
		"empty object":     `{}`,
		"unknown state":    alarmJSON("BROKEN", "2026-03-14T11:59:57+0000"),
		"bad change time":  alarmJSON("ALARM", "14/03/26 11:59"),
		"future change":    alarmJSON("ALARM", "2026-03-14T13:00:00+0000"),
		"Dimensions wrong": strings.Replace(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"), `"Dimensions":[`, `"Dimensions":{"x":[`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, nil)
			r.wantRejected(r.send(notification(message)), http.StatusBadRequest, ReasonMessage)
		})
	}
}

func TestMaxAgeOffAndCustom(t *testing.T) {
	old := notification(alarmJSON("ALARM", "2026-03-14T10:00:00+0000")).with("Timestamp", "2026-03-14T10:00:01Z")
	r := newRig(t, func(c *Config) { c.MaxAge = -1 })
	if rec := r.send(old); rec.Code != http.StatusOK {
		t.Fatalf("MaxAge -1: status %d: %s", rec.Code, rec.Body)
	}
	r = newRig(t, func(c *Config) { c.MaxAge = 3 * time.Hour })
	if rec := r.send(old); rec.Code != http.StatusOK {
		t.Fatalf("MaxAge 3h: status %d: %s", rec.Code, rec.Body)
	}
	r = newRig(t, nil)
	r.wantRejected(r.send(old), http.StatusBadRequest, ReasonExpired)
}

func TestMaxBodyConfigured(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxBody = 512 })
	body := notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000")).signedBy(r.pki.key).json()
	if len(body) <= 512 {
		t.Fatalf("test body of %d bytes is too small", len(body))
	}
	r.wantRejected(r.post(body, ""), http.StatusRequestEntityTooLarge, ReasonTooLarge)
}

func TestRepliesEscapeInput(t *testing.T) {
	r := newRig(t, nil)
	evil := "arn:aws:sns:us-west-2:1:x\r\n<script>\x1b[2J\u2028" + strings.Repeat("A", 5000)
	rec := r.send(notification("x").with("TopicArn", evil))
	r.wantRejected(rec, http.StatusForbidden, ReasonTopic)
	if strings.Contains(rec.Body.String(), "<script>\x1b") || strings.Contains(rec.Body.String(), strings.Repeat("A", 200)) {
		t.Fatalf("reply echoes raw input: %q", rec.Body)
	}
}

func TestFloodLogsOneLinePerReasonPerInterval(t *testing.T) {
	r := newRig(t, nil)
	bad := notification("x").with("TopicArn", "arn:aws:sns:us-west-2:1:other").signedBy(r.pki.key).json()
	for range 1000 {
		r.post(bad, "")
	}
	r.post([]byte("{"), "")
	if n := strings.Count(r.logText(), "request refused"); n != 2 {
		t.Fatalf("%d log lines for 1001 refusals of two reasons, want 2:\n%s", n, r.logText())
	}
	if st := r.h.Stats(); st.Rejected[ReasonTopic] != 1000 || st.Rejected[ReasonMalformed] != 1 || st.Received != 1001 {
		t.Fatalf("stats %+v", st)
	}
	r.advance(DefaultLogInterval)
	r.post(bad, "")
	if !strings.Contains(r.logText(), "suppressed=999") {
		t.Fatalf("the next line does not count the suppressed ones:\n%s", r.logText())
	}
}

func TestSubscribeURLOffAWSIsNotFetched(t *testing.T) {
	for name, u := range map[string]string{
		"another host":   "https://evil.example/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=c0ffee",
		"http":           strings.Replace(testSubURL, "https://", "http://", 1),
		"another topic":  strings.Replace(testSubURL, "vpn-tunnel-state", "other", 1),
		"another action": strings.Replace(testSubURL, "ConfirmSubscription", "Unsubscribe", 1),
		"with a port":    strings.Replace(testSubURL, ".com/", ".com:444/", 1),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, nil)
			r.fetch.set(u, []byte("<ok/>"))
			r.wantRejected(r.send(confirmation(typeSubscribe).with("SubscribeURL", u)), http.StatusForbidden, ReasonSubscribeURL)
			if got := r.fetch.urls(); !slices.Equal(got, []string{testCertURL}) {
				t.Fatalf("fetched %q", got)
			}
			if st := r.h.Stats(); st.Confirmations != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestConcurrentDeliveries(t *testing.T) {
	r := newRig(t, nil)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m := notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000")).with("MessageId", fmt.Sprintf("%d-%d", w, i))
				if rec := r.send(m); rec.Code != http.StatusOK {
					t.Errorf("status %d: %s", rec.Code, rec.Body)
				}
				r.send(m) // and its redelivery
			}
		})
	}
	wg.Wait()
	st := r.h.Stats()
	if st.Events != workers*each || st.Duplicates != workers*each || len(r.got()) != workers*each {
		t.Fatalf("stats %+v", st)
	}
	if n := len(r.fetch.urls()); n < 1 || n > workers {
		t.Fatalf("%d certificate fetches for one URL", n)
	}
}
