package natsfeed

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedtest"
	"github.com/nats-io/nats.go"
)

// Issue 22 item 1: on main, the captured bytes of a DOWN published again
// after an UP, within MaxAge, were delivered (the pool applied it: one
// sever, 4 queries in flight failed). Now the repeat is dropped here
// (Stats.Repeated), before the pool's own stale check. Measured on main:
// 3 events delivered for DOWN, UP, replayed DOWN; now 2.
func TestReplayedMessageIsDropped(t *testing.T) {
	ns := startServer(t, -1)
	pub, sub := connect(t, ns.ClientURL()), connect(t, ns.ClientURL())
	events := make(chanNotifier, 16)
	s, err := Subscribe(sub, "t", events, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	sub.Flush()
	// The attacker's capture: the DOWN as it went over the wire.
	capture, err := sub.SubscribeSync("t")
	if err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	at := time.Now()
	if err := Publish(pub, "t", detect.Event{Tunnel: "aws-1", State: detect.Down, At: at}); err != nil {
		t.Fatal(err)
	}
	down, err := capture.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	Publish(pub, "t", detect.Event{Tunnel: "aws-1", State: detect.Up, At: at.Add(time.Second)})
	pub.Publish("t", down.Data) // the replay
	Publish(pub, "t", detect.Event{Tunnel: "marker", State: detect.Up})
	var got []string
	for {
		ev := recv(t, events)
		if ev.Tunnel == "marker" {
			break
		}
		got = append(got, ev.State.String())
	}
	if strings.Join(got, ",") != "down,up" {
		t.Errorf("delivered %v, want down,up (the replayed down dropped)", got)
	}
	if st := s.Stats(); st.Repeated != 1 || st.Events != 3 {
		t.Errorf("stats %+v, want 1 repeated, 3 events", st)
	}
}

type refuser struct {
	mu    sync.Mutex
	asked int
}

func (r *refuser) Notify(detect.Event) {}
func (r *refuser) Accept(detect.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return fmt.Errorf("%w: down older than the last up applied", detect.ErrIgnored)
}

// Issue 22 item 4: on main every delivered message counted as an event
// (Stats.Events) even when the pool dropped it. Now the receiver's verdict
// is asked (detect.Accept) and a refusal counted as Refused.
func TestRefusedEventsAreCountedAsRefused(t *testing.T) {
	ns := startServer(t, -1)
	pub, sub := connect(t, ns.ClientURL()), connect(t, ns.ClientURL())
	r := &refuser{}
	s, err := Subscribe(sub, "t", r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	sub.Flush()
	for range 3 {
		Publish(pub, "t", detect.Event{Tunnel: "aws-1", State: detect.Down})
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Received < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.Stats(); st.Refused != 3 || st.Events != 0 {
		t.Errorf("stats %+v, want 3 refused, 0 events", st)
	}
}

type nilPool struct{}

func (*nilPool) Notify(detect.Event) {}

func TestSubscribeRefusesTypedNilNotifier(t *testing.T) {
	ns := startServer(t, -1)
	var p *nilPool
	if _, err := Subscribe(connect(t, ns.ClientURL()), "t", p, Options{}); err == nil || !strings.Contains(err.Error(), "nil Notifier") {
		t.Fatalf("typed nil: %v", err)
	}
}

// specials are the character classes a password may hold, each between
// two markers that must never appear in an error.
var specials = []string{
	`"`, `\`, "\t", " ", "#", ",", "/", "?", "@", ":", "%", "%40", "%2F", "'", ";", "&", "=", "[", "]",
	"{", "}", "(", ")", "+", "$", "!", "*", "`", "<", ">", "|", "^", "~", "é", "\u202e", "\n", "\x00",
}

const preMark, postMark = "Pre9x", "Post9y"

// leaks returns what of the password markers err shows, in its text,
// %+v, %#v, any error its Unwrap methods reach, and a *url.Error's URL.
func leaks(err error) []string {
	var out []string
	for _, e := range chain(err) {
		forms := []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)}
		var ue *url.Error
		if errors.As(e, &ue) {
			forms = append(forms, ue.URL)
		}
		for _, f := range forms {
			for _, m := range []string{preMark, postMark} {
				if strings.Contains(f, m) {
					out = append(out, fmt.Sprintf("%T shows %s: %q", e, m, f))
				}
			}
		}
	}
	return out
}

// Issue 22 item 5: on main natsfeed leaked passwords holding '"', '\' or a
// tab (whole, escaped, in err.Error(), and raw in *url.Error.URL) and a
// prefix of those holding '#', ',', '/' or '?'. Measured on main: 49 of
// the 185 URLs below leaked. Now none does: with a '@' in the URL list, no
// client text is passed on.
func TestConnectLeaksNoPasswordFragment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	var urls []string
	for _, c := range specials {
		pw := preMark + c + postMark
		urls = append(urls,
			"nats://alice:"+pw+"@"+closed,
			"nats://"+pw+"@"+closed, // a token
			"tls://alice:"+pw+"@"+closed,
			"nats://"+closed+",nats://bob:"+pw+"@"+closed,
			"alice:"+pw+"@"+closed,
		)
	}
	leaked := 0
	for _, u := range urls {
		_, err := Connect(u, nil, nats.Timeout(300*time.Millisecond))
		if err == nil {
			t.Errorf("%q: Connect succeeded", u)
			continue
		}
		if l := leaks(err); len(l) > 0 {
			leaked++
			t.Errorf("%q: %s", u, l[0])
		}
		if !strings.HasPrefix(err.Error(), "natsfeed: connect") {
			t.Errorf("%q: %v", u, err)
		}
	}
	t.Logf("%d of %d URLs leaked", leaked, len(urls))
	// What callers match on still matches, and says why.
	_, err = Connect("nats://alice:"+preMark+"@"+closed, nil)
	if !errors.Is(err, nats.ErrNoServers) || !strings.Contains(err.Error(), "no servers available") || !strings.Contains(err.Error(), closed) {
		t.Errorf("err = %v: want nats.ErrNoServers, its text and the server address", err)
	}
	// Without credentials the client's error is passed on whole.
	_, err = Connect("nats://"+closed, nil)
	if !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("no credentials: %v", err)
	}
}

