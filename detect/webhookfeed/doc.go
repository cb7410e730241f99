// Package webhookfeed turns POSTed tunnel-state reports into events: a
// Handler (an http.Handler) accepts a plain JSON body (Event) and
// Prometheus Alertmanager's webhook, authenticated by a bearer token or an
// HMAC-SHA256 signature (SignRequest), and delivers each event to a
// detect.Notifier such as a *pool.Pool.
//
// examples/tunnelhook is a sender: a strongSwan/Libreswan updown script and
// a syslog forwarder that signs its requests.
//
// # Settings
//
// One rule for every numeric setting of Config: 0 means the documented
// default; a negative value is an error naming the field.
//
// # Security
//
// What is authenticated:
//
//   - A bearer Token proves the sender knows it; nothing more. Anyone who
//     sees one request (plain HTTP on the path, a proxy's log) can send
//     any event, and any request again. Serve it over TLS.
//   - An HMAC signature (HMACKey) proves the body and timestamp come from
//     a key holder and were not changed. A signed request is accepted once
//     per process within MaxSkew of its timestamp (see Handler for the
//     exact window): another instance sharing the key, or this one after a
//     restart, accepts a captured request again within that window.
//     SignRequestPath binds the signature to method and path (and
//     Config.RequirePath insists on it), so it cannot be replayed against
//     another endpoint; the host is not covered. Use a key per receiver
//     where that matters, and TLS to keep requests from being captured.
//   - Insecure mode authenticates nothing. It answers only requests from a
//     loopback peer address (a peer that is not an IP, such as a Unix
//     socket's, is refused) that name a loopback Host (localhost,
//     127.0.0.0/8, [::1]) and carry no proxy header (Forwarded,
//     X-Forwarded-*, X-Real-IP, Via): for a listener on 127.0.0.1 that
//     local programs post to. It is not for a listener behind a reverse
//     proxy, even one on the same host: the proxy's peer address is
//     loopback for every client it forwards, and a proxy that neither
//     adds a forwarding header nor keeps the client's Host cannot be told
//     from a local program. Behind a proxy, use Token or HMACKey.
//
// Browsers: a web page can make a browser POST to any address it reaches,
// loopback included, and a hostile name can resolve to 127.0.0.1 (DNS
// rebinding). In every mode the Handler answers 415 to anything but
// Content-Type application/json (the one type a page cannot send across
// sites without a CORS preflight, which it never approves) and 403 to a
// request whose Origin is another origin, or whose Sec-Fetch-Site is
// cross-site or same-site; in Insecure mode the loopback Host check is
// what defeats DNS rebinding.
//
// Deploying: serve TLS (http.Server.ListenAndServeTLS on (*Handler).Server,
// or a TLS-terminating proxy on the same host); keep the listener off
// networks that have no business reporting tunnel state (bind address,
// firewall); prefer HMACKey over Token for senders you control
// (examples/tunnelhook signs). Bodies are capped at 64 KiB, read with
// timeouts ((*Handler).Server), and each request writes at most one log
// line, rate-limited per status.
//
// The answer is the receiver's verdict: events go through detect.Accept,
// and a *pool.Pool refuses events older than its EventMaxAge, a Down dated
// before the last Up it applied for the tunnel, and tunnels it does not
// serve; such an event is answered 422 (or named in a 200 when others in
// the payload were taken), never 204. Alertmanager does not retry a 4xx.
//
// Source names from a request are cleaned before they reach an Event or a
// log line: control and Unicode format characters (bidi overrides such as
// U+202E) are dropped; tunnel ids holding them are refused.
//
// Bad input never produces an event and never panics: it gets a 4xx
// answer of one short line (escaped, at most 200 bytes of reason), is
// counted in Stats and logged.
package webhookfeed
