package pool

import (
	"context"
	"database/sql/driver"
	"slices"

	"github.com/flapguard/flapguard/detect"
)

// Notify applies a tunnel event (it implements detect.Notifier):
//
//   - Down: sever every connection (hung requests return now) and gate new
//     ones: a request that needs a connection waits up to Config.DownWait
//     for Up, then fails with ErrTunnelDown (at once if DownWait < 0).
//   - Up: start a new generation, make one canary connection and ping it,
//     then release the waiters. If the canary fails the gate stays shut
//     until the prober finds the path healthy.
//   - Rekey: Reset (no gate): old flows may be dead, nothing is known to hang.
//
// Events for tunnels not in Config.Tunnels are ignored; so are invalid
// events, and events older than the last one applied for the same tunnel
// (out of order). Notify never blocks: events are applied in order by the
// pool's event goroutine, and an event that does not fit its queue is
// dropped and counted. After Close it does nothing.
func (p *Pool) Notify(ev detect.Event) {
	if p.closed.Load() {
		return
	}
	if err := ev.Validate(); err != nil {
		p.ignore(ev, err.Error())
		return
	}
	if ev.Tunnel != detect.AllTunnels && len(p.cfg.Tunnels) > 0 && !slices.Contains(p.cfg.Tunnels, ev.Tunnel) {
		p.ignore(ev, "not one of this pool's tunnels")
		return
	}
	if ev.At.IsZero() {
		ev.At = p.cfg.now()
	}
	select {
	case p.events <- ev:
	default:
		p.ignore(ev, "event queue full")
	}
}

var _ detect.Notifier = (*Pool)(nil)

func (p *Pool) ignore(ev detect.Event, reason string) {
	p.stats.eventsIgnored.Add(1)
	p.emit(Event{Kind: EventTunnelIgnored, Tunnel: ev, Reason: reason})
}

// eventLoop applies tunnel events one at a time, in arrival order.
func (p *Pool) eventLoop() {
	defer p.wg.Done()
	last := make(map[string]detect.Event) // last applied event per tunnel
	for {
		select {
		case <-p.done:
			return
		case ev := <-p.events:
			if prev, ok := last[ev.Tunnel]; ok && ev.At.Before(prev.At) {
				p.ignore(ev, "older than the last event applied for this tunnel")
				continue
			}
			last[ev.Tunnel] = ev
			p.apply(ev)
		}
	}
}

func (p *Pool) apply(ev detect.Event) {
	p.stats.events.Add(1)
	p.emit(Event{Kind: EventTunnel, Tunnel: ev})
	switch ev.State {
	case detect.Down:
		if p.gate.close(ev.Tunnel) {
			p.setState(StateDown, ev.String())
			p.reset(ev.String(), true, false)
		}
	case detect.Up:
		if !p.gate.isDown() {
			// Up without a Down we saw: old flows may be dead (a rekey).
			p.reset(ev.String(), false, true)
			return
		}
		if !p.gate.up(ev.Tunnel) {
			return // another tunnel of ours is still down
		}
		p.reset(ev.String(), false, false)
		p.abandonPending(p.gen.Load())
		if err := p.canary(); err != nil {
			p.emit(Event{Kind: EventProbe, Err: err, Reason: "canary after " + ev.String()})
			p.kick()
			return
		}
		p.gate.open()
		p.setState(StateRecovering, ev.String())
		p.reapOrphans()
	case detect.Rekey:
		p.reset(ev.String(), false, true)
	}
}

// canary makes one connection past the gate and pings it.
func (p *Pool) canary() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ProbeTimeout)
	defer cancel()
	rc, err := p.conn.dial(ctx)
	if err != nil {
		return err
	}
	defer rc.close()
	if pg, ok := rc.inner.(driver.Pinger); ok {
		return pg.Ping(ctx)
	}
	return nil
}
