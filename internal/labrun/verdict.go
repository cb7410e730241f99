package labrun

import (
	"fmt"
	"time"
)

// NoWorseSlack: flapguard's worst latency may exceed plain's by this much
// and still count as no worse (issue 24's bound, both loops).
const NoWorseSlack = 100 * time.Millisecond

// NoWorseP99 is issue 24's open-loop bound on p99: at most this factor
// times plain's.
const NoWorseP99 = 1.25

// NoWorse judges flapguard against plain in r, by r's loop, and says what
// broke the bound if one did:
//   - closed loop: failed ≤ plain's and worst latency ≤ plain's + 100ms;
//   - open loop (issue 24): of the requests that arrived, failed ≤ plain's
//     and succeeded ≥ plain's, p99 ≤ 1.25× plain's and worst ≤ plain's +
//     100ms, latency measured from arrival.
//
// ok is true when r has no plain and flapguard side to compare.
func (r *Result) NoWorse() (ok bool, why string) {
	if len(r.Sides) != 2 {
		return true, ""
	}
	pl, fg := r.Side("plain"), r.Side("flapguard")
	var bad []string
	if fg.Failed > pl.Failed {
		bad = append(bad, fmt.Sprintf("failed %d > plain %d", fg.Failed, pl.Failed))
	}
	if r.Loop == "open" {
		if fg.Succeeded < pl.Succeeded {
			bad = append(bad, fmt.Sprintf("succeeded %d < plain %d", fg.Succeeded, pl.Succeeded))
		}
		if lim := time.Duration(float64(pl.Latency.P99) * NoWorseP99); fg.Latency.P99 > lim {
			bad = append(bad, fmt.Sprintf("p99 %s > 1.25× plain's %s", fmtDur(fg.Latency.P99), fmtDur(pl.Latency.P99)))
		}
	}
	if fg.MaxLatency > pl.MaxLatency+NoWorseSlack {
		bad = append(bad, fmt.Sprintf("worst %s > plain's %s + 100ms", fmtDur(fg.MaxLatency), fmtDur(pl.MaxLatency)))
	}
	if len(bad) == 0 {
		return true, ""
	}
	return false, fmt.Sprint(bad)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
