package natsfeed

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// chain returns err and every error reachable from it through Unwrap()
// error and Unwrap() []error.
func chain(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		for e != nil {
			out = append(out, e)
			switch u := e.(type) {
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					walk(x)
				}
				return
			case interface{ Unwrap() error }:
				e = u.Unwrap()
			default:
				return
			}
		}
	}
	walk(err)
	return out
}

// natsfeed.Connect errors carried the user:password of the URL (the url
// package quotes the whole URL when it cannot parse it), all the way down
// the chain. No error from Connect, nor any error it wraps, may hold a
// credential.
func TestConnectErrorsCarryNoCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now
	secrets := []string{"s3cr3tpass", "t0kenvalue", "0th3rpass", "sp%40ce"}
	for _, url := range []string{
		"nats://alice:s3cr3tpass@" + closed,
		"nats://t0kenvalue@" + closed,
		"nats://alice:s3cr3tpass@" + closed + ",nats://bob:0th3rpass@" + closed,
		"nats://alice:s3cr3tpass@127.0.0.1:notaport",
		"nats://alice:s3cr3tpass@[::1",
		"nats://t0kenvalue@127.0.0.1:4222/%zz",
		"nats://bob:0th3rpass@" + closed + ", nats://alice:s3cr3tpass@127.0.0.1:bad",
		"alice:s3cr3tpass@" + closed,
		"nats://carol:sp%40ce@127.0.0.1:x",
	} {
		_, err := Connect(url, nil)
		if err == nil {
			t.Errorf("%s: Connect succeeded", url)
			continue
		}
		for _, e := range chain(err) {
			for _, s := range secrets {
				for _, form := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
					if strings.Contains(form, s) || strings.Contains(form, strings.ReplaceAll(s, "%40", "@")) {
						t.Errorf("%s: an error in the chain (%T) shows %q: %s", url, e, s, form)
					}
				}
			}
		}
		if !strings.HasPrefix(err.Error(), "natsfeed: connect") {
			t.Errorf("%s: %v", url, err)
		}
	}
	// What callers match on still matches.
	_, err = Connect("nats://alice:s3cr3tpass@"+closed, nil)
	if !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("errors.Is(err, nats.ErrNoServers) = false for %v", err)
	}
	if !strings.Contains(err.Error(), "no servers available") {
		t.Errorf("the reason is gone: %v", err)
	}
}
