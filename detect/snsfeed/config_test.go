package snsfeed

import (
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

func minimal() Config {
	return Config{
		Notifier: detect.NotifierFunc(func(detect.Event) {}),
		Topics:   []string{testTopic},
		Tunnels:  map[string]string{testVPN + "/203.0.113.10": "aws-1"},
	}
}

func TestNewMinimalConfigGetsDefaults(t *testing.T) {
	h, err := New(minimal())
	if err != nil {
		t.Fatal(err)
	}
	s := h.s
	if s.MaxBody != DefaultMaxBody || s.MaxAge != DefaultMaxAge || s.FetchTimeout != DefaultFetchTimeout ||
		s.CertCacheSize != DefaultCertCacheSize || s.SeenIDs != DefaultSeenIDs || s.LogInterval != DefaultLogInterval ||
		s.MinSignatureVersion != 1 || s.Fetch == nil || s.Now == nil || s.Logger == nil || s.Emulator != nil {
		t.Fatalf("defaults not applied: %+v", s.Config)
	}
	if srv := h.Server(":0"); srv.WriteTimeout != 2*DefaultFetchTimeout+5*time.Second || srv.ReadHeaderTimeout == 0 || srv.Handler != h {
		t.Fatalf("server %+v", srv)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no notifier", func(c *Config) { c.Notifier = nil }, "Config.Notifier is nil"},
		{"no topics", func(c *Config) { c.Topics = nil }, "Config.Topics is empty"},
		{"topic not an ARN", func(c *Config) { c.Topics = []string{"vpn-tunnel-state"} }, "Config.Topics[0]"},
		{"topic of another service", func(c *Config) { c.Topics = []string{"arn:aws:sqs:us-west-2:123456789012:q"} }, "Config.Topics[0]"},
		{"no tunnels", func(c *Config) { c.Tunnels = nil }, "Config.Tunnels is empty"},
		{"empty tunnel id", func(c *Config) { c.Tunnels = map[string]string{"a": ""} }, `Config.Tunnels["a"] is empty`},
		{"control char in tunnel id", func(c *Config) { c.Tunnels = map[string]string{"a": "aws\n1"} }, `Config.Tunnels["a"]`},
		{"empty key", func(c *Config) { c.Tunnels = map[string]string{"": "aws-1"} }, "Config.Tunnels has a bad key"},
		{"negative MaxBody", func(c *Config) { c.MaxBody = -1 }, "snsfeed: Config.MaxBody is negative"},
		{"negative FetchTimeout", func(c *Config) { c.FetchTimeout = -time.Second }, "snsfeed: Config.FetchTimeout is negative"},
		{"negative CertCacheSize", func(c *Config) { c.CertCacheSize = -1 }, "snsfeed: Config.CertCacheSize is negative"},
		{"negative LogInterval", func(c *Config) { c.LogInterval = -1 }, "snsfeed: Config.LogInterval is negative"},
		{"negative MinSignatureVersion", func(c *Config) { c.MinSignatureVersion = -1 }, "snsfeed: Config.MinSignatureVersion is negative"},
		{"MinSignatureVersion 3", func(c *Config) { c.MinSignatureVersion = 3 }, "Config.MinSignatureVersion 3"},
		{"emulator host without port", func(c *Config) { c.Emulator = &Emulator{Hosts: []string{"127.0.0.1"}} }, "Config.Emulator.Hosts[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := minimal()
			tc.mod(&c)
			h, err := New(c)
			if err == nil || h != nil {
				t.Fatalf("New = %v, %v; want an error", h, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "snsfeed: ") {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestNegativeMeansOffWhereDocumented(t *testing.T) {
	c := minimal()
	c.MaxAge, c.SeenIDs = -time.Second, -5
	h, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if h.s.MaxAge >= 0 || h.seen != nil {
		t.Fatalf("MaxAge %v, seen %v: negative did not turn them off", h.s.MaxAge, h.seen)
	}
}

func TestConfigIsCopied(t *testing.T) {
	c := minimal()
	h, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	c.Topics[0] = "arn:aws:sns:us-west-2:123456789012:changed"
	c.Tunnels[testVPN+"/203.0.113.10"] = "changed"
	if !h.s.topics[testTopic] || h.s.tunnels[testVPN+"/203.0.113.10"] != "aws-1" {
		t.Fatal("the handler sees changes made to the caller's Config after New")
	}
}

func TestStarMapsToEveryTunnel(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Tunnels = map[string]string{testVPN + "-tunnel-1-down": "*"} })
	if rec := r.send(notification(alarmJSON("ALARM", "2026-03-14T11:59:57+0000"))); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if ev := r.got(); len(ev) != 1 || ev[0].Tunnel != detect.AllTunnels {
		t.Fatalf("events %v, want one for every tunnel", ev)
	}
}
