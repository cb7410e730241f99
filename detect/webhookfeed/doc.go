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
// Bad input never produces an event and never panics: it gets a 4xx
// answer of one short line, is counted in Stats and logged.
package webhookfeed
