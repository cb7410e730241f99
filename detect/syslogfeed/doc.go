// Package syslogfeed turns routers' and VPN daemons' syslog into tunnel
// events: a Receiver listens on UDP and TCP (RFC 3164, RFC 5424 and bare
// lines; RFC 6587 framing; TLS as in RFC 5425), a Parser matches each
// message against Rules, and built-in Packs know YAMAHA RTX, strongSwan
// (with SA bookkeeping to tell a rekey from a down), Libreswan, Cisco IOS,
// Juniper SRX and FortiGate.
//
// The Parser does no I/O and can be used on its own (a log file, a pipe:
// see examples/tunnelhook). The packs' regular expressions are compiled on
// the first call of their constructor, not when the package is loaded.
//
// # Settings
//
// One rule for every numeric setting of Config (and NewParser's maxLine),
// as in the rest of flapguard: 0 means the documented default; a negative
// value means off / no limit where the field's doc says so
// (MaxConnsPerSource), and is an error naming the field elsewhere.
//
// # TLS
//
// Syslog over TLS with client certificates needs nothing of its own: hand
// ServeTCP a tls.Listener that requires them.
//
//	ln, _ := net.Listen("tcp", ":6514")
//	err := r.ServeTCP(tls.NewListener(ln, &tls.Config{
//		Certificates: []tls.Certificate{serverCert},
//		ClientAuth:   tls.RequireAndVerifyClientCert,
//		ClientCAs:    routersCA, // the CA that signed the routers' certificates
//		MinVersion:   tls.VersionTLS12,
//	}))
//
// A connection counts against MaxConns and MaxConnsPerSource only once
// its handshake is done, so clients without a certificate never take a
// router's place. Handshakes have their own bound: at most 2 at a time
// per source address and MaxConns in all, each finished within 5 s (or
// IdleTimeout, if shorter); a connection that finds no free handshake
// slot is closed at once. A client without a valid certificate is
// closed, counted as Dropped and logged ("TLS handshake failed"). An
// attacker with more than MaxConns/2 addresses can still fill every
// handshake slot, delaying a router's reconnect by up to 5 s at a time. On the sending side, rsyslog's omfwd does this with its gtls
// or ossl stream driver (StreamDriverMode="1", and StreamDriverAuthMode
// "x509/name" to check the receiver's certificate) and octet-counted
// framing, as RFC 5425 asks; this package's own tests use Go's TLS client.
//
// # Security
//
// Plain syslog is unauthenticated: whoever can reach the socket can
// report a tunnel down, and a Down severs a pool's connections. What
// protects a deployment is where the socket is reachable from and, over
// TLS, who holds a certificate:
//
//   - Prefer TCP with TLS and client certificates (above): only holders of
//     a certificate from your CA are heard, and nobody on the path can
//     forge or read a message.
//   - UDP has no handshake, so AllowFrom on UDP checks a source address
//     that anyone on the network path, or anywhere without egress
//     filtering, can forge: it keeps out honest mistakes, not an attacker.
//     Use UDP only on a network segment you trust (the router's management
//     VLAN), bound to an address only the routers reach, behind a firewall.
//   - Plain TCP's AllowFrom is stronger (the handshake proves the peer can
//     receive at that address) but not authentication either.
//
// Whatever reaches the socket cannot exhaust the receiver: lines, frames,
// connections (MaxConns, MaxConnsPerSource, IdleTimeout with eviction to
// make room: first connections that never sent a message, then those
// whose messages were no event, and those that delivered an event (a
// router) last, the idlest first within each) and the event queue are
// bounded; bad input is
// dropped, counted in Stats and logged at most once a second per reason;
// accept errors such as EMFILE are waited out. A flood of well-formed
// Down lines from a source that is let in is still a flood of Downs: only
// authentication (TLS with client certificates) stops that.
//
// Events go to the Notifier through detect.Accept: a *pool.Pool refuses
// events older than its EventMaxAge, a Down dated before the last Up it
// applied for the tunnel, and tunnels it does not serve (Stats.Refused).
// Syslog has no answer to send, so a refusal is only counted and logged.
// Each event's At is the receive time (router clocks are often wrong), so
// a Down replayed later is dated later too: the pool's stale check cannot
// tell it from a new one, and what protects against it is who can reach
// the socket (above) and the pool checking the path itself before it
// cuts work in progress.
//
// Bad input never produces an event and never panics.
package syslogfeed
