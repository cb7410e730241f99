package snse2e

import (
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/Admiral-Piett/goaws/app"
	"github.com/Admiral-Piett/goaws/app/router"
	log "github.com/sirupsen/logrus"
)

// emulator is GoAws v0.4.5 served in-process by httptest on 127.0.0.1.
// GoAws keeps its state in package variables (app.CurrentEnvironment,
// app.SyncTopics, its signing key), so one test binary runs one emulator.
//
// What GoAws does, read from app/gosns/gosns.go: Subscribe with protocol
// http(s) answers, sleeps 1 s, then POSTs a SubscriptionConfirmation
// signed with SignatureVersion 1, whose SigningCertURL and SubscribeURL
// are http://<Host>:<Port>/… on its own address; Publish POSTs the
// Notification to each HTTP subscriber before it answers, signed the same
// way; the certificate it serves at /SimpleNotificationService/<id>.pem is
// one self-signed RSA-2048 certificate made at package init and valid for
// 5 seconds only.
type emulator struct {
	srv  *httptest.Server
	host string // 127.0.0.1:port, as in its URLs

	mu       sync.Mutex // protects following fields
	requests []emuRequest
	notify   chan emuRequest
}

type emuRequest struct {
	method, action, path string
	status               int
}

func startEmulator(t *testing.T) *emulator {
	t.Helper()
	log.SetLevel(log.WarnLevel)
	e := &emulator{notify: make(chan emuRequest, 64)}
	inner := router.New()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		action := r.FormValue("Action")
		inner.ServeHTTP(sw, r)
		req := emuRequest{method: r.Method, action: action, path: r.URL.Path, status: sw.status}
		e.mu.Lock()
		e.requests = append(e.requests, req)
		e.mu.Unlock()
		e.notify <- req
	}))
	t.Cleanup(e.srv.Close)
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("emulator listens on %q, want 127.0.0.1", u.Host)
	}
	e.host = u.Host
	// What conf.LoadYamlConfig would set from a goaws.yaml; the URLs GoAws
	// puts in messages are built from Host and Port.
	app.CurrentEnvironment = app.Environment{Host: host, Port: port, Region: "us-east-1", AccountID: "123456789012"}
	return e
}

// call runs an SNS API action the way the AWS CLI does (form POST) and
// returns the XML answer.
func (e *emulator) call(t *testing.T, kv ...string) string {
	t.Helper()
	form := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	resp, err := http.PostForm(e.srv.URL+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", form.Get("Action"), resp.Status, body)
	}
	return string(body)
}

func (e *emulator) createTopic(t *testing.T, name string) string {
	t.Helper()
	var out struct {
		Arn string `xml:"CreateTopicResult>TopicArn"`
	}
	if err := xml.Unmarshal([]byte(e.call(t, "Action", "CreateTopic", "Name", name)), &out); err != nil || out.Arn == "" {
		t.Fatalf("CreateTopic answer: %v %q", err, out.Arn)
	}
	return out.Arn
}

// waitRequest waits for the emulator to serve a request matching ok.
func (e *emulator) waitRequest(t *testing.T, what string, ok func(emuRequest) bool) emuRequest {
	t.Helper()
	dl := deadline()
	for {
		select {
		case r := <-e.notify:
			if ok(r) {
				return r
			}
		case <-dl:
			t.Fatalf("timed out waiting for the emulator to serve %s", what)
		}
	}
}

func (e *emulator) count(match func(emuRequest) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.requests {
		if match(r) {
			n++
		}
	}
	return n
}

func isCertGET(r emuRequest) bool {
	return r.method == http.MethodGet && strings.HasPrefix(r.path, "/SimpleNotificationService/") && strings.HasSuffix(r.path, ".pem")
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
