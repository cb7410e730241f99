package bankdemo

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/pool"
)

// monitor is a toy tunnel monitor: downSignal reports the tunnel down,
// upSignal up (SIGUSR1 and SIGUSR2 on Unix; see signals_*.go).
type monitor struct {
	p    *pool.Pool
	out  io.Writer
	ch   chan os.Signal
	done chan struct{}
	wg   sync.WaitGroup
}

func startMonitor(p *pool.Pool, out io.Writer) *monitor {
	m := &monitor{p: p, out: out, ch: make(chan os.Signal, 4), done: make(chan struct{})}
	notifySignals(m.ch)
	m.wg.Go(func() {
		for {
			select {
			case <-m.done:
				return
			case sig := <-m.ch:
				ev := detect.Event{Tunnel: detect.AllTunnels, State: detect.Up, Source: "signal:" + sig.String()}
				if sig == downSignal {
					ev.State = detect.Down
				}
				fmt.Fprintln(out, "  signal:", sig, "->", ev)
				m.p.Notify(ev) // never blocks; applied by the pool's event goroutine
			}
		}
	})
	return m
}

// stop stops the monitor and waits for its goroutine.
func (m *monitor) stop() {
	signal.Stop(m.ch)
	close(m.done)
	m.wg.Wait()
}

// tunnelFlap reports the tunnel DOWN, shows a request waiting at the
// pool's gate instead of failing, then reports UP, which releases it.
//
// The server stays reachable through this toy DOWN, and the pool's prober
// reopens the gate by itself when a fresh connection succeeds while a DOWN
// is in force (a DOWN the path contradicts does not hold the pool for
// ever; against a really dead tunnel the probes fail and only UP or a
// successful probe opens it). So the flap starts just after a probe round
// and ends well before the next one (ProbeInterval, 1s ±20%), and the
// output says who opened the gate.
func tunnelFlap(ctx context.Context, p *pool.Pool, m *monitor, out io.Writer) error {
	if err := waitFor(ctx, func() bool { return p.Stats().Health == pool.Healthy }); err != nil {
		return fmt.Errorf("pool did not settle after the earlier steps: %w", err)
	}
	time.Sleep(100 * time.Millisecond) // a prober wake-up queued by the earlier failures runs now
	events := p.Stats().Events
	if err := m.raise(downSignal); err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool { return p.Stats().TunnelDown }); err != nil {
		return fmt.Errorf("DOWN not applied: %w", err)
	}
	fmt.Fprintln(out, "tunnel down: old connections severed, new ones wait up to Config.DownWait (5s)")

	type result struct {
		took time.Duration
		err  error
	}
	res := make(chan result, 1)
	go func() {
		start := time.Now()
		var one int
		err := p.DB().QueryRowContext(ctx, "SELECT 1").Scan(&one)
		res <- result{time.Since(start), err}
	}()
	time.Sleep(200 * time.Millisecond) // let the request reach the gate
	opener := "UP"
	if !p.Stats().TunnelDown {
		opener = "the prober (the path answered)"
	}
	if err := m.raise(upSignal); err != nil {
		return err
	}
	r := <-res
	if err := waitFor(ctx, func() bool { return p.Stats().Events >= events+2 }); err != nil {
		return fmt.Errorf("UP not applied: %w", err)
	}
	if r.err != nil {
		return fmt.Errorf("query across the flap: %w", r.err)
	}
	fmt.Fprintf(out, "a query issued while down took %v: it waited at the gate instead of failing; opened by %s\n",
		r.took.Round(10*time.Millisecond), opener)
	return nil
}
