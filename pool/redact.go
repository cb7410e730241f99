package pool

import (
	"net/url"
	"regexp"
	"strings"
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
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		v := strings.Trim(m[2], `'"{}`)
		add(v)
	}
	if m := mysqlUserPass.FindStringSubmatch(dsn); m != nil {
		add(m[1])
	}
	return out
}

var (
	kvPassword    = regexp.MustCompile(`(?i)(?:^|[;&?\s])(password|pwd)\s*=\s*('[^']*'|"[^"]*"|\{[^}]*\}|[^;&\s]*)`)
	mysqlUserPass = regexp.MustCompile(`^[^:@/]*:([^@]*)@[a-z0-9]*\(`)
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

// redactedError keeps an error's chain (errors.Is/As still see the driver's
// error) while its message carries no password.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redactErr(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	if r := redactWith(msg, secrets); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}
