package webhookfeed_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/webhookfeed"
)

// A router-side script (examples/tunnelhook) posts tunnel events as JSON;
// the handler authenticates each request and hands its event to the
// Notifier, a *pool.Pool in a service. Here the Notifier prints, and the
// handler is served by httptest on loopback.
func ExampleNew() {
	h, err := webhookfeed.New(webhookfeed.Config{
		Notifier: detect.NotifierFunc(func(ev detect.Event) { fmt.Println("event:", ev) }),
		Token:    "s3cret-token",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	post := func(token, body string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/tunnel", bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println("answer:", resp.StatusCode)
	}
	post("s3cret-token", `{"tunnel":"aws-1","state":"down","source":"tunnelhook"}`)
	post("wrong", `{"tunnel":"aws-1","state":"up","source":"tunnelhook"}`)
	post("s3cret-token", `{"tunnel":"aws-1","state":"sideways"}`)
	st := h.Stats()
	fmt.Println("events:", st.Events, "unauthorized:", st.Unauthorized, "rejected:", st.Rejected)
	// Output:
	// event: tunnel aws-1 down (source webhook:tunnelhook)
	// answer: 204
	// answer: 401
	// answer: 400
	// events: 1 unauthorized: 1 rejected: 1
}

// With an HMAC key instead of a token, the sender signs each request's
// timestamp and body (SignRequest), and a signature is accepted once: a
// replayed request is refused.
func ExampleSignRequest() {
	key := []byte("a key of at least 32 bytes, shared with the sender")
	now := time.Date(2026, 11, 25, 19, 30, 52, 0, time.UTC)
	h, err := webhookfeed.New(webhookfeed.Config{
		Notifier: detect.NotifierFunc(func(ev detect.Event) { fmt.Println("event:", ev) }),
		HMACKey:  key,
		Now:      func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	body := []byte(`{"tunnel":"aws-2","state":"up","source":"tunnelhook","id":"4f1c9e2a"}`)
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/tunnel", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		webhookfeed.SignRequest(req, body, key, now)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println("answer:", rec.Code)
	}
	// Output:
	// event: tunnel aws-2 up (source webhook:tunnelhook)
	// answer: 204
	// answer: 409
}
