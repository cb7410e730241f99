package mysqladapter

import (
	"fmt"
	"strings"
)

// dsnHint explains a DSN that go-sql-driver/mysql rejected when it has a
// shape people bring from other clients: a URL (mysql://user:pw@host:3306/db)
// or an address without its network (user:pw@host:3306/db). The driver's
// own error for both is "default addr for network '…' unknown", which
// names neither the cause nor the fix. err is wrapped, never hidden; the
// DSN is not quoted, since it holds the password.
func dsnHint(dsn string, err error) error {
	const form = "go-sql-driver/mysql takes user:password@tcp(host:3306)/dbname?param=value"
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && isScheme(scheme) {
		return fmt.Errorf("mysqladapter: the DSN is a %s:// URL; %s: %w", scheme, form, err)
	}
	addr := dsn
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		addr = addr[at+1:]
	}
	if slash := strings.IndexByte(addr, '/'); slash > 0 && !strings.Contains(addr[:slash], "(") {
		return fmt.Errorf("mysqladapter: the DSN's address has no network; %s: %w", form, err)
	}
	return err
}

// isScheme reports whether s has the shape of a URL scheme (RFC 3986).
func isScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
