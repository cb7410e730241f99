package snsfeed

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
)

// maxFetches bounds concurrent certificate fetches: messages naming new
// certificate URLs cannot open unbounded outbound connections.
const maxFetches = 4

// minRSABits is the smallest signing key accepted (SNS uses 2048).
const minRSABits = 2048

// verifier checks an envelope's signature against the certificate its
// SigningCertURL serves.
type verifier struct {
	s     *settings
	certs *certCache
	sem   chan struct{}
}

func newVerifier(s *settings) *verifier {
	return &verifier{s: s, certs: newCertCache(s.CertCacheSize), sem: make(chan struct{}, maxFetches)}
}

// verify returns nil when e is signed by the certificate at its
// SigningCertURL, which must be on an SNS host.
func (v *verifier) verify(ctx context.Context, e *envelope) *rejection {
	var (
		hash   crypto.Hash
		digest []byte
	)
	msg := e.stringToSign(v.s.Emulator != nil && v.s.Emulator.EmptySubjectUnsigned)
	switch e.SignatureVersion {
	case "1":
		d := sha1.Sum(msg)
		hash, digest = crypto.SHA1, d[:]
	case "2":
		d := sha256.Sum256(msg)
		hash, digest = crypto.SHA256, d[:]
	default:
		return reject(ReasonSignatureVersion, http.StatusBadRequest, "unknown SignatureVersion %s (want 1 or 2)", quote(e.SignatureVersion))
	}
	if e.SignatureVersion == "1" && v.s.MinSignatureVersion > 1 {
		return reject(ReasonSignatureVersion, http.StatusBadRequest, "SignatureVersion 1 refused (Config.MinSignatureVersion is 2)")
	}
	if err := v.s.checkCertURL(e.SigningCertURL); err != nil {
		return reject(ReasonCertURL, http.StatusForbidden, "SigningCertURL %s refused: %v", quote(redactURL(e.SigningCertURL)), err)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil {
		return reject(ReasonSignature, http.StatusForbidden, "Signature is not base64")
	}
	cert, rej := v.cert(ctx, e.SigningCertURL)
	if rej != nil {
		return rej
	}
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), hash, digest, sig); err != nil {
		return reject(ReasonSignature, http.StatusForbidden, "signature does not verify")
	}
	return nil
}

// cert returns the certificate at url, from the cache or fetched, if it
// is valid now.
func (v *verifier) cert(ctx context.Context, url string) (*x509.Certificate, *rejection) {
	cert, ok := v.certs.get(url)
	if !ok {
		body, err := v.fetch(ctx, url)
		if err != nil {
			return nil, reject(ReasonCertFetch, http.StatusServiceUnavailable, "fetching the signing certificate: %v", err)
		}
		if cert, err = v.parse(body); err != nil {
			return nil, reject(ReasonCert, http.StatusForbidden, "signing certificate: %v", err)
		}
		v.certs.put(url, cert)
	}
	if v.s.Emulator == nil || !v.s.Emulator.IgnoreCertExpiry {
		if now := v.s.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return nil, reject(ReasonCert, http.StatusForbidden, "signing certificate is not valid now (valid %s to %s)",
				cert.NotBefore.UTC().Format("2006-01-02T15:04:05Z"), cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
		}
	}
	return cert, nil
}

// fetch GETs url through Config.Fetch, at most maxFetches at a time.
func (v *verifier) fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.s.FetchTimeout)
	defer cancel()
	select {
	case v.sem <- struct{}{}:
		defer func() { <-v.sem }()
	case <-ctx.Done():
		return nil, errors.New("too many certificate fetches in progress")
	}
	body, err := v.s.Fetch(ctx, url)
	if err == nil && len(body) > maxFetchBody {
		err = fmt.Errorf("response larger than %d bytes", maxFetchBody)
	}
	return body, err
}

// parse reads a PEM certificate (the leaf first, then any intermediates),
// wants an RSA key of at least minRSABits, and checks the chain when
// Config.Roots is set.
func (v *verifier) parse(body []byte) (*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := body; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errors.New("not a valid X.509 certificate")
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in the response")
	}
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("key is not RSA")
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits (want %d or more)", pub.N.BitLen(), minRSABits)
	}
	if v.s.Roots != nil {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: v.s.Roots, Intermediates: inter, CurrentTime: v.s.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return nil, errors.New("does not chain to Config.Roots")
		}
	}
	return leaf, nil
}
