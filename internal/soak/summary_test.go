//go:build linux

package soak

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flapguard/flapguard/pool"
)

// result is what one target's soak produced, for the summary.
type result struct {
	name   string
	ops    []opRecord
	data   dataStats
	stats  pool.Stats
	events *eventLog
	settle time.Duration
}

// summary renders the outcome, pool and latency tables.
func summary(rs []result, ws []window, counts [numFaultKinds]int, elapsed time.Duration) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(&b, "\noperations by outcome (unsent: provably not sent / transfer known not committed; unknown: present+absent after the run)")
	fmt.Fprintln(tw, "server\top\ttotal\tok\tunsent\tunknown\tunknown present\tunknown absent\tfailed\t")
	for _, r := range rs {
		for k := range numOpKinds {
			var n [numOutcomes]int
			total := 0
			for _, o := range r.ops {
				if o.kind == k {
					n[o.out]++
					total++
				}
			}
			if total == 0 {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.name, k, total, n[outOK], n[outUnsent], n[outUnknown],
				r.data.unknownPresent[k], r.data.unknownAbsent[k], n[outFailed])
		}
	}
	tw.Flush()

	fmt.Fprintln(&b, "\npool (Stats, and Unreachable time measured from OnEvent state changes)")
	fmt.Fprintln(tw, "server\tresets\tsevers\tsevered sockets\tconns lost\tliveness fails\tprobes (failed)\torphans reaped\tconnects\tDOWN entries\tDOWN time\tsettled in\t")
	for _, r := range rs {
		down, entries := r.events.downTime()
		s := r.stats
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d (%d)\t%d\t%d\t%d\t%v\t%v\t\n", r.name, s.Resets, s.Severs, s.SeveredSockets,
			s.ConnsLost, s.LivenessFailures, s.Probes, s.ProbeFailures, s.OrphansReaped, s.Connects, entries,
			down.Round(time.Millisecond), r.settle.Round(time.Millisecond))
	}
	tw.Flush()

	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s %d", faultKind(k), n))
	}
	var sum time.Duration
	for _, w := range ws {
		sum += w.end.Sub(w.start)
	}
	fmt.Fprintf(&b, "\nfaults injected: %s\n%d fault windows: sum %v, union %v of the %v run\n", strings.Join(kinds, ", "),
		len(ws), sum.Round(time.Millisecond), union(ws).Round(time.Millisecond), elapsed.Round(time.Millisecond))

	fmt.Fprintln(&b, "\nlatency of successful operations OUTSIDE every fault window (long reads sleep 0.5-3s by design)")
	fmt.Fprintln(tw, "server\top\tn\tp50\tp99\tmax\tfailed outside windows\t")
	for _, r := range rs {
		for k := range numOpKinds {
			var lat []time.Duration
			failed := 0
			for _, o := range r.ops {
				if o.kind != k || len(overlapping(ws, o.start, o.start.Add(o.dur))) > 0 {
					continue
				}
				if o.out == outOK {
					lat = append(lat, o.dur)
				} else {
					failed++
				}
			}
			if len(lat) == 0 && failed == 0 {
				continue
			}
			slices.Sort(lat)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%v\t%v\t%d\t\n", r.name, k, len(lat), pct(lat, 50), pct(lat, 99), pct(lat, 100), failed)
		}
	}
	tw.Flush()
	return b.String()
}

// topErrors counts the errors of non-ok operations by server, kind and
// outcome, with digits masked so that addresses and ids group together.
func topErrors(rs []result, n int) string {
	type key struct {
		server string
		kind   opKind
		out    outcome
		err    string
	}
	counts := make(map[key]int)
	for _, r := range rs {
		for _, o := range r.ops {
			if o.out != outOK {
				counts[key{r.name, o.kind, o.out, maskDigits(o.err)}]++
			}
		}
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.server, b.server); c != 0 {
			return c
		}
		return counts[b] - counts[a]
	})
	var b strings.Builder
	b.WriteString("\nmost frequent errors (digits masked)")
	shown := make(map[string]int)
	for _, k := range keys {
		if shown[k.server] == n {
			continue
		}
		shown[k.server]++
		e := k.err
		if len(e) > 160 {
			e = e[:160] + "..."
		}
		fmt.Fprintf(&b, "\n  %-8s %-9s %-7s %5d  %s", k.server, k.kind, k.out, counts[k], e)
	}
	return b.String()
}

