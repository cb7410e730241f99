package webhookfeed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/internal/feedkit"
)

// Event is the plain JSON body a Handler accepts:
//
//	{"tunnel":"aws-1","state":"down","at":"2026-11-25T19:30:52Z","source":"tunnelhook","id":"4f1c…"}
//
// tunnel is required ("*", detect.AllTunnels, means every tunnel); state
// is "down", "up" or "rekey"; at (RFC 3339) and source are optional; id is
// a nonce, unique per request, required when the request is signed
// (HMACKey): it keeps a down, up, down within one second from signing the
// same bytes twice. Unknown fields are rejected.
type Event struct {
	Tunnel string     `json:"tunnel"`
	State  string     `json:"state"`
	At     *time.Time `json:"at,omitempty"`
	Source string     `json:"source,omitempty"`
	ID     string     `json:"id,omitempty"`
}

// payload is a decoded request body.
type payload struct {
	events  []detect.Event // each passes Validate
	ignored []string       // why Alertmanager alerts were skipped
	plain   bool           // a plain Event, not Alertmanager's
	id      string         // the plain Event's id
}

// decode parses a plain or Alertmanager body.
func (w *Handler) decode(body []byte) (payload, error) {
	var probe struct {
		Version *string         `json:"version"`
		Alerts  json.RawMessage `json:"alerts"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return payload{}, fmt.Errorf("bad JSON: %v", err)
	}
	if probe.Alerts != nil || probe.Version != nil {
		if probe.Version == nil || *probe.Version != "4" {
			return payload{}, errors.New(`unsupported Alertmanager payload: want "version":"4" with "alerts"`)
		}
		evs, ignored, err := w.decodeAlertmanager(body)
		return payload{events: evs, ignored: ignored}, err
	}
	ev, id, err := decodePlain(body)
	if err != nil {
		return payload{}, err
	}
	return payload{events: []detect.Event{ev}, plain: true, id: id}, nil
}

func decodePlain(body []byte) (detect.Event, string, error) {
	var in Event
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return detect.Event{}, "", fmt.Errorf("bad JSON: %v", err)
	}
	if dec.More() {
		return detect.Event{}, "", errors.New("bad JSON: data after the object")
	}
	if in.Tunnel == "" {
		return detect.Event{}, "", errors.New(`"tunnel" is required ("*" for every tunnel)`)
	}
	st, err := detect.ParseState(in.State)
	if err != nil {
		return detect.Event{}, "", fmt.Errorf(`bad "state": %q (want down, up or rekey)`, feedkit.Truncate(in.State, 32))
	}
	ev := detect.Event{Tunnel: in.Tunnel, State: st, Source: "webhook"}
	if in.At != nil {
		ev.At = *in.At
	}
	if s := feedkit.CleanSource(in.Source); s != "" {
		ev.Source += ":" + s
	}
	if err := ev.Validate(); err != nil {
		return detect.Event{}, "", err
	}
	return ev, in.ID, nil
}

type amPayload struct {
	Alerts []struct {
		Status   string            `json:"status"`
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		EndsAt   time.Time         `json:"endsAt"`
	} `json:"alerts"`
	Receiver string `json:"receiver"`
}

func (w *Handler) decodeAlertmanager(body []byte) ([]detect.Event, []string, error) {
	var p amPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, nil, fmt.Errorf("bad Alertmanager JSON: %v", err)
	}
	var (
		evs     []detect.Event
		ignored []string
		index   = map[string]int{} // tunnel → position in evs
	)
	now := w.cfg.Now()
	for i, a := range p.Alerts {
		tunnel, ok := a.Labels[w.cfg.TunnelLabel]
		if !ok || tunnel == "" {
			ignored = append(ignored, fmt.Sprintf("alert %d (%s) has no label %q", i, feedkit.Truncate(a.Labels["alertname"], 64), w.cfg.TunnelLabel))
			continue
		}
		var st detect.State
		at := a.StartsAt
		switch {
		case a.Status == "firing":
			st = w.cfg.FiringState
		case a.Status == "resolved":
			st, at = w.cfg.ResolvedState, a.EndsAt
		case a.Status == "" && (a.EndsAt.IsZero() || a.EndsAt.After(now)):
			st = w.cfg.FiringState
		case a.Status == "":
			st, at = w.cfg.ResolvedState, a.EndsAt
		default:
			ignored = append(ignored, fmt.Sprintf("alert %d has unknown status %q", i, feedkit.Truncate(a.Status, 32)))
			continue
		}
		ev := detect.Event{Tunnel: tunnel, State: st, At: at, Source: "webhook:alertmanager"}
		if err := ev.Validate(); err != nil {
			ignored = append(ignored, fmt.Sprintf("alert %d: %v", i, err))
			continue
		}
		if j, dup := index[tunnel]; dup {
			if st == w.cfg.FiringState {
				evs[j] = ev // firing wins within one payload
			}
			continue
		}
		index[tunnel] = len(evs)
		evs = append(evs, ev)
	}
	return evs, ignored, nil
}
