package snse2e

import (
	"context"
	"crypto/x509"
	"database/sql/driver"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/snsfeed"
	"github.com/flapguard/flapguard/pool"
)

const vpn = "vpn-0e2e0000000000001"

var tunnels = map[string]string{vpn + "/203.0.113.10": "aws-1", vpn + "/203.0.113.20": "aws-2"}

// TestGoAwsDeliversTunnelFlapsToPool: a topic and an HTTP subscription in
// GoAws, the snsfeed handler confirming it, CloudWatch-shaped ALARM and OK
// alarms published through GoAws reaching a pool as Down then Up, with
// GoAws's signatures verified against the certificate it serves; a
// tampered body is refused and a replay is not applied twice.
func TestGoAwsDeliversTunnelFlapsToPool(t *testing.T) {
	emu := startEmulator(t)
	topic := emu.createTopic(t, "vpn-tunnel-state")
	if topic != "arn:aws:sns:us-east-1:123456789012:vpn-tunnel-state" {
		t.Fatalf("topic ARN %q", topic)
	}

	events := make(chan pool.Event, 64)
	p := pool.OpenDB(nopConnector{}, pool.Config{
		Tunnels: []string{"aws-1", "aws-2"}, ProbeInterval: -1,
		OnEvent: func(ev pool.Event) {
			switch ev.Kind {
			case pool.EventTunnel, pool.EventTunnelIgnored, pool.EventHealthChange:
				events <- ev
			}
		},
	})
	t.Cleanup(func() { p.Close() })

	emuOpts := snsfeed.Emulator{Hosts: []string{emu.host}, AllowHTTP: true, IgnoreCertExpiry: true, EmptySubjectUnsigned: true}
	h, err := snsfeed.New(snsfeed.Config{
		Notifier: p, Topics: []string{topic}, Tunnels: tunnels, Emulator: &emuOpts,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	tp := startTap(t, h)

	// Subscribe: GoAws POSTs a signed SubscriptionConfirmation; the
	// handler verifies it and GETs the SubscribeURL back on GoAws.
	emu.call(t, "Action", "Subscribe", "TopicArn", topic, "Protocol", "http", "Endpoint", tp.srv.URL+"/sns")
	conf := tp.next(t, "the SubscriptionConfirmation")
	if conf.typ != "SubscriptionConfirmation" || conf.status != http.StatusOK {
		t.Fatalf("confirmation: %s answered %d %q", conf.typ, conf.status, conf.reply)
	}
	emu.waitRequest(t, "ConfirmSubscription", func(r emuRequest) bool {
		return r.method == http.MethodGet && r.action == "ConfirmSubscription" && r.status == http.StatusOK
	})
	if st := h.Stats(); st.Confirmations != 1 {
		t.Fatalf("stats after subscribe: %+v", st)
	}

	// ALARM on tunnel 1, published with a Subject as CloudWatch does.
	certsBefore := emu.count(isCertGET)
	emu.call(t, "Action", "Publish", "TopicArn", topic,
		"Subject", `ALARM: "`+vpn+`-tunnel-1" in US East (N. Virginia)`,
		"Message", alarm("ALARM", "203.0.113.10", time.Now()))
	down := tp.next(t, "the ALARM notification")
	if down.status != http.StatusOK {
		t.Fatalf("ALARM: %d %q", down.status, down.reply)
	}
	waitTunnel(t, events, "aws-1", detect.Down)
	// aws-2 still carries the traffic: one redundant tunnel down gates
	// nothing.
	if st := p.Stats(); st.TunnelDown || st.Severs != 0 {
		t.Fatalf("one of two tunnels down: gated %v, severs %d; want neither", st.TunnelDown, st.Severs)
	}
	// ALARM on tunnel 2 as well, and the path is dead: the pool's check
	// finds it down.
	pathDead.Store(true)
	emu.call(t, "Action", "Publish", "TopicArn", topic,
		"Subject", `ALARM: "`+vpn+`-tunnel-2" in US East (N. Virginia)`,
		"Message", alarm("ALARM", "203.0.113.20", time.Now()))
	if d := tp.next(t, "the second ALARM notification"); d.status != http.StatusOK {
		t.Fatalf("second ALARM: %d %q", d.status, d.reply)
	}
	waitTunnel(t, events, "aws-2", detect.Down)
	waitState(t, events, pool.Unreachable)
	if !p.Stats().TunnelDown {
		t.Fatal("the pool is not gated after both tunnels went down")
	}
	if emu.count(isCertGET) <= certsBefore {
		t.Fatal("the handler did not fetch GoAws's certificate to verify the notification")
	}

	// OK on tunnel 1, published without a Subject (GoAws then sends
	// "Subject":"" and signs without it); the path is back.
	pathDead.Store(false)
	emu.call(t, "Action", "Publish", "TopicArn", topic, "Message", alarm("OK", "203.0.113.10", time.Now()))
	up := tp.next(t, "the OK notification")
	if up.status != http.StatusOK {
		t.Fatalf("OK: %d %q", up.status, up.reply)
	}
	waitTunnel(t, events, "aws-1", detect.Up)
	waitState(t, events, pool.Recovering)
	if p.Stats().TunnelDown {
		t.Fatal("the pool is still gated after UP")
	}
	if st := h.Stats(); st.Events != 3 || st.RejectedTotal() != 0 {
		t.Fatalf("stats after DOWN and UP: %+v", st)
	}

	// A body GoAws signed, changed in transit: refused, nothing delivered.
	for name, tampered := range map[string][]byte{
		"state flipped":  retouch(t, down.body, `\"NewStateValue\":\"ALARM\"`, `\"NewStateValue\":\"OK\"`),
		"tunnel changed": retouch(t, down.body, "203.0.113.10", "203.0.113.20"),
	} {
		d := tp.post(t, tampered, "Notification")
		if d.status != http.StatusForbidden || !strings.Contains(d.reply, "signature does not verify") {
			t.Fatalf("%s: %d %q", name, d.status, d.reply)
		}
	}
	// The untouched body again (a replay, or SNS retrying): answered,
	// not applied twice.
	if d := tp.post(t, down.body, "Notification"); d.status != http.StatusOK || !strings.Contains(d.reply, "duplicate") {
		t.Fatalf("replay: %d %q", d.status, d.reply)
	}
	st := h.Stats()
	if st.Events != 3 || st.Rejected[snsfeed.ReasonSignature] != 2 || st.Duplicates != 1 {
		t.Fatalf("stats after tampering and replay: %+v", st)
	}
	if ps := p.Stats(); ps.Events != 3 || ps.EventsIgnored != 0 {
		t.Fatalf("pool applied %d events, ignored %d; want 3 and 0", ps.Events, ps.EventsIgnored)
	}

	// The handlers below report to a counter, not the pool: their events
	// would be old news to it.
	var others atomic.Int64
	count := detect.NotifierFunc(func(detect.Event) { others.Add(1) })
	t.Run("production config refuses GoAws", func(t *testing.T) {
		prod, err := snsfeed.New(snsfeed.Config{Notifier: count, Topics: []string{topic}, Tunnels: tunnels})
		if err != nil {
			t.Fatal(err)
		}
		certs := emu.count(isCertGET)
		rec := serve(prod, down.body)
		if rec.Code != http.StatusForbidden || prod.Stats().Rejected[snsfeed.ReasonCertURL] != 1 || emu.count(isCertGET) != certs || others.Load() != 0 {
			t.Fatalf("%d %q, stats %+v: an http certificate URL on 127.0.0.1 must be refused unfetched", rec.Code, rec.Body, prod.Stats())
		}
	})
	t.Run("empty Subject needs EmptySubjectUnsigned", func(t *testing.T) {
		opts := emuOpts
		opts.EmptySubjectUnsigned = false
		strict, err := snsfeed.New(snsfeed.Config{Notifier: count, Topics: []string{topic}, Tunnels: tunnels, Emulator: &opts})
		if err != nil {
			t.Fatal(err)
		}
		if rec := serve(strict, up.body); rec.Code != http.StatusForbidden || strict.Stats().Rejected[snsfeed.ReasonSignature] != 1 || others.Load() != 0 {
			t.Fatalf("%d %q", rec.Code, rec.Body)
		}
		if rec := serve(strict, down.body); rec.Code != http.StatusOK || others.Load() != 1 {
			t.Fatalf("a Notification with a Subject: %d %q", rec.Code, rec.Body)
		}
	})
	t.Run("GoAws certificate lives 5 seconds", func(t *testing.T) {
		resp, err := http.Get(emu.srv.URL + "/SimpleNotificationService/any.pem")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("no PEM: %q", b)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if life := c.NotAfter.Sub(c.NotBefore); life != 5*time.Second {
			t.Fatalf("GoAws's certificate is valid for %v; Emulator.IgnoreCertExpiry exists for its 5 s", life)
		}
	})
}

// alarm is the JSON CloudWatch publishes for a TunnelState alarm.
func alarm(state, tunnelIP string, at time.Time) string {
	m := map[string]any{
		"AlarmName": vpn + "-" + tunnelIP, "AlarmDescription": "tunnel " + tunnelIP + " of " + vpn,
		"AWSAccountId": "123456789012", "NewStateValue": state, "NewStateReason": "Threshold Crossed",
		"StateChangeTime": at.UTC().Format("2006-01-02T15:04:05.000-0700"), "Region": "US East (N. Virginia)",
		"AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:" + vpn + "-" + tunnelIP, "OldStateValue": "OK",
		"Trigger": map[string]any{
			"MetricName": "TunnelState", "Namespace": "AWS/VPN", "StatisticType": "Statistic", "Statistic": "MAXIMUM",
			"Unit": nil, "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "LessThanThreshold", "Threshold": 1.0,
			"TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": "",
			"Dimensions": []map[string]string{{"value": vpn, "name": "VpnId"}, {"value": tunnelIP, "name": "TunnelIpAddress"}},
		},
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// retouch replaces old by new in a delivered body, which must change it.
func retouch(t *testing.T, body []byte, old, new string) []byte {
	t.Helper()
	s := strings.Replace(string(body), old, new, 1)
	if s == string(body) {
		t.Fatalf("%q not in the body %s", old, body)
	}
	return []byte(s)
}

func serve(h http.Handler, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/sns", strings.NewReader(string(body)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func waitTunnel(t *testing.T, events <-chan pool.Event, tunnel string, st detect.State) {
	t.Helper()
	dl := deadline()
	for {
		select {
		case ev := <-events:
			if ev.Kind == pool.EventTunnelIgnored {
				t.Fatalf("the pool ignored %v: %s", ev.TunnelEvent, ev.Reason)
			}
			if ev.Kind == pool.EventTunnel {
				if ev.TunnelEvent.Tunnel != tunnel || ev.TunnelEvent.State != st || !strings.HasPrefix(ev.TunnelEvent.Source, "sns:") {
					t.Fatalf("pool got %v, want %s %s from sns", ev.TunnelEvent, tunnel, st)
				}
				return
			}
		case <-dl:
			t.Fatalf("timed out waiting for the pool to apply %s %s", tunnel, st)
		}
	}
}

func waitState(t *testing.T, events <-chan pool.Event, to pool.Health) {
	t.Helper()
	dl := deadline()
	for {
		select {
		case ev := <-events:
			if ev.Kind == pool.EventHealthChange && ev.To == to {
				return
			}
			if ev.Kind != pool.EventHealthChange {
				t.Fatalf("unexpected pool event %v while waiting for state %s", ev, to)
			}
		case <-dl:
			t.Fatalf("timed out waiting for the pool to reach %s", to)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type nopConnector struct{}
type nopConn struct{}

// pathDead makes nopConnector fail as a connect through a dead tunnel does:
// the pool checks the path before it acts on a DOWN.
var pathDead atomic.Bool

func (nopConnector) Connect(context.Context) (driver.Conn, error) {
	if pathDead.Load() {
		return nil, errors.New("dial tcp 10.0.0.1:5432: i/o timeout")
	}
	return nopConn{}, nil
}
func (nopConnector) Driver() driver.Driver          { return nil }
func (nopConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (nopConn) Close() error                        { return nil }
func (nopConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }
