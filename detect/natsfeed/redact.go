package natsfeed

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// A server URL may carry credentials ("nats://user:password@host",
// "nats://token@host"), and the errors the client returns may quote the
// URL whole (the url package does, when it cannot parse it). Errors that
// leave Connect, and what its handlers log, go through a redactor first.

// redactor replaces the credentials of a list of server URLs.
type redactor struct {
	secrets []string // longest first, so a whole userinfo goes before its parts
}

// newRedactor collects the userinfo of every URL in urls (comma-separated,
// as nats.Connect takes them), raw and unescaped: whole ("user:password",
// or a token) and the password alone (a user name is no secret).
// It does not need the URLs to parse: a URL that does not is exactly the
// one whose error quotes it.
func newRedactor(urls string) redactor {
	var r redactor
	add := func(s string) {
		if s == "" {
			return
		}
		r.secrets = append(r.secrets, s)
		if u, err := url.PathUnescape(s); err == nil && u != s {
			r.secrets = append(r.secrets, u)
		}
	}
	for part := range strings.SplitSeq(urls, ",") {
		part = strings.TrimSpace(part)
		if i := strings.Index(part, "://"); i >= 0 {
			part = part[i+3:]
		}
		at := strings.LastIndex(part, "@")
		if at < 0 {
			continue
		}
		userinfo := part[:at]
		add(userinfo)
		if _, pass, ok := strings.Cut(userinfo, ":"); ok {
			add(pass)
		}
	}
	// Longest first: "alice:pw" is replaced before "pw".
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

// redact returns s with every credential replaced by "xxxxx" (as the
// client's own ConnectedUrlRedacted writes a password).
func (r redactor) redact(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "xxxxx")
	}
	return s
}

// err returns err rebuilt without credentials, or err itself when it
// holds none (nor does anything it wraps). A rebuilt error keeps the
// client's sentinel errors reachable for errors.Is (they are constants,
// with no URL in them) and nothing else: its Unwrap never hands back the
// raw error, whose chain quotes the URL.
func (r redactor) err(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	leaks := false
	for e := range walkErrors(err) {
		if r.redact(e.Error()) != e.Error() {
			leaks = true
			break
		}
	}
	if !leaks {
		return err
	}
	re := &redactedError{msg: r.redact(err.Error())}
	for _, s := range natsSentinels {
		if errors.Is(err, s) {
			re.sentinel = s
			break
		}
	}
	return re
}

// redactedError is an error whose text had its credentials removed.
type redactedError struct {
	msg      string
	sentinel error // a nats sentinel the original matched, or nil
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.sentinel }

// natsSentinels are the client's errors a caller may test for with
// errors.Is after Connect.
var natsSentinels = []error{
	nats.ErrNoServers, nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked,
	nats.ErrTimeout, nats.ErrSecureConnRequired, nats.ErrSecureConnWanted,
	nats.ErrConnectionClosed, nats.ErrBadTimeout, nats.ErrInvalidConnection,
}

// walkErrors yields err and every error its Unwrap methods reach.
func walkErrors(err error) func(func(error) bool) {
	return func(yield func(error) bool) {
		var walk func(error) bool
		walk = func(e error) bool {
			for e != nil {
				if !yield(e) {
					return false
				}
				switch u := e.(type) {
				case interface{ Unwrap() []error }:
					for _, x := range u.Unwrap() {
						if !walk(x) {
							return false
						}
					}
					return true
				case interface{ Unwrap() error }:
					e = u.Unwrap()
				default:
					return true
				}
			}
			return true
		}
		walk(err)
	}
}
