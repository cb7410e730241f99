package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func reachable(t *testing.T, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Skipf("%s not reachable at %s: %v", what, addr, err)
	}
	c.Close()
}

// lockedBuffer is an output a test can read while run writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitOutput(ctx context.Context, t *testing.T, b *lockedBuffer, want string) {
	t.Helper()
	for !strings.Contains(b.String(), want) {
		if ctx.Err() != nil {
			t.Fatalf("output never contained %q:\n%s", want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitOutputRe(ctx context.Context, t *testing.T, b *lockedBuffer, re string) {
	t.Helper()
	r := regexp.MustCompile(re)
	for !r.MatchString(b.String()) {
		if ctx.Err() != nil {
			t.Fatalf("output never matched %s:\n%s", re, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFleet runs an instance on the local PostgreSQL and NATS servers and
// announces events to it through the real NATS server.
func TestFleet(t *testing.T) {
	reachable(t, "NATS", "127.0.0.1:4222")
	reachable(t, "PostgreSQL", "127.0.0.1:5432")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	subject := "flapguard.test." + rand.Text()[:10] // a subject of our own on the shared server

	var out, errOut lockedBuffer
	ictx, stopInstance := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(ictx, []string{"-subject", subject, "-tunnels", "aws-1"}, &out, &errOut) }()
	waitOutput(ctx, t, &out, "subscribed to "+subject)

	announce := func(args ...string) {
		t.Helper()
		var aout bytes.Buffer
		if err := run(ctx, append([]string{"-subject", subject}, args...), &aout, io.Discard); err != nil {
			t.Fatalf("announce %q: %v", args, err)
		}
		if !strings.Contains(aout.String(), "announced on "+subject) {
			t.Fatalf("announce %q printed %q", args, aout.String())
		}
	}

	announce("-announce", "down", "-tunnel", "aws-1")
	waitOutput(ctx, t, &out, "received: tunnel aws-1 down (source nats:announce@")
	// A DOWN is a hint: the pool checks the path, and this server answers,
	// so nothing is cut (see the end of the test).
	waitOutputRe(ctx, t, &out, `event: tunnel gen=\d+ tunnel aws-1 down`)

	announce("-announce", "down", "-tunnel", "aws-9")
	waitOutput(ctx, t, &out, "event: tunnel-ignored gen=")
	waitOutput(ctx, t, &out, "(not one of this pool's tunnels)")

	announce("-announce", "up", "-tunnel", "aws-1", "-source", "test")
	waitOutput(ctx, t, &out, "received: tunnel aws-1 up (source nats:test)")
	// Applied (and counted) by the pool, whatever the prober did meanwhile.
	waitOutputRe(ctx, t, &out, `event: tunnel gen=\d+ tunnel aws-1 up \(source nats:test\)`)

	stopInstance()
	if err := <-done; err != nil {
		t.Fatalf("instance: %v\n%s\n%s", err, &out, &errOut)
	}
	t.Logf("instance output:\n%s", &out)
	if !strings.Contains(out.String(), "done: 3 events received, 2 applied by the pool, 1 ignored") {
		t.Errorf("summary wrong or missing")
	}
	if strings.Contains(out.String(), "event: sever") || strings.Contains(out.String(), "->unreachable") {
		t.Errorf("a DOWN on a working path severed or took the pool down:\n%s", &out)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-announce", "sideways"},
		{"-announce", "down", "-tunnel", "bad\x01id"},
		{"-tunnel", "aws-1"}, // without -announce
		{"-subject", ""},
		{"-driver", "sqlserver"}, // needs -dsn
		{"-duration", "-1s"},
		{"stray"},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want errUsage", args, err)
		}
	}
	o, err := parseFlags([]string{"-announce", "Rekey", "-tunnel", "aws-2"}, io.Discard)
	if err != nil || o.announce.String() != "rekey" || o.tunnel != "aws-2" || !strings.HasPrefix(o.source, "announce@") {
		t.Errorf("parseFlags(announce rekey) = %+v, %v", o, err)
	}
}

func TestNATSUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = run(context.Background(), []string{"-nats", "nats://user:Hunter2@" + addr, "-announce", "down"}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("announce to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "Hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
}
