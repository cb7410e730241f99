// Package detect decides when a database connection, or the whole path to
// the server, is lost, and names the tunnel-state events a pool acts on. It
// does no I/O: the feeds that listen on the network are packages of their
// own, so a program compiles only the ones it uses.
//
// Classification: a Classifier reads a driver's error and says whether the
// connection is fine (Alive), gone with the statement's outcome unknown
// (Lost), or gone before anything was sent (LostUnsent). The generic rules
// know the standard library's network errors; pool/mssqladapter,
// pool/pgxadapter and pool/mysqladapter add their drivers' without this
// package importing those drivers. WithRules and Classify combine
// classifiers; a classifier that panics has no opinion.
//
// Events: an Event says that a tunnel went Down, came Up, or was rekeyed;
// its Tunnel is never empty, and AllTunnels ("*") means every tunnel. A
// Notifier receives them; *pool.Pool is one, and Multi fans out to several.
// The feeds deliver events from where the tunnel's state is known:
//
//   - detect/webhookfeed: an http.Handler for a plain JSON format and
//     Prometheus Alertmanager's webhook, authenticated by a bearer token or
//     an HMAC-SHA256 signature.
//   - detect/syslogfeed: a UDP/TCP receiver (RFC 3164, RFC 5424 and bare
//     lines; TLS through a tls.Listener) with rule packs for YAMAHA RTX,
//     strongSwan, Libreswan, Cisco IOS, Juniper and FortiGate, and user
//     rules.
//   - detect/snsfeed: an http.Handler for AWS SNS deliveries of CloudWatch
//     alarms on the AWS/VPN TunnelState metric, with every message's
//     signature verified.
//   - detect/natsfeed: one event reaches every instance of a fleet.
//
// Bad input never produces an event and never panics.
package detect
