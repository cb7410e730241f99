package natsfeed

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
)

// A server URL may carry credentials ("nats://user:password@host",
// "nats://token@host"), and the client's errors quote URLs, whole or in
// part: the url package %q-quotes a URL it cannot parse (a password with
// '"', '\' or a tab then appears escaped, and raw in *url.Error.URL), and a
// password holding '#', ',', '/' or '?' is cut by the URL or list syntax,
// so a piece of it lands in a host name, a port or another list entry. No
// search for the password's text finds all of those. So the redaction goes
// by the URL string's structure instead:
//
//   - the credential span of a server URL list is everything from the
//     first "://" (or the start, without a scheme) to its last '@': it
//     holds every userinfo of the list, however the client splits it;
//   - when there is one, no text the client produced leaves Connect or
//     reaches its log: an error is rebuilt from constants only (the
//     client's sentinel errors, a syscall errno, a timeout), and the URL
//     list is shown with its credential span replaced by "xxxxx".
//
// Without a '@' there is nothing to hide, and the client's errors are
// passed on whole.

// redactor hides the credential span of one server URL list.
type redactor struct {
	shown string // the URL list with its credential span replaced; "" when it has none
}

// newRedactor finds the credential span of urls (comma-separated, as
// nats.Connect takes them). It needs no URL to parse: one that does not
// is exactly the one whose error quotes it.
func newRedactor(urls string) redactor {
	end := strings.LastIndex(urls, "@")
	if end < 0 {
		return redactor{}
	}
	start := 0
	if i := strings.Index(urls, "://"); i >= 0 && i < end {
		start = i + 3
	}
	return redactor{shown: urls[:start] + "xxxxx" + urls[end:]}
}

// hides reports whether the URL list has credentials.
func (r redactor) hides() bool { return r.shown != "" }

// err returns err when the URL list has no credentials, and otherwise an
// error built from constants only: the client's sentinel err matches, if
// any, and what kind of failure it was. Its text names the URL list with
// the credentials replaced; its Unwrap reaches the sentinel (errors.Is
// still works) and nothing that holds client text.
func (r redactor) err(err error) error {
	if err == nil || !r.hides() {
		return err
	}
	re := &redactedError{urls: r.shown}
	for _, s := range natsSentinels {
		if errors.Is(err, s) {
			re.kids = append(re.kids, s)
			break
		}
	}
	var errno syscall.Errno
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &errno):
		re.kids = append(re.kids, errno) // "connection refused": a constant of the OS
	case errors.Is(err, context.DeadlineExceeded):
		re.kids = append(re.kids, context.DeadlineExceeded)
	case errors.As(err, &ne) && ne.Timeout():
		re.why = "timeout"
	case errors.As(err, &ue):
		re.why = "a server URL does not parse"
	}
	if len(re.kids) == 0 && re.why == "" {
		re.why = "failed (the client's message is withheld: it may quote the credentials)"
	}
	return re
}

// redactedError is an error rebuilt without any text from the client.
type redactedError struct {
	urls string  // the URL list, credentials replaced
	why  string  // a fixed description, or ""
	kids []error // constant errors: a nats sentinel, a syscall errno, a context error
}

func (e *redactedError) Error() string {
	var b strings.Builder
	b.WriteString(e.urls)
	b.WriteString(": ")
	for i, k := range e.kids {
		if i > 0 {
			b.WriteString(": ")
		}
		b.WriteString(k.Error())
	}
	if e.why != "" {
		if len(e.kids) > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.why)
	}
	return b.String()
}

func (e *redactedError) Unwrap() []error { return e.kids }

// natsSentinels are the client's errors a caller or a log reader may test
// for with errors.Is after Connect or in a handler. Each is a constant
// text with no URL in it.
var natsSentinels = []error{
	nats.ErrNoServers, nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked,
	nats.ErrAccountAuthExpired, nats.ErrTimeout, nats.ErrSecureConnRequired, nats.ErrSecureConnWanted,
	nats.ErrConnectionClosed, nats.ErrBadTimeout, nats.ErrInvalidConnection,
	nats.ErrSlowConsumer, nats.ErrPermissionViolation, nats.ErrStaleConnection,
	nats.ErrMaxConnectionsExceeded, nats.ErrMaxPayload, nats.ErrMaxAccountConnectionsExceeded,
}
