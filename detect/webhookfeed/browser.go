package webhookfeed

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// A webhook's senders are programs (Alertmanager, tunnelhook, curl), never
// browser pages. A page can still send a POST anywhere its browser
// reaches, loopback included: a "simple" cross-site request (a form, or a
// fetch with Content-Type text/plain) needs no CORS preflight, so the
// handler refuses what only a browser page would send, before it looks at
// credentials or the body.
//
// refuseBrowsers returns 0 or the status and reason of a refusal:
//
//   - 403 when Sec-Fetch-Site is "cross-site" or "same-site" (same-site
//     covers another port of localhost: a dev server's page), or when an
//     Origin header names another origin than the request's Host ("null"
//     included);
//   - 403 in Insecure mode unless the Host is a loopback name (localhost,
//     127.0.0.0/8, [::1], with or without a port) and the peer a loopback
//     address: a hostile name resolving to 127.0.0.1 (DNS rebinding) makes
//     the browser treat our listener as the attacker's own origin, and only
//     the Host it sends gives that away;
//   - 403 in Insecure mode when the request carries a proxy header
//     (Forwarded, X-Forwarded-*, X-Real-IP, Via): a reverse proxy on the
//     same host is a loopback peer for anyone it forwards;
//   - 415 unless Content-Type is application/json (parameters such as
//     charset allowed): the one type a page cannot send without a
//     preflight we never answer.
func (w *Handler) refuseBrowsers(r *http.Request) (int, string) {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return http.StatusForbidden, "request from a web page of another site (Sec-Fetch-Site)"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return http.StatusForbidden, "request from a web page of another origin (Origin)"
		}
	}
	if w.cfg.Insecure {
		if !loopbackHost(r.Host) {
			return http.StatusForbidden, "Insecure webhook: Host is not a loopback name"
		}
		// A RemoteAddr that does not parse (a Unix socket's "@" or "") is
		// no proof of a loopback peer: refused, not skipped.
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err != nil || !ap.Addr().Unmap().IsLoopback() {
			return http.StatusForbidden, "Insecure webhook: peer is not a loopback address"
		}
		// A reverse proxy on this host connects from loopback and may
		// rewrite Host to 127.0.0.1 for every client it forwards: a
		// request that names a proxy hop is not from a local program.
		if h := proxyHeader(r.Header); h != "" {
			return http.StatusForbidden, "Insecure webhook: request came through a proxy (" + h + ")"
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, "Content-Type must be application/json"
	}
	return 0, ""
}

// loopbackHost reports whether a Host header names this machine's
// loopback: localhost, 127.0.0.0/8 or [::1], with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// proxyHeader returns the name of the first header that a proxy adds to
// a request it forwards, or "".
func proxyHeader(h http.Header) string {
	for name := range h { // canonical keys
		switch {
		case name == "Forwarded", name == "Via", name == "X-Real-Ip",
			name == "Client-Ip", name == "True-Client-Ip",
			strings.HasPrefix(name, "X-Forwarded-"):
			return name
		}
	}
	return ""
}
