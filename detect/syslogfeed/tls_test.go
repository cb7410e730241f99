package syslogfeed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, made fresh for each test.
type testPKI struct {
	caPool         *x509.CertPool
	server, client tls.Certificate
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newTestPKI(t *testing.T) testPKI {
	ca, caKey := newCA(t, "flapguard test CA")
	p := testPKI{caPool: x509.NewCertPool()}
	p.caPool.AddCert(ca)
	p.server = issue(t, ca, caKey, "syslog receiver", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	p.client = issue(t, ca, caKey, "router-1", x509.ExtKeyUsageClientAuth)
	return p
}

// Syslog over TLS (RFC 5425) with client certificates is a tls.Listener
// handed to ServeTCP: a router with a certificate from our CA delivers
// events; one without a certificate, or with another CA's, is turned away
// at the handshake, counted and logged.
func TestServeTCPOverTLSWithClientCertificates(t *testing.T) {
	noLeaks(t)
	pki := newTestPKI(t)
	events := make(chanNotifier, 8)
	s := newTestSyslog(t, Config{Notifier: events, Rules: YamahaRTX().Rules})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn := tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.caPool,
		MinVersion:   tls.VersionTLS12,
	})
	go s.ServeTCP(tlsLn)
	addr := ln.Addr().String()
	dial := func(certs ...tls.Certificate) (*tls.Conn, error) {
		return tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.caPool, Certificates: certs, ServerName: "127.0.0.1"})
	}

	good, err := dial(pki.client)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	// RFC 5425 frames are octet-counted.
	msg := "<189>1 2026-11-25T19:30:00Z rtx1210 - - - - IP Tunnel[1] Down"
	if _, err := io.WriteString(good, itoaLen(msg)+msg); err != nil {
		t.Fatal(err)
	}
	if got := outcome(recv(t, events), true, nil); got != "down 1" {
		t.Errorf("client with a certificate: got %s", got)
	}

	otherCA, otherKey := newCA(t, "someone else's CA")
	for name, certs := range map[string][]tls.Certificate{
		"no client certificate":     nil,
		"certificate of another CA": {issue(t, otherCA, otherKey, "intruder", x509.ExtKeyUsageClientAuth)},
	} {
		before := s.Stats().Dropped
		c, err := dial(certs...)
		if err != nil { // TLS 1.2 fails here, TLS 1.3 on the first read
			t.Logf("%s: dial: %v", name, err)
		} else {
			io.WriteString(c, "IP Tunnel[1] Up\n")
			if !closedByServer(c) {
				t.Errorf("%s: connection still open", name)
			}
			c.Close()
		}
		waitFor(t, name+" counted", func() bool { return s.Stats().Dropped == before+1 })
	}
	select {
	case ev := <-events:
		t.Errorf("event from a client without a valid certificate: %+v", ev)
	default:
	}
	if st := s.Stats(); st.Events != 1 || st.Received != 1 {
		t.Errorf("stats = %+v, want exactly the one event from the good client", st)
	}
}

func itoaLen(s string) string { return big.NewInt(int64(len(s))).String() + " " }
