package pool

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// secretsOf returns the texts that stand for a DSN's password in what a
// driver may write: found by the DSN's structure, in every way a
// supported driver's parser reads it, not by the password's own text.
//
// Parsers disagree on a password that holds a delimiter, and drivers
// quote (%q) or half-redact a DSN in their errors, so the password
// appears in pieces or escaped:
//
//   - URL forms (postgres://u:p@h, sqlserver://u:p@h): everything between
//     the first ':' after "://" and the last '@' (net/url's reading; pgx's
//     own parser stops at the first '@' or '/': pgconn/config.go
//     parseURLSettings, and its redactPW masks only up to there, leaving
//     "alice:xxxxx@etPw@host" for a password "s3cr@etPw"), and the
//     password, sslpassword and pwd query values;
//   - key=value forms (libpq: password=p, unquoted with backslash escapes
//     up to a space, or '…'; ADO: password=p up to ';', "…", '…' or {…}):
//     the value as each of these reads it (pgx's redactPW masks
//     "password=[^ ]*", leaving "password=xxxxx etPw" for "s3cr\ etPw");
//   - MySQL's user:pass@net(addr)/db: between the first ':' and the last
//     '@' before the last '/' (go-sql-driver/mysql dsn.go ParseDSN).
//
// Each reading of the password is kept whole, decoded (percent-escapes,
// backslash escapes, doubled quotes), %q-escaped as the url package and
// fmt quote it, and cut at every delimiter a parser or a redaction may cut
// it at, into pieces of at least minPiece bytes. The limit: a piece
// shorter than minPiece is not masked on its own (masking every "a" of a
// message would leave it unreadable); the whole password always is.
func secretsOf(dsn string) []string {
	var c secretSet
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				c.password(pw)
			}
		}
		if q := strings.IndexByte(rest, '?'); q >= 0 {
			for kv := range strings.SplitSeq(rest[q+1:], "&") {
				k, v, _ := strings.Cut(kv, "=")
				if uk, err := url.QueryUnescape(k); err == nil {
					k = uk
				}
				if isPasswordKey(k) {
					c.password(v)
				}
			}
		}
	} else if at := mysqlAt(dsn); at >= 0 {
		if _, pw, ok := strings.Cut(dsn[:at], ":"); ok {
			c.password(pw)
		}
	}
	for _, v := range keywordValues(dsn) {
		c.password(v)
	}
	return c.list()
}

// minPiece is the shortest piece of a password masked on its own.
const minPiece = 3

// pieceCuts are the bytes a parser, a list or a redaction may cut a
// password at.
const pieceCuts = "@/?#&;,:= \t\n\r\\\"'{}()[]%"

// secretSet collects the texts of a password.
type secretSet struct{ m map[string]bool }

func (c *secretSet) add(s string, whole bool) {
	if s == "" || (!whole && len(s) < minPiece) {
		return
	}
	if c.m == nil {
		c.m = make(map[string]bool)
	}
	c.m[s] = true
}

// password adds one reading of a password: whole, decoded, quoted, and
// its pieces.
func (c *secretSet) password(pw string) {
	pw = strings.TrimSpace(pw)
	if pw == "" {
		return
	}
	forms := []string{pw}
	if u, err := url.PathUnescape(pw); err == nil {
		forms = append(forms, u)
	}
	if u, err := url.QueryUnescape(pw); err == nil {
		forms = append(forms, u)
	}
	forms = append(forms, unbackslash(pw), undouble(pw))
	for _, f := range slices.Clone(forms) {
		q := strconv.Quote(f)
		forms = append(forms, q[1:len(q)-1])
	}
	for _, f := range forms {
		c.add(f, true)
		for p := range strings.FieldsFuncSeq(f, func(r rune) bool { return strings.ContainsRune(pieceCuts, r) }) {
			c.add(p, false)
		}
	}
}

// list returns the texts longest first, so that a whole password is
// masked before any of its pieces.
func (c *secretSet) list() []string {
	out := make([]string, 0, len(c.m))
	for s := range c.m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return out
}

