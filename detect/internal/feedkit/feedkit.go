// Package feedkit holds what the network feeds under detect (syslogfeed,
// webhookfeed, natsfeed, and any feed added later) share:
//
//   - ReadBody: read a request body with a hard cap (ErrTooLarge);
//   - RateLog: log lines a flood of bad input cannot multiply (one per
//     reason a second, with the count held back);
//   - Escape: make text quoted from a request safe to echo in a 4xx
//     answer or a log line; Truncate, CleanSource (an event's source name
//     from outside input).
//
// It imports no network package, so a feed that uses it compiles nothing
// it did not ask for.
package feedkit
