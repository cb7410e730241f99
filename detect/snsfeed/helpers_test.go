package snsfeed

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// The test world: one topic in us-west-2, a clock fixed at testNow, and a
// test PKI (root CA → SNS-like leaf) whose leaf the fake fetcher serves
// at testCertURL.
const (
	testTopic   = "arn:aws:sns:us-west-2:123456789012:vpn-tunnel-state"
	testCertURL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-9a1c3e5f7b2d4f6a8c0e1a3b5c7d9e1f.pem"
	testSubURL  = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=c0ffee"
	testVPN     = "vpn-0abc1234def567890"
)

var testNow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// pki is generated once per test binary: RSA key generation is slow.
type pki struct {
	root     *x509.CertPool
	key      *rsa.PrivateKey // the SNS-like signing key
	leafPEM  []byte          // leaf, issued by the root
	chainPEM []byte          // leaf + intermediate, for Roots tests
	interKey *rsa.PrivateKey
	other    *rsa.PrivateKey // an impostor's key
	otherPEM []byte          // self-signed leaf for other
}

var (
	pkiOnce sync.Once
	testPKI *pki
)

func getPKI(t testing.TB) *pki {
	t.Helper()
	pkiOnce.Do(func() {
		p := &pki{}
		rootKey := mustKey(2048)
		root := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flapguard test root"},
			NotBefore: testNow.Add(-24 * time.Hour), NotAfter: testNow.Add(10 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		rootCert := mustCert(root, root, &rootKey.PublicKey, rootKey)
		p.root = x509.NewCertPool()
		p.root.AddCert(rootCert)

		p.key = mustKey(2048)
		leaf := leafTemplate(2, "sns.amazonaws.com")
		p.leafPEM = pemOf(mustCert(leaf, rootCert, &p.key.PublicKey, rootKey))

		p.interKey = mustKey(2048)
		inter := &x509.Certificate{
			SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "flapguard test intermediate"},
			NotBefore: root.NotBefore, NotAfter: root.NotAfter,
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		interCert := mustCert(inter, rootCert, &p.interKey.PublicKey, rootKey)
		chained := mustCert(leafTemplate(4, "sns.amazonaws.com"), interCert, &p.key.PublicKey, p.interKey)
		p.chainPEM = append(pemOf(chained), pemOf(interCert)...)

		p.other = mustKey(2048)
		self := leafTemplate(5, "sns.amazonaws.com")
		p.otherPEM = pemOf(mustCert(self, self, &p.other.PublicKey, p.other))
		testPKI = p
	})
	return testPKI
}

func leafTemplate(serial int64, cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
}

func mustKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustCert(tmpl, parent *x509.Certificate, pub any, signer crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// msg is an SNS envelope as a JSON object of strings.
type msg map[string]string

func notification(message string) msg {
	return msg{
		"Type": "Notification", "MessageId": "5f0c7a52-2d6e-4b7e-9c39-8a1f0e4d2b11", "TopicArn": testTopic,
		"Subject": `ALARM: "tunnel" in US West (Oregon)`, "Message": message,
		"Timestamp": "2026-03-14T11:59:58.500Z", "SignatureVersion": "2", "SigningCertURL": testCertURL,
		"UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + testTopic + ":1",
	}
}

func confirmation(typ string) msg {
	return msg{
		"Type": typ, "MessageId": "0c3e1b7a-91d4-4f0e-8a52-6b2d9e7f1c30", "Token": "c0ffee", "TopicArn": testTopic,
		"Message":      "You have chosen to subscribe to the topic " + testTopic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		"SubscribeURL": testSubURL, "Timestamp": "2026-03-14T11:59:58.751Z", "SignatureVersion": "1", "SigningCertURL": testCertURL,
	}
}

func (m msg) with(kv ...string) msg {
	c := msg{}
	for k, v := range m {
		c[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

func (m msg) without(keys ...string) msg {
	c := m.with()
	for _, k := range keys {
		delete(c, k)
	}
	return c
}

// canonical is the string to sign as the AWS guide lists it, written
// here independently of the package's stringToSign.
func (m msg) canonical() string {
	keys := []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	if m["Type"] == "Notification" {
		keys = []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	}
	var b strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			b.WriteString(k + "\n" + v + "\n")
		}
	}
	return b.String()
}

// signedBy sets Signature (for m's SignatureVersion) made with key.
func (m msg) signedBy(key *rsa.PrivateKey) msg {
	c := m.with()
	var (
		h crypto.Hash
		d []byte
	)
	if c["SignatureVersion"] == "1" {
		s := sha1.Sum([]byte(c.canonical()))
		h, d = crypto.SHA1, s[:]
	} else {
		s := sha256.Sum256([]byte(c.canonical()))
		h, d = crypto.SHA256, s[:]
	}
	sig, err := rsa.SignPKCS1v15(nil, key, h, d)
	if err != nil {
		panic(err)
	}
	c["Signature"] = base64.StdEncoding.EncodeToString(sig)
	return c
}

func (m msg) json() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// fakeFetch serves bodies by URL and records every URL asked for.
type fakeFetch struct {
	mu     sync.Mutex
	bodies map[string][]byte
	calls  []string
}

func (f *fakeFetch) fetch(_ context.Context, url string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, url)
	if b, ok := f.bodies[url]; ok {
		return b, nil
	}
	return nil, errors.New("answered 404 Not Found")
}

func (f *fakeFetch) set(url string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies[url] = body
}

func (f *fakeFetch) urls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// rig is a Handler wired to the fake fetcher, a fixed clock, a recording
// Notifier and a log buffer.
type rig struct {
	t     testing.TB
	h     *Handler
	fetch *fakeFetch
	pki   *pki

	mu     sync.Mutex
	events []detect.Event
	now    time.Time
	logs   bytes.Buffer
}

func newRig(t testing.TB, mod func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, pki: getPKI(t), now: testNow}
	r.fetch = &fakeFetch{bodies: map[string][]byte{
		testCertURL: r.pki.leafPEM,
		testSubURL:  []byte(`<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>` + testTopic + `:1</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`),
	}}
	cfg := Config{
		Notifier: detect.NotifierFunc(func(ev detect.Event) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, ev)
		}),
		Topics:  []string{testTopic},
		Tunnels: map[string]string{testVPN + "/203.0.113.10": "aws-1", "office-vpn-tunnel-2": "aws-2"},
		Fetch:   r.fetch.fetch,
		Logger:  slog.New(slog.NewTextHandler(lockedWriter{r}, nil)),
		Now:     r.clock,
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	return r
}

