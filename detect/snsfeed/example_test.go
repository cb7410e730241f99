package snsfeed_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/snsfeed"
)

// A CloudWatch alarm on an AWS VPN tunnel, delivered by SNS, becomes a
// tunnel event. In production the handler fetches SNS's signing
// certificate over HTTPS; here Config.Fetch hands it a certificate made on
// the spot, and the message is signed with its key, so the example runs
// without a network. A copy whose alarm was altered after signing is
// refused.
func ExampleNew() {
	const (
		topic   = "arn:aws:sns:us-west-2:123456789012:vpn-tunnel-state"
		certURL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
	)
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	key, certPEM := snsLikeCert(now)

	h, err := snsfeed.New(snsfeed.Config{
		Notifier: detect.NotifierFunc(func(ev detect.Event) {
			fmt.Printf("event: %s at %s\n", ev, ev.At.Format(time.RFC3339))
		}),
		Topics:  []string{topic},
		Tunnels: map[string]string{"vpn-0abc1234def567890/203.0.113.10": "aws-1"},
		Fetch: func(_ context.Context, url string) ([]byte, error) {
			if url == certURL {
				return certPEM, nil
			}
			return nil, errors.New("not found")
		},
		Now: func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	alarm := `{"AlarmName":"vpn-0abc1234def567890-tunnel-1-down","NewStateValue":"ALARM","OldStateValue":"OK",` +
		`"StateChangeTime":"2026-03-14T11:59:57.412+0000","Trigger":{"MetricName":"TunnelState","Namespace":"AWS/VPN",` +
		`"Dimensions":[{"value":"vpn-0abc1234def567890","name":"VpnId"},{"value":"203.0.113.10","name":"TunnelIpAddress"}],` +
		`"ComparisonOperator":"LessThanThreshold","Threshold":1.0}}`
	msg := map[string]string{
		"Type": "Notification", "MessageId": "5f0c7a52-2d6e-4b7e-9c39-8a1f0e4d2b11", "TopicArn": topic,
		"Subject": `ALARM: "vpn-0abc1234def567890-tunnel-1-down"`, "Message": alarm,
		"Timestamp": "2026-03-14T11:59:58.500Z", "SignatureVersion": "2", "SigningCertURL": certURL,
	}
	post := func(m map[string]string) {
		body, _ := json.Marshal(m)
		req := httptest.NewRequest(http.MethodPost, "/sns", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println("answer:", rec.Code)
	}

	msg["Signature"] = snsSign(key, msg)
	forged := maps.Clone(msg)
	forged["Message"] = strings.Replace(alarm, `"NewStateValue":"ALARM"`, `"NewStateValue":"OK"`, 1)
	forged["MessageId"] = "6a1d8b63-3e7f-4c8f-8d4a-9b2f1f5e3c22"
	post(forged) // the signature does not match: refused, nothing delivered
	post(msg)
	post(msg) // SNS redelivers: answered, but no second event
	st := h.Stats()
	fmt.Println("events:", st.Events, "duplicates:", st.Duplicates)
	// Output:
	// answer: 403
	// event: tunnel aws-1 down (source sns:vpn-0abc1234def567890-tunnel-1-down) at 2026-03-14T11:59:57Z
	// answer: 200
	// answer: 200
	// events: 1 duplicates: 1
}

// snsSign signs a Notification as SNS does (SignatureVersion 2): SHA256
// with RSA over its fields, each "name\nvalue\n", in this order.
func snsSign(key *rsa.PrivateKey, m map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"} {
		b.WriteString(k + "\n" + m[k] + "\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// snsLikeCert makes a key and a self-signed certificate valid at now.
func snsLikeCert(now time.Time) (*rsa.PrivateKey, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
