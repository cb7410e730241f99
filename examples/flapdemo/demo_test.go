package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// These tests run the whole demo in-process: the embedded TDS server, two
// fault proxies, the plain pool and the real flapguard pool, both on the
// real go-mssqldb driver, with a 6 s script (DOWN at 1.2 s, UP with rekey at
// 2.4 s). full_test.go runs what -tags full adds (go-mysql-server, -plot).

func skipWholeDemo(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a whole-demo run")
	}
}

func runJSON(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"-json", "-quiet", "-duration", "6s"}, args...), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut.String())
	}
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out.String())
	}
	if len(res.Runs) != 2 || res.Runs[0].Name != nameP || res.Runs[1].Name != nameF {
		t.Fatalf("runs = %+v", res.Runs)
	}
	if res.Up != 2400*time.Millisecond || len(res.Steps) != 2 {
		t.Fatalf("up = %v, steps = %+v", res.Up, res.Steps)
	}
	for _, r := range res.Runs {
		if r.Requests < 20 || r.OK < 10 {
			t.Fatalf("%s ran too little to judge: %+v", r.Name, r)
		}
		t.Logf("%s: %+v", r.Name, r)
	}
	return res
}

// With no deadline, the plain pool's requests on blackholed connections
// hang until the demo abandons them; flapguard's liveness check and prober
// find the dead path on their own, sever, and every request returns.
func TestDemoNoDeadline(t *testing.T) {
	skipWholeDemo(t)
	res := runJSON(t, "-deadline", "0")
	plain, fg := res.Runs[0], res.Runs[1]
	if plain.Abandoned == 0 || plain.SteadyAfter != -1 {
		t.Errorf("plain: want hung requests and no recovery, got %+v", plain)
	}
	if fg.Abandoned != 0 || fg.FailedAfterUp != 0 || fg.SteadyAfter < 0 {
		t.Errorf("flapguard: want nothing abandoned, no failure after UP and a recovery, got %+v", fg)
	}
}

// With the tunnel events delivered (-events), flapguard severs at DOWN,
// holds new requests at the gate and releases them at UP: no failure at
// all, while the plain pool's requests time out.
func TestDemoEvents(t *testing.T) {
	skipWholeDemo(t)
	res := runJSON(t, "-events")
	plain, fg := res.Runs[0], res.Runs[1]
	if plain.Failed+plain.Hung == 0 {
		t.Errorf("plain: want failures, got %+v", plain)
	}
	if fg.Failed != 0 || fg.Hung != 0 || fg.SteadyAfter != 0 {
		t.Errorf("flapguard with events: want no failure, got %+v", fg)
	}
}

func TestDemoInterrupted(t *testing.T) {
	skipWholeDemo(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"-quiet", "-deadline", "0"}, &out, &errOut)
	if code != 130 {
		t.Fatalf("exit %d, want 130; stderr %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "INTERRUPTED after") || !strings.Contains(out.String(), "requests") {
		t.Errorf("no partial table:\n%s", out.String())
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("interrupt took %v to stop", d)
	}
}
