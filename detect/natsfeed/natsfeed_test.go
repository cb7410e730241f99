package natsfeed

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/nats-io/nats.go"
)

func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := Connect(url, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

type chanNotifier chan detect.Event

func (c chanNotifier) Notify(ev detect.Event) { c <- ev }

func recv(t *testing.T, c chanNotifier) detect.Event {
	t.Helper()
	select {
	case ev := <-c:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return detect.Event{}
}

func TestPublishSubscribeRoundTrip(t *testing.T) {
	ns := startServer(t, -1)
	pub, sub := connect(t, ns.ClientURL()), connect(t, ns.ClientURL())
	events := make(chanNotifier, 16)
	s, err := Subscribe(sub, "flapguard.tunnels", events, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	if err := sub.Flush(); err != nil { // the subscription is on the server
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 19, 30, 52, 0, time.UTC)
	if err := Publish(pub, "flapguard.tunnels", detect.Event{Tunnel: "aws-1", State: detect.Down, At: at, Source: "syslog:yamaha/tunnel-down"}); err != nil {
		t.Fatal(err)
	}
	if err := Publish(pub, "flapguard.tunnels", detect.Event{Tunnel: detect.AllTunnels, State: detect.Rekey}); err != nil {
		t.Fatal(err)
	}
	ev := recv(t, events)
	if ev.Tunnel != "aws-1" || ev.State != detect.Down || !ev.At.Equal(at) || ev.Source != "nats:syslog:yamaha/tunnel-down" {
		t.Errorf("event = %+v", ev)
	}
	if ev = recv(t, events); ev.Tunnel != detect.AllTunnels || ev.State != detect.Rekey || !ev.At.IsZero() || ev.Source != "nats" {
		t.Errorf("every-tunnel event = %+v", ev)
	}
	// An invalid event is refused at the source.
	if err := Publish(pub, "flapguard.tunnels", detect.Event{Tunnel: "x"}); err == nil {
		t.Error("Publish of an event without a state succeeded")
	}
	if st := s.Stats(); st.Received != 2 || st.Events != 2 || st.Invalid != 0 || st.Stale != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSubscribeIgnoresInvalidAndStale(t *testing.T) {
	ns := startServer(t, -1)
	pub, sub := connect(t, ns.ClientURL()), connect(t, ns.ClientURL())
	now := time.Now()
	clock := now
	var mu sync.Mutex
	events := make(chanNotifier, 16)
	s, err := Subscribe(sub, "t", events, Options{MaxAge: 10 * time.Second, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	sub.Flush()

	bad := []string{
		`not json`,
		`{"v":2,"tunnel":"a","state":"down","sent":"` + now.Format(time.RFC3339Nano) + `"}`,
		`{"v":1,"tunnel":"a","state":"sideways","sent":"` + now.Format(time.RFC3339Nano) + `"}`,
		`{"v":1,"tunnel":"a","sent":"` + now.Format(time.RFC3339Nano) + `"}`,
		`{"v":1,"tunnel":"a\u0000","state":"down","sent":"` + now.Format(time.RFC3339Nano) + `"}`,
		`{"v":1,"tunnel":"a","state":"down"}`,
		`{"v":1,"tunnel":"a","state":"down","sent":"` + now.Format(time.RFC3339Nano) + `","source":"` + string(make([]byte, maxPayload)) + `"}`,
	}
	for _, b := range bad {
		if err := pub.Publish("t", []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	// Sent 11 s before and after the subscriber's clock: both stale.
	publishAt(pub, "t", detect.Event{Tunnel: "old", State: detect.Down}, now.Add(-11*time.Second))
	publishAt(pub, "t", detect.Event{Tunnel: "future", State: detect.Down}, now.Add(11*time.Second))
	// Then a good one; per-publisher order means everything before it was handled.
	publishAt(pub, "t", detect.Event{Tunnel: "good", State: detect.Up}, now.Add(-9*time.Second))
	if ev := recv(t, events); ev.Tunnel != "good" {
		t.Errorf("delivered %+v, want only the good event", ev)
	}
	if st := s.Stats(); st.Invalid != uint64(len(bad)) || st.Stale != 2 || st.Events != 1 || st.Received != uint64(len(bad))+3 {
		t.Errorf("stats = %+v, want %d invalid, 2 stale, 1 event", st, len(bad))
	}
	// A negative MaxAge accepts anything well-formed.
	events2 := make(chanNotifier, 4)
	s2, err := Subscribe(sub, "t2", events2, Options{MaxAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Unsubscribe()
	sub.Flush()
	publishAt(pub, "t2", detect.Event{Tunnel: "ancient", State: detect.Down}, now.Add(-24*time.Hour))
	if ev := recv(t, events2); ev.Tunnel != "ancient" {
		t.Errorf("MaxAge<0: %+v", ev)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	ns := startServer(t, -1)
	nc := connect(t, ns.ClientURL())
	var mu sync.Mutex
	n := 0
	s, err := Subscribe(nc, "u", detect.NotifierFunc(func(detect.Event) { mu.Lock(); n++; mu.Unlock() }), Options{})
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsubscribe(); err != nil {
		t.Errorf("second Unsubscribe: %v", err)
	}
	Publish(nc, "u", detect.Event{Tunnel: "a", State: detect.Down})
	nc.Flush()
	// A second, live subscription sees the event: by then the first would have too.
	events := make(chanNotifier, 1)
	s2, _ := Subscribe(nc, "u", events, Options{})
	defer s2.Unsubscribe()
	nc.Flush()
	Publish(nc, "u", detect.Event{Tunnel: "b", State: detect.Down})
	recv(t, events)
	mu.Lock()
	defer mu.Unlock()
	if n != 0 {
		t.Errorf("notifier called %d times after Unsubscribe", n)
	}
	if _, err := Subscribe(nil, "x", events, Options{}); err == nil {
		t.Error("Subscribe(nil conn) succeeded")
	}
	if _, err := Subscribe(nc, "x", nil, Options{}); err == nil {
		t.Error("Subscribe(nil notifier) succeeded")
	}
}

// The nats client reconnects and re-subscribes by itself after the server
// restarts; events published afterwards arrive.
func TestSubscriptionSurvivesServerRestart(t *testing.T) {
	ns := startServer(t, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	url := ns.ClientURL()
	reconnected := make(chan struct{}, 4)
	sub := connect(t, url, nats.ReconnectWait(50*time.Millisecond), nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	events := make(chanNotifier, 4)
	s, err := Subscribe(sub, "r", events, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	sub.Flush()

	ns.Shutdown()
	ns.WaitForShutdown()
	startServer(t, port)
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber did not reconnect")
	}
	if err := sub.Flush(); err != nil { // re-subscription is on the new server
		t.Fatal(err)
	}
	pub := connect(t, url)
	if err := Publish(pub, "r", detect.Event{Tunnel: "aws-1", State: detect.Up}); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, events); ev.Tunnel != "aws-1" || ev.State != detect.Up {
		t.Errorf("after restart: %+v", ev)
	}
}

// The machine's shared NATS (127.0.0.1:4222), when present: fan-out to
// three subscribers on a subject unique to this run.
func TestSharedNATSFanOut(t *testing.T) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:4222", time.Second)
	if err != nil {
		t.Skipf("no NATS at 127.0.0.1:4222: %v", err)
	}
	c.Close()
	subject := "flapguard.test." + strconv.FormatInt(time.Now().UnixNano(), 36)
	events := make(chanNotifier, 8)
	for i := range 3 {
		nc := connect(t, "nats://127.0.0.1:4222")
		s, err := Subscribe(nc, subject, events, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Unsubscribe()
		if err := nc.Flush(); err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
	}
	pub := connect(t, "nats://127.0.0.1:4222")
	if err := Publish(pub, subject, detect.Event{Tunnel: "aws-1", State: detect.Down}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if ev := recv(t, events); ev.Tunnel != "aws-1" || ev.State != detect.Down {
			t.Errorf("got %+v", ev)
		}
	}
	select {
	case ev := <-events:
		t.Errorf("extra event %+v", ev)
	default:
	}
}

func TestConnectFailsClearly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	if _, err := Connect(fmt.Sprintf("nats://%s", addr), nil); err == nil {
		t.Error("Connect to a closed port succeeded")
	}
}
