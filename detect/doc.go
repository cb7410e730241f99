// Package detect decides when a database connection, or the whole path to
// the server, is lost, and turns outside signals about a VPN tunnel into
// events a pool can act on.
//
// Classification: a Classifier reads a driver's error and says whether the
// connection is fine (Alive), gone with the statement's outcome unknown
// (Lost), or gone before anything was sent (LostUnsent). Default knows the
// standard library's network errors and go-mssqldb's; pool/pgxadapter and
// pool/mysqladapter add pgx's and MySQL's without this package importing
// those drivers. Chain and Classify combine classifiers; a classifier that
// panics has no opinion.
//
// Events: an Event says that a tunnel went Down, came Up, or was rekeyed.
// A Notifier receives them; *pool.Pool is one, and Multi fans out to
// several. The feeds deliver events from where the tunnel's state is known:
//
//   - Webhook: an http.Handler for a plain JSON format and Prometheus
//     Alertmanager's webhook, authenticated by a bearer token or an
//     HMAC-SHA256 signature.
//   - Syslog: a UDP/TCP receiver (RFC 3164, RFC 5424 and bare lines) with
//     rule packs for YAMAHA RTX, strongSwan, Libreswan, Cisco IOS, Juniper
//     and FortiGate (Packs), and user rules.
//   - natsfeed (a separate package, so NATS is compiled only when used):
//     one event reaches every instance of a fleet.
//
// Bad input never produces an event and never panics.
package detect
