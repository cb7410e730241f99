// Package feedkit holds what the network feeds under detect (syslogfeed,
// webhookfeed, natsfeed, and any feed added later) share: the handling of
// text that comes from outside, and a logger that a flood of bad input
// cannot turn into a flood of log lines.
//
// It does no I/O of its own and imports no network package, so a feed that
// uses it compiles nothing it did not ask for.
package feedkit