type lockedWriter struct{ r *rig }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.logs.Write(p)
}

func (r *rig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

func (r *rig) got() []detect.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]detect.Event(nil), r.events...)
}

func (r *rig) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.String()
}

// post sends body as SNS would: POST, text/plain, the type header.
func (r *rig) post(body []byte, typ string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/sns", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	if typ != "" {
		req.Header.Set("x-amz-sns-message-type", typ)
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

// send signs m with the test key and posts it.
func (r *rig) send(m msg) *httptest.ResponseRecorder {
	return r.post(m.signedBy(r.pki.key).json(), m["Type"])
}

// wantRejected checks a refusal: status, one counted reason, no event.
func (r *rig) wantRejected(rec *httptest.ResponseRecorder, code int, reason Reason) {
	r.t.Helper()
	if rec.Code != code {
		r.t.Fatalf("status %d, want %d; body %q", rec.Code, code, rec.Body.String())
	}
	st := r.h.Stats()
	if st.Rejected[reason] == 0 {
		r.t.Fatalf("Rejected[%s] = 0; stats %+v", reason, st)
	}
	if ev := r.got(); len(ev) != 0 {
		r.t.Fatalf("events delivered for a refused request: %v", ev)
	}
	checkReplyLine(r.t, rec)
}

// checkReplyLine: one line of printable ASCII, short.
func checkReplyLine(t testing.TB, rec *httptest.ResponseRecorder) {
	t.Helper()
	b := rec.Body.String()
	if !strings.HasSuffix(b, "\n") || strings.Count(b, "\n") != 1 || len(b) > maxReply+80 {
		t.Fatalf("reply is not one short line: %q", b)
	}
	for i := 0; i < len(b)-1; i++ {
		if b[i] < 0x20 || b[i] >= 0x7f {
			t.Fatalf("reply has byte %#x at %d: %q", b[i], i, b)
		}
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func alarmJSON(state, changeTime string) string {
	return `{"AlarmName":"` + testVPN + `-tunnel-1-down","NewStateValue":"` + state + `","StateChangeTime":"` + changeTime +
		`","Trigger":{"MetricName":"TunnelState","Namespace":"AWS/VPN","ComparisonOperator":"LessThanThreshold",` +
		`"Dimensions":[{"value":"` + testVPN + `","name":"VpnId"},{"value":"203.0.113.10","name":"TunnelIpAddress"}]}}`
}