func maskDigits(s string) string {
	var b strings.Builder
	prev := false
	for _, r := range s {
		d := r >= '0' && r <= '9'
		if d && !prev {
			b.WriteByte('#')
		} else if !d {
			b.WriteRune(r)
		}
		prev = d
	}
	return b.String()
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	i = min(max(i, 1), len(sorted))
	return sorted[i-1].Round(100 * time.Microsecond)
}

// failuresOutside lists up to n failed operations that overlapped no fault
// window: the pool should not fail requests on a healthy path. Reported,
// not asserted (a deadline can run out in a queue behind requests a fault
// did catch).
func failuresOutside(r result, ws []window, t0 time.Time, n int) []string {
	var out []string
	ops := slices.Clone(r.ops)
	// Writes first: a long read whose deadline is shorter than its sleep
	// fails by design.
	slices.SortStableFunc(ops, func(a, b opRecord) int {
		return cmpBool(a.kind == opLongRead, b.kind == opLongRead)
	})
	for _, o := range ops {
		if o.out != outOK && len(overlapping(ws, o.start, o.start.Add(o.dur))) == 0 {
			if len(out) < n {
				out = append(out, r.name+": "+describe(o, t0, ws)+"; pool events meanwhile: "+
					r.events.during(o.start.Add(-100*time.Millisecond), o.start.Add(o.dur+100*time.Millisecond), t0))
			}
		}
	}
	return out
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// windowList renders every fault window relative to t0.
func windowList(ws []window, t0 time.Time) string {
	var b strings.Builder
	b.WriteString("fault windows:")
	for _, w := range ws {
		fmt.Fprintf(&b, "\n  +%v..+%v  %s", w.start.Sub(t0).Round(time.Millisecond), w.end.Sub(t0).Round(time.Millisecond), w.what)
	}
	return b.String()
}

// staleSevers lists the pool's severs that came while no fault window was
// open, with how many new connections had succeeded since the last
// window closed: each such connection proved the path worked before the
// pool decided that it did not, and the sever cut what ran on them.
func staleSevers(tg *target, ws []window, t0 time.Time) []string {
	var out []string
	for _, ev := range tg.events.severs() {
		if len(overlapping(ws, ev.At.Add(-time.Millisecond), ev.At)) > 0 {
			continue
		}
		var healed time.Time
		for _, w := range ws {
			if !w.end.After(ev.At) && w.end.After(healed) {
				healed = w.end
			}
		}
		n := tg.socks.dialedBetween(healed, ev.At)
		out = append(out, fmt.Sprintf("%s: sever at +%v (%s, %d sockets) %v after the last fault window closed (+%v); %d new connections had succeeded in between",
			tg.d.name, ev.At.Sub(t0).Round(time.Millisecond), ev.Reason, ev.Count, ev.At.Sub(healed).Round(time.Millisecond),
			healed.Sub(t0).Round(time.Millisecond), n))
	}
	return out
}

// quietGrace: a fault's effects (dead flows, a server restarting) are
// found for a while after its window closes; events within this of a
// window's end count as the fault's.
const quietGrace = 5 * time.Second

// quietHarm counts the liveness failures and the resets (severs included)
// that happened outside every fault window (and its grace): false alarms
// of a healthy path on a busy machine.
func quietHarm(tg *target, ws []window, t0 time.Time) (liveness, resets []string) {
	grown := make([]window, len(ws))
	for i, w := range ws {
		grown[i] = window{what: w.what, start: w.start, end: w.end.Add(quietGrace)}
	}
	for _, ev := range tg.events.of(pool.EventLivenessFailed, pool.EventReset, pool.EventSever) {
		if len(overlapping(grown, ev.At.Add(-time.Millisecond), ev.At)) > 0 {
			continue
		}
		line := fmt.Sprintf("%s: %s at +%v", tg.d.name, ev.Kind, ev.At.Sub(t0).Round(time.Millisecond))
		if ev.Kind == pool.EventLivenessFailed {
			liveness = append(liveness, line)
		} else {
			resets = append(resets, line+" ("+ev.Reason+")")
		}
	}
	return liveness, resets
}
