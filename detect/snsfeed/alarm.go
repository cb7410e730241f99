package snsfeed

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// alarm is the part of a CloudWatch alarm notification (the JSON in an SNS
// Message) that decides the event. Other fields (AlarmDescription,
// AWSAccountId, Region, NewStateReason, Threshold…) are not decoded.
type alarm struct {
	AlarmName       string
	NewStateValue   string
	StateChangeTime string
	Trigger         struct {
		MetricName         string
		Namespace          string
		ComparisonOperator string
		Dimensions         []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		}
	}
}

// maxFutureChange is how far a StateChangeTime may lie after the envelope
// Timestamp. CloudWatch publishes after the change, so only clock jitter
// puts it later. A *pool.Pool refuses a Down dated before the last Up it
// applied for the tunnel as stale, and refuses future-dated events; a
// far-future StateChangeTime is refused here first, so that the At the
// pool compares is the alarm's own.
const maxFutureChange = time.Minute

// decision is what an authentic alarm notification leads to: an event, or
// why there is none (ignored; unmapped when no tunnel is configured for it).
type decision struct {
	ev       detect.Event
	ok       bool
	unmapped bool
	why      string
}

// decide turns a Notification's Message into an event. It returns an error
// when Message is not a CloudWatch alarm; an alarm that should not move a
// pool is a decision without an event.
func (s *settings) decide(e *envelope) (decision, error) {
	var a alarm
	if err := json.Unmarshal([]byte(e.Message), &a); err != nil {
		return decision{}, fmt.Errorf("the Message is not a CloudWatch alarm: %s", jsonErr(err))
	}
	if a.AlarmName == "" || a.NewStateValue == "" {
		return decision{}, errors.New(`the Message is not a CloudWatch alarm (no "AlarmName" or "NewStateValue")`)
	}
	name := quote(a.AlarmName)
	var st detect.State
	switch a.NewStateValue {
	case "ALARM":
		st = detect.Down
	case "OK":
		st = detect.Up
	case "INSUFFICIENT_DATA":
		// No data points: the metric stopped (connection deleted, a gap in
		// CloudWatch), which says nothing about the tunnel. A Down would
		// gate the pool on no evidence, an Up could open a gate while the
		// tunnel is down; the next ALARM or OK tells.
		return decision{why: "alarm " + name + " is INSUFFICIENT_DATA"}, nil
	default:
		return decision{}, fmt.Errorf(`alarm %s has unknown "NewStateValue" %s`, name, quote(a.NewStateValue))
	}
	at, err := parseChangeTime(a.StateChangeTime)
	if err != nil {
		return decision{}, fmt.Errorf(`alarm %s has a bad "StateChangeTime" %s`, name, quote(a.StateChangeTime))
	}
	if at.Sub(e.at) > maxFutureChange {
		return decision{}, fmt.Errorf(`alarm %s: "StateChangeTime" is after the message's Timestamp`, name)
	}
	tr := a.Trigger
	if tr.Namespace != "AWS/VPN" || tr.MetricName != "TunnelState" {
		return decision{why: fmt.Sprintf("alarm %s watches %s %s, not AWS/VPN TunnelState", name, quote(tr.Namespace), quote(tr.MetricName))}, nil
	}
	switch tr.ComparisonOperator {
	case "", "LessThanThreshold", "LessThanOrEqualToThreshold":
	default:
		// An alarm that fires when TunnelState is high fires on "up":
		// acting on it would invert the tunnel's state.
		return decision{why: fmt.Sprintf("alarm %s has ComparisonOperator %s; a tunnel alarm must fire when TunnelState is low (LessThanThreshold 1)", name, quote(tr.ComparisonOperator))}, nil
	}
	var vpn, ip string
	for _, d := range tr.Dimensions {
		switch d.Name {
		case "VpnId":
			vpn = d.Value
		case "TunnelIpAddress":
			ip = d.Value
		}
	}
	tunnel, ok := s.tunnels[vpn+"/"+ip]
	if !ok || vpn == "" || ip == "" {
		tunnel, ok = s.tunnels[a.AlarmName]
	}
	if !ok {
		return decision{unmapped: true, why: fmt.Sprintf("alarm %s (VpnId %s, TunnelIpAddress %s) maps to no tunnel", name, quote(vpn), quote(ip))}, nil
	}
	ev := detect.Event{Tunnel: tunnel, State: st, At: at, Source: "sns:" + feedkit.CleanSource(a.AlarmName)}
	if err := ev.Validate(); err != nil {
		return decision{}, err // tunnel ids were validated by New; kept as a guard
	}
	return decision{ev: ev, ok: true}, nil
}

// parseChangeTime reads CloudWatch's StateChangeTime, whose offset has no
// colon ("2015-06-03T17:43:27.123+0000"), or an RFC 3339 time.
func parseChangeTime(s string) (time.Time, error) {
	// Parsing accepts a fractional second after the seconds even though
	// the layout has none.
	if t, err := time.Parse("2006-01-02T15:04:05-0700", s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
