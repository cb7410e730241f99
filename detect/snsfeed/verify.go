package snsfeed

import (
	"bytes"
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

// errNoFetchSlot: maxFetches fetches were running for all of FetchTimeout.
var errNoFetchSlot = errors.New("too many certificate fetches in progress")

// verifier checks an envelope's signature against the certificate its
// SigningCertURL serves.
type verifier struct {
	s     *settings
	certs *certStore
	sem   chan struct{}
}

func newVerifier(s *settings) *verifier {
	return &verifier{s: s, certs: newCertStore(s.CertCacheSize, s.Now), sem: make(chan struct{}, maxFetches)}
}

// verify returns nil when e is signed by the certificate at its
// SigningCertURL, which must be on an SNS host. source (the peer's
// address) is charged for a fetch, if one is needed.
func (v *verifier) verify(ctx context.Context, e *envelope, source string) *rejection {
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
	key, err := v.s.checkCertURL(e.SigningCertURL)
	if err != nil {
		return reject(ReasonCertURL, http.StatusForbidden, "SigningCertURL %s refused: %v", quote(redactURL(e.SigningCertURL)), err)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil {
		return reject(ReasonSignature, http.StatusForbidden, "Signature is not base64")
	}
	check := func(cert *x509.Certificate) *rejection {
		if rej := v.validNow(cert); rej != nil {
			return rej
		}
		if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), hash, digest, sig); err != nil {
			return reject(ReasonSignature, http.StatusForbidden, "signature does not verify")
		}
		return nil
	}
	if cert, ok := v.certs.verifiedCert(key); ok {
		return check(cert)
	}
	cert, rej := v.certs.candidate(ctx, key, source, func() (*x509.Certificate, *rejection) { return v.load(key) })
	if rej != nil {
		return rej
	}
	if rej := check(cert); rej != nil {
		return rej
	}
	v.certs.promote(key, cert)
	return nil
}

// validNow refuses a certificate outside its validity period.
func (v *verifier) validNow(cert *x509.Certificate) *rejection {
	if v.s.Emulator != nil && v.s.Emulator.IgnoreCertExpiry {
		return nil
	}
	if now := v.s.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return reject(ReasonCert, http.StatusForbidden, "signing certificate is not valid now (valid %s to %s)",
			cert.NotBefore.UTC().Format("2006-01-02T15:04:05Z"), cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return nil
}

// load fetches and parses the certificate at url. The fetch does not end
// with the request that started it (a client that hangs up must not
// leave a failure for the genuine messages that wait on it); it is
// bounded by FetchTimeout.
func (v *verifier) load(url string) (*x509.Certificate, *rejection) {
	body, err := v.fetch(context.Background(), url)
	if err != nil {
		rej := reject(ReasonCertFetch, http.StatusServiceUnavailable, "fetching the signing certificate: %v", err)
		rej.forget = errors.Is(err, errNoFetchSlot)
		return nil, rej
	}
	cert, err := v.parse(body)
	if err != nil {
		return nil, reject(ReasonCert, http.StatusForbidden, "signing certificate: %v", err)
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
		return nil, errNoFetchSlot
	}
	body, err := v.s.Fetch(ctx, url)
	if err == nil && len(body) > maxFetchBody {
		err = fmt.Errorf("response larger than %d bytes", maxFetchBody)
	}
	return body, err
}

// parse reads a PEM certificate (the leaf first, then any intermediates),
// wants an RSA key of at least minRSABits, and checks the chain when
// Config.Roots is set. The body must be PEM CERTIFICATE blocks and
// whitespace only: pem.Decode skips any text before a block, so a
// response that merely contains a certificate somewhere (an error page, a
// file of another kind) is refused.
func (v *verifier) parse(body []byte) (*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := bytes.TrimSpace(body)
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errors.New("response is not only PEM certificates")
		}
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("response is not only PEM certificates")
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) > 0 {
			return nil, errors.New("response holds a PEM block that is not a certificate")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errors.New("not a valid X.509 certificate")
		}
		certs = append(certs, c)
		rest = bytes.TrimSpace(rest)
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
