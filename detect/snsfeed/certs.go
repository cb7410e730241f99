package snsfeed

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// A forged message costs nothing to send, and each one naming a signing
// certificate URL could make the handler fetch from AWS. So certificates
// live in two places:
//
//   - verified: certificates a signature has verified with. Only
//     authentic messages put one here, so forged traffic cannot push a
//     genuine certificate out. At most CertCacheSize, oldest out first.
//   - recent: the result of every fetch (a certificate not yet proven, or
//     the failure) by normalized URL, kept for fetchMemory whatever it
//     was. A URL is fetched at most once per fetchMemory; a request for a
//     URL whose fetch is running waits for that fetch instead of starting
//     another. At most maxRecent URLs at a time (so at most maxRecent
//     fetches per fetchMemory in all), and each source (the peer's IP) may
//     start at most perSourceFetches per fetchMemory.
//
// When a signature verifies with a recent certificate, the certificate
// moves to verified.
const (
	fetchMemory      = time.Minute
	maxRecent        = 64
	perSourceFetches = 4
	maxSources       = 1024
)

// certStore holds the two tables and the per-source fetch counts.
type certStore struct {
	max int
	now func() time.Time

	mu       sync.Mutex // protects following fields
	verified map[string]*x509.Certificate
	order    []string // verified keys, oldest first
	recent   map[string]*fetchResult
	sources  map[string]*sourceWindow
}

// fetchResult is one fetch of a certificate URL: done is closed when cert
// or rej is set.
type fetchResult struct {
	at   time.Time
	done chan struct{}
	cert *x509.Certificate
	rej  *rejection
}

type sourceWindow struct {
	start time.Time
	n     int
}

func newCertStore(max int, now func() time.Time) *certStore {
	return &certStore{
		max: max, now: now,
		verified: make(map[string]*x509.Certificate),
		recent:   make(map[string]*fetchResult),
		sources:  make(map[string]*sourceWindow),
	}
}

// verifiedCert returns the certificate a signature has already verified
// with for key.
func (c *certStore) verifiedCert(key string) (*x509.Certificate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, ok := c.verified[key]
	return cert, ok
}

// candidate returns the certificate at key, fetched by fetch at most once
// per fetchMemory, or the rejection that fetch (or a limit) gave.
func (c *certStore) candidate(ctx context.Context, key, source string, fetch func() (*x509.Certificate, *rejection)) (*x509.Certificate, *rejection) {
	c.mu.Lock()
	now := c.now()
	c.pruneLocked(now)
	r, ok := c.recent[key]
	if !ok {
		if len(c.recent) >= maxRecent {
			c.mu.Unlock()
			return nil, reject(ReasonCertFetch, http.StatusServiceUnavailable, "%d certificate URLs fetched in the last %v: no more until one expires", maxRecent, fetchMemory)
		}
		if !c.chargeSourceLocked(source, now) {
			c.mu.Unlock()
			return nil, reject(ReasonCertFetch, http.StatusServiceUnavailable, "source %s started %d certificate fetches in the last %v", source, perSourceFetches, fetchMemory)
		}
		r = &fetchResult{at: now, done: make(chan struct{})}
		c.recent[key] = r
		c.mu.Unlock()
		r.cert, r.rej = fetch()
		close(r.done)
		if r.rej != nil && r.rej.forget {
			c.mu.Lock()
			if c.recent[key] == r {
				delete(c.recent, key)
			}
			c.mu.Unlock()
		}
		return r.cert, r.rej
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.cert, r.rej
	case <-ctx.Done():
		return nil, reject(ReasonCertFetch, http.StatusServiceUnavailable, "waiting for a certificate fetch in progress: %v", ctx.Err())
	}
}

// chargeSourceLocked counts one fetch started by source, or reports that
// its budget for this window is spent.
func (c *certStore) chargeSourceLocked(source string, now time.Time) bool {
	w, ok := c.sources[source]
	if !ok || now.Sub(w.start) >= fetchMemory {
		if !ok && len(c.sources) >= maxSources {
			return false // the total bound (maxRecent) still holds
		}
		w = &sourceWindow{start: now}
		c.sources[source] = w
	}
	if w.n >= perSourceFetches {
		return false
	}
	w.n++
	return true
}

// pruneLocked forgets fetch results and source windows older than
// fetchMemory. A fetch still running is kept: it is someone's answer.
func (c *certStore) pruneLocked(now time.Time) {
	for k, r := range c.recent {
		if now.Sub(r.at) < fetchMemory {
			continue
		}
		select {
		case <-r.done:
			delete(c.recent, k)
		default:
		}
	}
	for s, w := range c.sources {
		if now.Sub(w.start) >= fetchMemory {
			delete(c.sources, s)
		}
	}
}

// promote records that a signature verified with cert at key.
func (c *certStore) promote(key string, cert *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.recent[key]; ok && r.cert == cert {
		delete(c.recent, key)
	}
	if _, ok := c.verified[key]; ok {
		c.verified[key] = cert
		return
	}
	for len(c.order) >= c.max {
		delete(c.verified, c.order[0])
		c.order = c.order[1:]
	}
	c.verified[key] = cert
	c.order = append(c.order, key)
}

// len returns how many verified certificates are kept.
func (c *certStore) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.verified)
}

// sourceOf is the key a peer's fetches are counted under: its IP, or the
// /64 of an IPv6 address (one host commonly holds a whole /64).
func sourceOf(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
