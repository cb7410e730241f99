//go:build linux

package labrun

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flapguard/flapguard/internal/lab"
)

// WAN is issue 16's path, applied each way: 20ms (a 40ms RTT) with ±5ms
// of jitter, packets kept in order.
var WAN = lab.PathSpec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}

// LossyWAN is WAN dropping loss of the packets each way.
func LossyWAN(loss float64) lab.PathSpec {
	p := WAN
	p.Loss = loss
	return p
}

// LossyScenario is S9: no fault at all, a lossy WAN and bursty traffic.
// Eight workers burst together, 1–5 requests each (2s deadline each), then
// idle together for up to 3s, so the pooled connections often sit idle
// past the pool's 1s liveness threshold and are pinged before use. Every
// failure, and every failed liveness ping, is a false alarm: the path
// never breaks. It runs for d.
func LossyScenario(tg Target, loss float64, d time.Duration) Scenario {
	path := LossyWAN(loss)
	return Scenario{
		Name:   fmt.Sprintf("S9-%g%%", loss*100),
		Title:  fmt.Sprintf("no fault, %g%% loss each way, bursty traffic for %v", loss*100, d),
		Server: tg.Server,
		Path:   &path,
		Load: Load{Workers: 8, Deadline: 2 * time.Second, Query: tg.Query, Pause: 20 * time.Millisecond,
			Burst: 5, PauseMax: 3 * time.Second, Seed: 16},
		Script: func(*Script) error { Sleep(d); return nil },
	}
}

// LossyRow is what one side of a lossy run did. Latencies are over every
// request, failed ones included (a failure at the deadline is a 2s wait).
type LossyRow struct {
	Side             string
	Requests, Failed int
	P50, P99         time.Duration
	Pool             bool // the counters below are a flapguard pool's
	Resets, Severs   uint64
	LivenessChecks   uint64
	LivenessFailures uint64
}

// LivenessFailRate is the share of liveness pings that failed.
func (r LossyRow) LivenessFailRate() float64 {
	return float64(r.LivenessFailures) / float64(max(r.LivenessChecks, 1))
}

// Lossy summarises both sides of a lossy run.
func Lossy(res *Result) []LossyRow {
	var rows []LossyRow
	for _, s := range res.Sides {
		lat := make([]time.Duration, 0, len(s.Samples))
		for _, x := range s.Samples {
			lat = append(lat, x.Latency)
		}
		row := LossyRow{Side: s.Side, Requests: s.Requests, Failed: s.Failed, P50: percentile(lat, 50), P99: percentile(lat, 99)}
		if p := s.Pool; p != nil {
			row.Pool = true
			row.Resets, row.Severs = p.Resets, p.Severs
			row.LivenessChecks, row.LivenessFailures = p.LivenessChecks, p.LivenessFailures
		}
		rows = append(rows, row)
	}
	return rows
}

// LossyTable renders rows as a Markdown table.
func LossyTable(res *Result, rows []LossyRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s — %s, WAN %s\n\n", res.Scenario, res.Title, res.Server, res.Path)
	b.WriteString("| side | requests | failed | p50 | p99 | pool resets (severs) | liveness checks | liveness failures |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		pool, checks, fails := "—", "—", "—"
		if r.Pool {
			pool = fmt.Sprintf("%d (%d)", r.Resets, r.Severs)
			checks = fmt.Sprint(r.LivenessChecks)
			fails = fmt.Sprintf("%d (%.1f%%)", r.LivenessFailures, 100*r.LivenessFailRate())
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s |\n", r.Side, r.Requests, r.Failed,
			fmtDur(r.P50), fmtDur(r.P99), pool, checks, fails)
	}
	return b.String()
}

// percentile is the p-th percentile (0..100) of ds by nearest rank; -1
// when ds is empty.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
