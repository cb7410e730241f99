package mysqladapter

import (
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/flapguard/flapguard/pool"
)

// DSN shapes from other clients get the driver's form in the error, with
// the driver's own error kept and the password never shown.
func TestDSNHints(t *testing.T) {
	const form = "user:password@tcp(host:3306)/dbname"
	cases := []struct {
		dsn, want string // want "" = the driver's error unchanged
	}{
		{"mysql://app:s3cret@127.0.0.1:3306/test", "the DSN is a mysql:// URL; go-sql-driver/mysql takes " + form},
		{"mariadb://app:s3cret@db.example/test?tls=true", "the DSN is a mariadb:// URL"},
		{"mysql://db.example/test", "the DSN is a mysql:// URL"},
		{"app:s3cret@db.example:3306/test", "the DSN's address has no network; go-sql-driver/mysql takes " + form},
		{"app:s3cret@tcp(db.example:3306)/test?parseTime=maybe", ""},
		{"app:s3cret@tcp(db.example:3306)", ""},
	}
	for _, c := range cases {
		_, perr := mysql.ParseDSN(c.dsn)
		if perr == nil {
			t.Fatalf("%s: the driver accepts it; the case tests nothing", c.dsn)
		}
		_, err := NewConnector(c.dsn, nil)
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.dsn)
		case c.want == "" && err.Error() != perr.Error():
			t.Errorf("%s: %v; want the driver's error unchanged (%v)", c.dsn, err, perr)
		case c.want != "" && (!strings.Contains(err.Error(), c.want) || !strings.HasSuffix(err.Error(), perr.Error())):
			t.Errorf("%s: %v; want %q and the driver's error", c.dsn, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", c.dsn, err)
		}
	}
	// The driver's form itself still opens.
	if _, err := NewConnector("app:s3cret@tcp(db.example:3306)/test", nil); err != nil {
		t.Errorf("valid DSN: %v", err)
	}
}

// Through pool.Open, as a user meets it.
func TestOpenWithURLDSNNamesTheForm(t *testing.T) {
	_, err := pool.Open("mysql", "mysql://root:s3cret@127.0.0.1:3306/test", pool.Config{})
	if err == nil || !strings.Contains(err.Error(), "user:password@tcp(host:3306)/dbname") {
		t.Fatalf("pool.Open with a mysql:// DSN: %v; want the driver's DSN form named", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows the password: %v", err)
	}
	t.Log(err)
}
