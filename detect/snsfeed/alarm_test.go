package snsfeed

import (
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

func TestParseChangeTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2015-06-03T17:43:27.123+0000", time.Date(2015, 6, 3, 17, 43, 27, 123e6, time.UTC)},
		{"2015-06-03T17:43:27+0000", time.Date(2015, 6, 3, 17, 43, 27, 0, time.UTC)},
		{"2015-06-03T19:43:27.5+0200", time.Date(2015, 6, 3, 17, 43, 27, 5e8, time.UTC)},
		{"2015-06-03T17:43:27.123Z", time.Date(2015, 6, 3, 17, 43, 27, 123e6, time.UTC)},
		{"2015-06-03T18:43:27+01:00", time.Date(2015, 6, 3, 17, 43, 27, 0, time.UTC)},
	}
	for _, tc := range tests {
		got, err := parseChangeTime(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseChangeTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "06/03/15 17:43:27", "2015-06-03", "2015-06-03T17:43:27"} {
		if _, err := parseChangeTime(bad); err == nil {
			t.Errorf("parseChangeTime(%q) succeeded", bad)
		}
	}
}

func TestDecide(t *testing.T) {
	s, err := Config{
		Notifier: detect.NotifierFunc(func(detect.Event) {}),
		Topics:   []string{testTopic},
		Tunnels: map[string]string{
			testVPN + "/203.0.113.10": "aws-1",
			testVPN + "/203.0.113.20": "aws-2",
			"legacy-alarm":            "aws-3",
		},
	}.settings()
	if err != nil {
		t.Fatal(err)
	}
	env := &envelope{at: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
	alarm := func(name, state, op, ns, metric, ip string) string {
		return `{"AlarmName":"` + name + `","NewStateValue":"` + state + `","StateChangeTime":"2026-03-14T11:59:00.000+0000",` +
			`"Trigger":{"MetricName":"` + metric + `","Namespace":"` + ns + `","ComparisonOperator":"` + op + `",` +
			`"Dimensions":[{"name":"VpnId","value":"` + testVPN + `"},{"name":"TunnelIpAddress","value":"` + ip + `"}]}}`
	}
	tests := []struct {
		name     string
		message  string
		tunnel   string
		state    detect.State
		unmapped bool
		ignored  bool
	}{
		{"ALARM by dimensions", alarm("a", "ALARM", "LessThanThreshold", "AWS/VPN", "TunnelState", "203.0.113.10"), "aws-1", detect.Down, false, false},
		{"OK by dimensions", alarm("a", "OK", "LessThanThreshold", "AWS/VPN", "TunnelState", "203.0.113.20"), "aws-2", detect.Up, false, false},
		{"<= threshold", alarm("a", "ALARM", "LessThanOrEqualToThreshold", "AWS/VPN", "TunnelState", "203.0.113.20"), "aws-2", detect.Down, false, false},
		{"no operator", alarm("a", "OK", "", "AWS/VPN", "TunnelState", "203.0.113.10"), "aws-1", detect.Up, false, false},
		{"dimensions win over name", alarm("legacy-alarm", "ALARM", "LessThanThreshold", "AWS/VPN", "TunnelState", "203.0.113.10"), "aws-1", detect.Down, false, false},
		{"by alarm name", alarm("legacy-alarm", "ALARM", "LessThanThreshold", "AWS/VPN", "TunnelState", "192.0.2.1"), "aws-3", detect.Down, false, false},
		{"by alarm name, no dimensions", `{"AlarmName":"legacy-alarm","NewStateValue":"OK","StateChangeTime":"2026-03-14T11:59:00+0000","Trigger":{"MetricName":"TunnelState","Namespace":"AWS/VPN"}}`, "aws-3", detect.Up, false, false},
		{"unmapped", alarm("other", "ALARM", "LessThanThreshold", "AWS/VPN", "TunnelState", "192.0.2.1"), "", 0, true, false},
		{"INSUFFICIENT_DATA", alarm("a", "INSUFFICIENT_DATA", "LessThanThreshold", "AWS/VPN", "TunnelState", "203.0.113.10"), "", 0, false, true},
		{"other metric", alarm("a", "ALARM", "GreaterThanThreshold", "AWS/EC2", "NetworkOut", "203.0.113.10"), "", 0, false, true},
		{"TunnelState in another namespace", alarm("a", "ALARM", "LessThanThreshold", "Custom", "TunnelState", "203.0.113.10"), "", 0, false, true},
		{"fires on up", alarm("a", "ALARM", "GreaterThanOrEqualToThreshold", "AWS/VPN", "TunnelState", "203.0.113.10"), "", 0, false, true},
		{"anomaly band", alarm("a", "ALARM", "LessThanLowerOrGreaterThanUpperThreshold", "AWS/VPN", "TunnelState", "203.0.113.10"), "", 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := s.decide(&envelope{Message: tc.message, at: env.at})
			if err != nil {
				t.Fatal(err)
			}
			if d.ok != (tc.tunnel != "") || d.unmapped != tc.unmapped || (!d.ok && !tc.unmapped && !tc.ignored) {
				t.Fatalf("decision %+v", d)
			}
			if !d.ok {
				if d.why == "" {
					t.Fatal("no reason given for a decision without event")
				}
				return
			}
			want := detect.Event{Tunnel: tc.tunnel, State: tc.state, At: time.Date(2026, 3, 14, 11, 59, 0, 0, time.UTC)}
			if d.ev.Tunnel != want.Tunnel || d.ev.State != want.State || !d.ev.At.Equal(want.At) || !strings.HasPrefix(d.ev.Source, "sns:") {
				t.Fatalf("event %+v, want %+v", d.ev, want)
			}
		})
	}
}

func TestSourceIsShortAndPrintable(t *testing.T) {
	got := feedkit.CleanSource("tunnel\x00-\x1b[31m-" + strings.Repeat("é", 100))
	if strings.ContainsAny(got, "\x00\x1b") || len(got) > feedkit.MaxSource {
		t.Fatalf("CleanSource = %q", got)
	}
	ev := detect.Event{Tunnel: "aws-1", State: detect.Down, Source: "sns:" + got}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
}
