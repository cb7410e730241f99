package snsfeed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSignatureRejections(t *testing.T) {
	p := getPKI(t)
	base := notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"))
	tests := []struct {
		name    string
		body    []byte
		code    int
		reason  Reason
		fetched bool // the certificate URL may be fetched
	}{
		{"unsigned", base.with("Signature", "").json(), 400, ReasonMalformed, false},
		{"not base64", base.with("Signature", "!!!not base64!!!").json(), 403, ReasonSignature, false},
		{"signed by another key", base.signedBy(p.other).json(), 403, ReasonSignature, true},
		{"Message tampered", base.signedBy(p.key).with("Message", alarmJSON("OK", "2026-03-14T11:59:57+0000")).json(), 403, ReasonSignature, true},
		{"TopicArn swapped after signing", base.with("TopicArn", "arn:aws:sns:us-west-2:123456789012:x").signedBy(p.key).with("TopicArn", testTopic).json(), 403, ReasonSignature, true},
		{"Subject removed", base.signedBy(p.key).without("Subject").json(), 403, ReasonSignature, true},
		{"Subject added", base.without("Subject").signedBy(p.key).with("Subject", "x").json(), 403, ReasonSignature, true},
		{"Timestamp changed", base.signedBy(p.key).with("Timestamp", "2026-03-14T11:59:59.000Z").json(), 403, ReasonSignature, true},
		{"version 2 signature claimed as 1", base.signedBy(p.key).with("SignatureVersion", "1").json(), 403, ReasonSignature, true},
		{"unknown SignatureVersion", base.with("SignatureVersion", "3").signedBy(p.key).json(), 400, ReasonSignatureVersion, false},
		{"SignatureVersion with junk", base.with("SignatureVersion", "1 ").signedBy(p.key).json(), 400, ReasonSignatureVersion, false},
		{"cert over http", base.with("SigningCertURL", strings.Replace(testCertURL, "https", "http", 1)).signedBy(p.key).json(), 403, ReasonCertURL, false},
		{"cert on another host", base.with("SigningCertURL", "https://evil.example/SimpleNotificationService-1.pem").signedBy(p.key).json(), 403, ReasonCertURL, false},
		{"cert on a lookalike host", base.with("SigningCertURL", "https://sns.us-west-2.amazonaws.com.evil.example/x.pem").signedBy(p.key).json(), 403, ReasonCertURL, false},
		{"cert with userinfo", base.with("SigningCertURL", "https://sns.us-west-2.amazonaws.com@evil.example/x.pem").signedBy(p.key).json(), 403, ReasonCertURL, false},
		{"cert not a .pem", base.with("SigningCertURL", "https://sns.us-west-2.amazonaws.com/?Action=Publish").signedBy(p.key).json(), 403, ReasonCertURL, false},
		{"cert URL 404", base.with("SigningCertURL", "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem").signedBy(p.key).json(), 503, ReasonCertFetch, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			r.wantRejected(r.post(tc.body, ""), tc.code, tc.reason)
			if n := len(r.fetch.urls()); (n > 0) != tc.fetched || n > 1 {
				t.Fatalf("fetched %q", r.fetch.urls())
			}
		})
	}
}

func TestMinSignatureVersion2RefusesSHA1(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MinSignatureVersion = 2 })
	m := notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"))
	r.wantRejected(r.send(m.with("SignatureVersion", "1")), http.StatusBadRequest, ReasonSignatureVersion)
	if rec := r.send(m.with("MessageId", "v2")); rec.Code != http.StatusOK {
		t.Fatalf("version 2: status %d: %s", rec.Code, rec.Body)
	}
}

func TestCertificateChecks(t *testing.T) {
	p := getPKI(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec := leafTemplate(10, "sns.amazonaws.com")
	small := mustKey(1024)
	expired := leafTemplate(11, "sns.amazonaws.com")
	expired.NotAfter = testNow.Add(-time.Minute)
	tests := []struct {
		name  string
		body  []byte
		mod   func(*Config)
		code  int
		valid bool
	}{
		{"ECDSA key", pemOf(mustCert(ec, ec, &ecKey.PublicKey, ecKey)), nil, 403, false},
		{"1024-bit key", pemOf(mustCert(leafTemplate(12, "x"), leafTemplate(12, "x"), &small.PublicKey, small)), nil, 403, false},
		{"expired", pemOf(mustCert(expired, expired, &p.key.PublicKey, p.key)), nil, 403, false},
		{"expired, emulator ignores expiry", pemOf(mustCert(expired, expired, &p.key.PublicKey, p.key)), func(c *Config) {
			c.Emulator = &Emulator{IgnoreCertExpiry: true}
		}, 200, true},
		{"garbage", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), nil, 403, false},
		{"no PEM", []byte("<html>hello</html>"), nil, 403, false},
		{"chains to Roots", p.chainPEM, func(c *Config) { c.Roots = p.root }, 200, true},
		{"leaf issued by the root", p.leafPEM, func(c *Config) { c.Roots = p.root }, 200, true},
		{"self-signed impostor with Roots set", p.otherPEM, func(c *Config) { c.Roots = p.root }, 403, false},
		{"self-signed, no Roots: trusted by URL", selfSigned(p), nil, 200, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.mod)
			r.fetch.set(testCertURL, tc.body)
			key := p.key
			if strings.Contains(tc.name, "impostor") {
				key = p.other
			}
			rec := r.post(notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000")).signedBy(key).json(), "")
			if tc.valid {
				if rec.Code != http.StatusOK || len(r.got()) != 1 {
					t.Fatalf("status %d, events %v: %s", rec.Code, r.got(), rec.Body)
				}
				return
			}
			r.wantRejected(rec, tc.code, ReasonCert)
		})
	}
}

// selfSigned is a leaf for the test key signed by itself: accepted when
// Roots is nil (the URL's host vouches for it), like SNS's own leaf.
func selfSigned(p *pki) []byte {
	tmpl := leafTemplate(13, "sns.amazonaws.com")
	return pemOf(mustCert(tmpl, tmpl, &p.key.PublicKey, p.key))
}

func TestCachedCertificateExpires(t *testing.T) {
	r := newRig(t, nil)
	if rec := r.send(notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"))); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	r.advance(366 * 24 * time.Hour) // past the leaf's NotAfter
	m := notification(alarmJSON("OK", "2027-03-15T11:59:57+0000")).with("MessageId", "later", "Timestamp", "2027-03-15T11:59:58Z")
	if rec := r.send(m); rec.Code != http.StatusForbidden || r.h.Stats().Rejected[ReasonCert] != 1 || len(r.got()) != 1 {
		t.Fatalf("status %d, stats %+v, events %v", rec.Code, r.h.Stats(), r.got())
	}
	if n := len(r.fetch.urls()); n != 1 {
		t.Fatalf("%d fetches: the cached certificate was not reused", n)
	}
}

func TestCertCacheIsBounded(t *testing.T) {
	r := newRig(t, func(c *Config) { c.CertCacheSize = 2 })
	urls := []string{testCertURL}
	for _, region := range []string{"eu-west-1", "ap-south-1"} {
		u := "https://sns." + region + ".amazonaws.com/SimpleNotificationService-1.pem"
		r.fetch.set(u, r.pki.leafPEM)
		urls = append(urls, u)
	}
	for i, u := range append(urls, urls[0]) { // the first is evicted by the third
		m := notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000")).with("SigningCertURL", u, "MessageId", string(rune('a'+i)))
		if rec := r.send(m); rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if got, want := r.fetch.urls(), append(urls, urls[0]); !slices.Equal(got, want) {
		t.Fatalf("fetches %q, want %q", got, want)
	}
	if n := r.h.v.certs.len(); n != 2 {
		t.Fatalf("cache holds %d certificates, want 2", n)
	}
}

func TestOversizedFetchIsRefused(t *testing.T) {
	r := newRig(t, nil)
	r.fetch.set(testCertURL, append(r.pki.leafPEM, make([]byte, maxFetchBody)...))
	r.wantRejected(r.send(notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"))), http.StatusServiceUnavailable, ReasonCertFetch)
}
