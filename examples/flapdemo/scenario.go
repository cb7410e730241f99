package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/internal/faultproxy"
)

// fault is what a step does to a proxy.
type fault int

const (
	faultDrop    fault = iota + 1 // tunnel down
	faultRekey                    // old flows silently dead, new flows fine
	faultReset                    // old flows get an RST
	faultPass                     // tunnel up
	faultRekeyUp                  // rekey, then tunnel up (the seed's case)
	faultResetUp                  // reset, then tunnel up
)

// step is one scripted fault at a fraction of the run's duration, and the
// tunnel event a monitoring feed would deliver for it (-events).
type step struct {
	at    float64 // fraction of -duration
	fault fault
	event detect.State
	label string
}

// scenarios are scaled to -duration so a short test run keeps their shape.
// In each the last step is "UP": the tunnel is back for good.
var scenarios = map[string][]step{
	// The seed incident: the tunnel drops, comes back after an IPsec rekey
	// that left every old flow blackholed, while new flows work.
	"rekey": {
		{at: 0.2, fault: faultDrop, event: detect.Down, label: "DOWN"},
		{at: 0.4, fault: faultRekeyUp, event: detect.Up, label: "UP (rekeyed)"},
	},
	// Three short outages in a row, the last one ending with a rekey.
	"flap": {
		{at: 0.2, fault: faultDrop, event: detect.Down, label: "DOWN"},
		{at: 0.25, fault: faultPass, event: detect.Up, label: "up"},
		{at: 0.3, fault: faultDrop, event: detect.Down, label: "DOWN"},
		{at: 0.35, fault: faultPass, event: detect.Up, label: "up"},
		{at: 0.4, fault: faultDrop, event: detect.Down, label: "DOWN"},
		{at: 0.45, fault: faultRekeyUp, event: detect.Up, label: "UP (rekeyed)"},
	},
	// The tunnel drops; when it returns a middlebox resets every old flow.
	"reset": {
		{at: 0.2, fault: faultDrop, event: detect.Down, label: "DOWN"},
		{at: 0.4, fault: faultResetUp, event: detect.Up, label: "UP (reset)"},
	},
}

// quiet is, per scenario, the part of the run (fractions of -duration)
// during which the workers start no request, so the pools sit idle across
// the outage: the seed incident, where the service was quiet while the
// tunnel flapped and its pooled connections were found dead afterwards.
var quiet = map[string][2]float64{
	"rekey": {0.15, 0.5},
}

// quietAt reports whether t falls in the scenario's quiet window.
func quietAt(scenario string, d, t time.Duration) bool {
	q, ok := quiet[scenario]
	return ok && t >= time.Duration(q[0]*float64(d)) && t < time.Duration(q[1]*float64(d))
}

func scenarioNames() string {
	return "rekey, flap, reset"
}

// apply performs f on p.
func (f fault) apply(p *faultproxy.Proxy) {
	switch f {
	case faultDrop:
		p.Drop()
	case faultRekey:
		p.RekeyBlackhole()
	case faultReset:
		p.ResetAll()
	case faultPass:
		p.Pass()
	case faultRekeyUp:
		// Blackhole first: a flow accepted between the two calls would be
		// a new flow and must work.
		p.RekeyBlackhole()
		p.Pass()
	case faultResetUp:
		p.ResetAll()
		p.Pass()
	}
}

// timedStep is a step placed on the run's clock.
type timedStep struct {
	At time.Duration `json:"at"`
	step
}

func schedule(steps []step, d time.Duration) []timedStep {
	out := make([]timedStep, len(steps))
	for i, s := range steps {
		out[i] = timedStep{At: time.Duration(s.at * float64(d)).Round(time.Millisecond), step: s}
	}
	return out
}

// upAt is when the tunnel is back for good: the last step.
func upAt(ts []timedStep) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	return ts[len(ts)-1].At
}

func describe(ts []timedStep) string {
	parts := make([]string, len(ts))
	for i, s := range ts {
		parts[i] = fmt.Sprintf("t=%.1fs %s", s.At.Seconds(), s.label)
	}
	return strings.Join(parts, ", ")
}
