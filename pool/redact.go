package pool

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// secretsOf extracts the password(s) a DSN carries, in the forms the
// supported drivers accept: URL (sqlserver://u:p@h, postgres://u:p@h),
// key=value (password=p / pwd=p, ADO and libpq style) and MySQL's
// user:pass@tcp(host).
func secretsOf(dsn string) []string {
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if len(s) >= 1 {
			out = append(out, s)
			if u, err := url.QueryUnescape(s); err == nil && u != s {
				out = append(out, u)
			}
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		for k, vs := range u.Query() {
			if isPasswordKey(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	for _, m := range kvPassword().FindAllStringSubmatch(dsn, -1) {
		v := strings.Trim(m[2], `'"{}`)
		add(v)
	}
	if m := mysqlUserPass().FindStringSubmatch(dsn); m != nil {
		add(m[1])
	}
	return out
}

// Compiled on first use (Open), not at init: a program that imports the
// package pays nothing until it opens a pool.
var (
	kvPassword = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)(?:^|[;&?\s])(password|pwd)\s*=\s*('[^']*'|"[^"]*"|\{[^}]*\}|[^;&\s]*)`)
	})
	mysqlUserPass = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^:@/]*:([^@]*)@[a-z0-9]*\(`) })
)

func isPasswordKey(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "pwd"
}

// redactWith replaces every secret in s by "xxxxx".
func redactWith(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// redact removes this pool's DSN password from s.
func (p *Pool) redact(s string) string { return redactWith(s, p.secrets) }

// redactedError keeps an error's chain (errors.Is/As still see what the
// driver returned, as far as it carries no secret) while no message in it
// carries a password: every error Unwrap hands out is redacted the same
// way, so walking the chain never reaches the raw text.
type redactedError struct {
	msg     string
	err     error
	secrets []string
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Unwrap() []error {
	var kids []error
	switch x := e.err.(type) {
	case interface{ Unwrap() error }:
		if k := x.Unwrap(); k != nil {
			kids = []error{k}
		}
	case interface{ Unwrap() []error }:
		kids = x.Unwrap()
	}
	out := make([]error, 0, len(kids))
	for _, k := range kids {
		out = append(out, redactErr(k, e.secrets))
	}
	return out
}

// redactErr returns err itself when its message carries none of secrets,
// and a redactedError otherwise.
func redactErr(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	if r := redactWith(msg, secrets); r != msg {
		return &redactedError{msg: r, err: err, secrets: secrets}
	}
	return err
}

// sealedError is an error reduced to its redacted message. Open returns
// DSN parse errors sealed: a driver's parse error may keep the whole DSN in
// a field (pgx's ParseConfigError.ConnString) that errors.As would reach.
type sealedError struct{ msg string }

func (e *sealedError) Error() string { return e.msg }

func sealErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	return &sealedError{msg: redactWith(err.Error(), secrets)}
}
