package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
)

const topic = "arn:aws:sns:eu-west-1:123456789012:flapguard-vpn-tunnel-state"

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseFlags([]string{
		"-cert", "c.pem", "-key", "k.pem", "-topic", topic,
		"-tunnel", "vpn-0abc1234def567890/203.0.113.10=aws-1",
		"-tunnel", "my-tunnel-2-alarm=aws-2",
	}, env("AWSVPN_DSN", "sqlserver://app@db:1433"), &stderr)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	want := map[string]string{"vpn-0abc1234def567890/203.0.113.10": "aws-1", "my-tunnel-2-alarm": "aws-2"}
	if o.dsn != "sqlserver://app@db:1433" || o.listen != ":8443" || o.path != "/sns" || !maps.Equal(o.tunnels, want) || len(o.topics) != 1 {
		t.Fatalf("options %+v", o)
	}
}

func TestBadCommandLines(t *testing.T) {
	base := []string{"-dsn", "sqlserver://db", "-topic", topic, "-tunnel", "a=aws-1"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no TLS choice", base, "give -cert and -key, or -tls-offloaded"},
		{"both TLS choices", append(base, "-cert", "c", "-key", "k", "-tls-offloaded"), "not both"},
		{"cert without key", append(base, "-cert", "c"), "give -cert and -key"},
		{"unknown tunnel id", append(base, "-tls-offloaded", "-tunnel", "b=aws-3"), "tunnel one of aws-1, aws-2"},
		{"no DSN", []string{"-topic", topic, "-tunnel", "a=aws-1", "-tls-offloaded"}, "no DSN"},
		{"no topic", []string{"-dsn", "x", "-tunnel", "a=aws-1", "-tls-offloaded"}, "no -topic"},
		{"no tunnel", []string{"-dsn", "x", "-topic", topic, "-tls-offloaded"}, "no -tunnel"},
		{"bad path", append(base, "-tls-offloaded", "-path", "sns"), "-path must start with /"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, env(), &stderr)
			if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("err %v, stderr %q; want errUsage and %q", err, stderr.String(), tc.want)
			}
		})
	}
}

func TestBadTopicIsReportedBySnsfeed(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-dsn", "sqlserver://127.0.0.1:1", "-topic", "not-an-arn", "-tunnel", "a=aws-1", "-tls-offloaded", "-listen", "127.0.0.1:0"}, env(), &stderr)
	if err == nil || !strings.Contains(err.Error(), "snsfeed: Config.Topics[0]") {
		t.Fatalf("err %v", err)
	}
}
