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

// tunnelFlap reports the tunnel DOWN, then UP, while the server stays
// reachable: a toy monitor that is wrong. Every event is a hint to the
// pool: it checks the path (a ping on an idle connection, else a fresh
// connection) and acts only on what it finds. Here the path answers, so the
// DOWN costs that check and nothing else: no connection is cut, no request
// waits. (Against a really dead tunnel the check fails: the gate shuts, new
// requests wait up to Config.DownWait, and the idle connections are
// retired.)
func tunnelFlap(ctx context.Context, p *pool.Pool, m *monitor, out io.Writer) error {
	if err := waitFor(ctx, func() bool { return p.Stats().Health == pool.Healthy }); err != nil {
		return fmt.Errorf("pool did not settle after the earlier steps: %w", err)
	}
	before := p.Stats()
	if err := m.raise(downSignal); err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool { return p.Stats().Events >= before.Events+1 }); err != nil {
		return fmt.Errorf("DOWN not applied: %w", err)
	}
	start := time.Now()
	var one int
	if err := p.DB().QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("query after the DOWN: %w", err)
	}
	took := time.Since(start)
	after := p.Stats()
	fmt.Fprintf(out, "tunnel down reported: the pool checked the path, it answers: %d connections cut, %d resets\n",
		after.Severs-before.Severs, after.Resets-before.Resets)
	fmt.Fprintf(out, "a query issued while down took %v\n", took.Round(time.Millisecond))
	if err := m.raise(upSignal); err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool { return p.Stats().Events >= before.Events+2 }); err != nil {
		return fmt.Errorf("UP not applied: %w", err)
	}
	return nil
}
