package snse2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// delivery is one POST that reached the subscriber endpoint: the raw body
// as GoAws sent it and what the snsfeed handler answered.
type delivery struct {
	typ    string // x-amz-sns-message-type
	body   []byte
	status int
	reply  string
}

// tap serves h on 127.0.0.1 and reports every request it handled, so the
// test can wait for deliveries instead of sleeping, and can replay or
// tamper with a body GoAws really signed.
type tap struct {
	srv        *httptest.Server
	deliveries chan delivery
}

func startTap(t *testing.T, h http.Handler) *tap {
	t.Helper()
	tp := &tap{deliveries: make(chan delivery, 64)}
	tp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		tp.deliveries <- delivery{typ: r.Header.Get("x-amz-sns-message-type"), body: body, status: rec.Code, reply: rec.Body.String()}
	}))
	t.Cleanup(tp.srv.Close)
	return tp
}

func (tp *tap) next(t *testing.T, what string) delivery {
	t.Helper()
	select {
	case d := <-tp.deliveries:
		return d
	case <-deadline():
		t.Fatalf("timed out waiting for GoAws to deliver %s", what)
	}
	panic("unreachable")
}

// post sends body to the endpoint directly, as an attacker or a replay
// would, and returns the delivery the tap saw.
func (tp *tap) post(t *testing.T, body []byte, typ string) delivery {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tp.srv.URL+"/sns", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-amz-sns-message-type", typ)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return tp.next(t, "the direct POST")
}

// deadline bounds every wait: reaching it fails the test; it never
// decides an outcome by itself.
func deadline() <-chan time.Time { return time.After(30 * time.Second) }