// mysqlAt returns the index of the '@' that ends MySQL's
// user[:password], or -1: the last '@' before the last '/' (or in the
// whole DSN when there is no '/').
func mysqlAt(dsn string) int {
	end := strings.LastIndex(dsn, "/")
	if end < 0 {
		end = len(dsn)
	}
	return strings.LastIndex(dsn[:end], "@")
}

// keywordValues returns the values of password, pwd and sslpassword keys
// in a key=value DSN, as its parser reads them. The style is that of the
// first pair: a value ended by ';' is ADO (unquoted values run to ';';
// "…", '…' and {…} quote, doubling escapes), one ended by a space is
// libpq (unquoted values run to an unescaped space; '…' quotes; a
// backslash escapes).
func keywordValues(dsn string) []string {
	eq := strings.IndexByte(dsn, '=')
	if eq < 0 {
		return nil
	}
	ado := false
	if end := strings.IndexAny(dsn[eq:], "; \t\n\r"); end >= 0 {
		ado = dsn[eq+end] == ';'
	}
	var out []string
	lower := strings.ToLower(dsn)
	for _, key := range []string{"password", "pwd"} {
		for from := 0; ; {
			i := strings.Index(lower[from:], key)
			if i < 0 {
				break
			}
			i += from
			from = i + len(key)
			start := i
			if key == "password" && strings.HasSuffix(lower[:i], "ssl") {
				start = i - 3 // sslpassword: a password too
			}
			if start > 0 && !strings.ContainsRune("; \t\n\r&?", rune(dsn[start-1])) {
				continue // part of another key
			}
			rest := strings.TrimLeft(dsn[from:], " \t")
			if !strings.HasPrefix(rest, "=") {
				continue
			}
			v := strings.TrimLeft(rest[1:], " \t")
			if v == "" {
				continue
			}
			if ado {
				switch v[0] {
				case '"', '\'':
					out = append(out, quotedValue(v, v[0], false))
				case '{':
					out = append(out, quotedValue(v, '}', false))
				}
				if j := strings.IndexByte(v, ';'); j >= 0 {
					v = v[:j]
				}
				out = append(out, v)
				continue
			}
			if v[0] == '\'' {
				out = append(out, quotedValue(v, '\'', true))
			}
			end := 0
			for end < len(v) && !strings.ContainsRune(" \t\n\r", rune(v[end])) {
				if v[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end, len(v))
			out = append(out, v[:end])
			// An unescaped space in a password ends the value for libpq,
			// and the rest becomes a broken pair whose key the parse
			// error names: words up to the next key=value are the
			// password's too.
			for {
				w := strings.TrimLeft(v[end:], " \t\n\r")
				tok := w
				if k := strings.IndexAny(w, " \t\n\r"); k >= 0 {
					tok = w[:k]
				}
				if tok == "" || strings.Contains(tok, "=") {
					break
				}
				end = len(v) - len(w) + len(tok)
				out = append(out, v[:end], tok)
			}
		}
	}
	return out
}

// quotedValue returns the value that v's opening quote starts, up to the
// closing quote q (a backslash escapes when backslash is set, a doubled q
// otherwise); to the end when it is not closed.
func quotedValue(v string, q byte, backslash bool) string {
	for i := 1; i < len(v); i++ {
		switch {
		case backslash && v[i] == '\\':
			i++
		case !backslash && v[i] == q && i+1 < len(v) && v[i+1] == q:
			i++
		case v[i] == q:
			return v[1:i]
		}
	}
	return v[1:]
}

// unbackslash removes libpq's backslash escapes.
func unbackslash(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// undouble undoes ADO's doubled quotes.
func undouble(s string) string {
	return strings.NewReplacer(`""`, `"`, `''`, `'`, `}}`, `}`).Replace(s)
}

func isPasswordKey(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "pwd" || k == "sslpassword"
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
	secrets *secretList
}

// secretList holds the texts to mask behind a pointer: %#v prints a
// slice field of an error, not what a nested pointer points to.
type secretList struct{ s []string }

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
		out = append(out, redactErr(k, e.secrets.s))
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
		return &redactedError{msg: r, err: err, secrets: &secretList{secrets}}
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
