package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/syslogfeed"
	"github.com/flapguard/flapguard/detect/webhookfeed"
)

type recorder struct {
	mu  sync.Mutex
	evs []detect.Event
}

func (r *recorder) Notify(ev detect.Event) { r.mu.Lock(); r.evs = append(r.evs, ev); r.mu.Unlock() }

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.evs {
		out = append(out, ev.State.String()+" "+ev.Tunnel)
	}
	return out
}

// webhook serves a real webhookfeed.Handler with both credentials.
func webhook(t *testing.T) (*recorder, string) {
	rec := &recorder{}
	w, err := webhookfeed.New(webhookfeed.Config{Notifier: rec, Token: "tok", HMACKey: []byte("key")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestUpdownVerbs(t *testing.T) {
	rec, url := webhook(t)
	cases := []struct {
		verb string
		code int
	}{
		{"up-client", 0}, {"down-client-v6", 0}, {"up-host-v6", 0}, {"down-host", 0},
		{"prepare-client", 0}, {"route-host", 0}, {"unroute-client-v6", 0},
		{"sideways", exitUsage}, {"", exitUsage},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		e := env(map[string]string{"PLUTO_VERB": c.verb, "PLUTO_CONNECTION": "aws-1", "FLAPGUARD_WEBHOOK_URL": url, "FLAPGUARD_WEBHOOK_TOKEN": "tok"})
		if code := run(nil, e, strings.NewReader(""), &stderr); code != c.code {
			t.Errorf("verb %q: exit %d (%s), want %d", c.verb, code, stderr.String(), c.code)
		}
	}
	want := []string{"up aws-1", "down aws-1", "up aws-1", "down aws-1"}
	if got := rec.got(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestUpdownSignedAndOverrides(t *testing.T) {
	rec, url := webhook(t)
	var stderr bytes.Buffer
	e := env(map[string]string{"PLUTO_VERB": "down-client", "FLAPGUARD_WEBHOOK_HMAC_KEY": "key"})
	// Twice within the same second: each attempt has its own id, so no replay.
	for range 2 {
		if code := run([]string{"-url", url, "-tunnel", "dc-2"}, e, nil, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	}
	if got := rec.got(); len(got) != 2 || got[0] != "down dc-2" {
		t.Errorf("events %v", got)
	}
	// A wrong key is a delivery failure (401, not retried).
	e = env(map[string]string{"PLUTO_VERB": "down-client", "PLUTO_CONNECTION": "x", "FLAPGUARD_WEBHOOK_HMAC_KEY": "wrong"})
	stderr.Reset()
	if code := run([]string{"-url", url}, e, nil, &stderr); code != exitDelivery || !strings.Contains(stderr.String(), "401") {
		t.Errorf("wrong key: exit %d, stderr %q", code, stderr.String())
	}
}

func TestBadConfig(t *testing.T) {
	base := map[string]string{"PLUTO_VERB": "up-client", "PLUTO_CONNECTION": "a"}
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, base, "no webhook URL"},
		{[]string{"-url", "ftp://x/y", "-token", "t"}, base, "bad webhook URL"},
		{[]string{"-url", "http://127.0.0.1:1/x"}, base, "no credentials"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-token", "t", "-map", "1"}, base, "bad -map entry"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-token", "t", "extra"}, base, "unexpected arguments"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-token", "t"}, map[string]string{"PLUTO_VERB": "up-client"}, "PLUTO_CONNECTION"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-token", "t"}, map[string]string{"PLUTO_VERB": "up-client", "PLUTO_CONNECTION": "a\x01"}, "control character"},
		{[]string{"-nope"}, base, "flag provided but not defined"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-token", "t", "-syslog", "-packs", "netscreen"}, base, "no rule pack"},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		if code := run(c.args, env(c.env), strings.NewReader(""), &stderr); code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want %d mentioning %q", c.args, c.env, code, stderr.String(), exitUsage, c.want)
		}
	}
}

func TestUnreachableWebhookFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	var stderr bytes.Buffer
	e := env(map[string]string{"PLUTO_VERB": "up-client", "PLUTO_CONNECTION": "a"})
	if code := run([]string{"-url", url, "-token", "t", "-attempts", "2"}, e, nil, &stderr); code != exitDelivery {
		t.Errorf("exit %d, want %d (%s)", code, exitDelivery, stderr.String())
	}
}

func TestSyslogForwarding(t *testing.T) {
	rec, url := webhook(t)
	in := strings.Join([]string{
		"2018/10/29 17:32:24: IP Tunnel[1] Up",
		"2018/10/29 17:32:55: IP Tunnel[2] Down", // unmapped: ignored
		"2018/10/25 15:46:26: same message repeated 3 times",
		strings.Repeat("x", syslogfeed.DefaultMaxLine+10), // skipped
		"<999>broken",
		"charon: 13[IKE] <con2000|3> giving up after 5 retransmits",
		"2018/10/29 17:32:55: IP Tunnel[3] Down", // no trailing newline
	}, "\n")
	var stderr bytes.Buffer
	args := []string{"-url", url, "-syslog", "-packs", "yamaha, strongswan", "-map", "1=aws-1,3=aws-2,con2000=aws-1"}
	code := run(args, env(map[string]string{"FLAPGUARD_WEBHOOK_TOKEN": "tok"}), strings.NewReader(in), &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := []string{"up aws-1", "down aws-1", "down aws-2"}
	if got := rec.got(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", got, want)
	}
	if s := stderr.String(); !strings.Contains(s, "longer than") || !strings.Contains(s, "PRI") {
		t.Errorf("stderr %q should report the long and the malformed line", s)
	}
}

// -sign-path binds the signature to the webhook's path; a webhook with
// RequirePath takes nothing else.
func TestSignPath(t *testing.T) {
	rec := &recorder{}
	w, err := webhookfeed.New(webhookfeed.Config{Notifier: rec, HMACKey: []byte("key"), RequirePath: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	e := env(map[string]string{"PLUTO_VERB": "down-client", "PLUTO_CONNECTION": "aws-1", "FLAPGUARD_WEBHOOK_HMAC_KEY": "key"})
	var stderr bytes.Buffer
	if code := run([]string{"-url", srv.URL + "/tunnel"}, e, nil, &stderr); code != exitDelivery || !strings.Contains(stderr.String(), "401") {
		t.Errorf("unbound signature to a RequirePath webhook: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"-url", srv.URL + "/tunnel", "-sign-path"}, e, nil, &stderr); code != exitOK {
		t.Errorf("-sign-path: exit %d: %s", code, stderr.String())
	}
	e = env(map[string]string{"PLUTO_VERB": "up-client", "PLUTO_CONNECTION": "aws-1", "FLAPGUARD_WEBHOOK_HMAC_KEY": "key", "FLAPGUARD_WEBHOOK_SIGN_PATH": "1"})
	if code := run([]string{"-url", srv.URL + "/tunnel"}, e, nil, &stderr); code != exitOK {
		t.Errorf("FLAPGUARD_WEBHOOK_SIGN_PATH=1: exit %d: %s", code, stderr.String())
	}
	if got := rec.got(); strings.Join(got, ",") != "down aws-1,up aws-1" {
		t.Errorf("events %v", got)
	}
}