// The redactor's display hides the whole credential span, whatever the
// URL syntax makes of it.
func TestRedactorShowsNoCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"nats://alice:pw@h:4222":                "nats://xxxxx@h:4222",
		"nats://tok@h1,nats://bob:p,w@h2":       "nats://xxxxx@h2",
		"alice:p/w@h":                           "xxxxx@h",
		"nats://h1:4222,nats://h2:4222":         "",
		"nats://alice:p@w#x@h":                  "nats://xxxxx@h",
		"alice:pw@h1,nats://h2":                 "xxxxx@h1,nats://h2",
		"nats://alice:pw@h1,nats://bob:pw2@h2/": "nats://xxxxx@h2/",
	} {
		if got := newRedactor(in).shown; got != want {
			t.Errorf("newRedactor(%q).shown = %q, want %q", in, got, want)
		}
	}
}

// The reconnect line of Connect's log used the client's
// ConnectedUrlRedacted, which hides a password but shows a token (the
// URL's user name) whole: on main, "url=nats://Pre9xtokenPost9y@…".
func TestReconnectLogShowsNoToken(t *testing.T) {
	const token = preMark + "token" + postMark
	start := func(port int) *natsServer { return startServerWith(t, port, "--auth", token) }
	ns := start(-1)
	port := ns.Addr().(*net.TCPAddr).Port
	logger, logs := feedtest.NewLogger()
	nc, err := Connect(fmt.Sprintf("nats://%s@127.0.0.1:%d", token, port), logger, nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()
	start(port)
	// The handlers run on the client's goroutine: wait for the line.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(logs.Lines(), "\n"), "reconnected") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := logs.Lines()
	if len(lines) < 2 {
		t.Fatalf("log %q: want the disconnect and reconnect lines", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, preMark) || strings.Contains(l, postMark) {
			t.Errorf("log line shows the token: %s", l)
		}
	}
}
