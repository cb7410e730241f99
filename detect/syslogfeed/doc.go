// Package syslogfeed turns routers' and VPN daemons' syslog into tunnel
// events: a Receiver listens on UDP and TCP (RFC 3164, RFC 5424 and bare
// lines), a Parser matches each message against Rules, and built-in Packs
// know YAMAHA RTX, strongSwan (with SA bookkeeping to tell a rekey from a
// down), Libreswan, Cisco IOS, Juniper SRX and FortiGate.
//
// The Parser does no I/O and can be used on its own (a log file, a pipe:
// see examples/tunnelhook). The packs' regular expressions are compiled on
// the first call of their constructor, not when the package is loaded.
//
// # Settings
//
// One rule for every numeric setting of Config (and NewParser's maxLine):
// 0 means the documented default; a negative value is an error naming the
// field.
//
// Bad input never produces an event and never panics: it is dropped,
// counted in Stats and logged (rate-limited).
package syslogfeed
