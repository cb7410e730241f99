package snsfeed

import (
	"crypto/x509"
	"sync"
)

// certCache keeps parsed signing certificates by URL, at most max of them;
// the oldest entry goes first. SNS signs with one certificate per region
// for months, so a handful of entries serve a deployment; entries are
// re-checked for expiry on every use, not here.
type certCache struct {
	max int

	mu    sync.Mutex // protects following fields
	certs map[string]*x509.Certificate
	order []string // insertion order, oldest first
}

func newCertCache(max int) *certCache {
	return &certCache{max: max, certs: make(map[string]*x509.Certificate)}
}

func (c *certCache) get(url string) (*x509.Certificate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, ok := c.certs[url]
	return cert, ok
}

func (c *certCache) put(url string, cert *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.certs[url]; ok {
		c.certs[url] = cert
		return
	}
	for len(c.order) >= c.max {
		delete(c.certs, c.order[0])
		c.order = c.order[1:]
	}
	c.certs[url] = cert
	c.order = append(c.order, url)
}

func (c *certCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.certs)
}
