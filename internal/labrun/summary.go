//go:build linux

package labrun

import (
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func summarize(name string, samples []Sample, back, hangAfter time.Duration) SideResult {
	ss := slices.Clone(samples)
	slices.SortFunc(ss, func(a, b Sample) int { return int(a.Start - b.Start) })
	r := SideResult{Side: name, Samples: ss, Requests: len(ss), Latency: percentiles(ss)}
	lastFailEnd := time.Duration(-1)
	for _, s := range ss {
		end := s.Start + s.Latency
		r.MaxLatency = max(r.MaxLatency, s.Latency)
		if !s.Done || s.Latency > hangAfter {
			r.Hung++
		}
		if s.Err != "" {
			r.Failed++
		} else {
			r.Succeeded++
		}
		if s.Shed {
			r.Shed++
		}
		if back < 0 {
			continue
		}
		if s.Start < back && (!s.Done || end > back) {
			if !s.Done {
				r.MaxAfterBack = -1
			} else if r.MaxAfterBack >= 0 {
				r.MaxAfterBack = max(r.MaxAfterBack, end-back)
			}
		}
		// A shed request never reached the pool: right after the path is
		// back the open loop's queue can still be full of what the outage
		// held up, on both sides alike. It counts in Failed and Shed.
		if s.Start >= back && s.Err != "" && !s.Shed {
			r.FailedAfterBack++
			lastFailEnd = max(lastFailEnd, end)
		}
	}
	r.Recover, r.FirstOK = -1, -1
	if back >= 0 {
		for _, s := range ss {
			if end := s.Start + s.Latency; s.Err == "" && end >= back && (r.FirstOK < 0 || end-back < r.FirstOK) {
				r.FirstOK = end - back
			}
		}
		from := max(back, lastFailEnd)
		for _, s := range ss {
			if s.Start >= back && s.Err == "" && s.Start+s.Latency >= from {
				if r.Recover < 0 || s.Start+s.Latency-back < r.Recover {
					r.Recover = s.Start + s.Latency - back
				}
			}
		}
	}
	return r
}

func percentiles(ss []Sample) Percentiles {
	h := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	for _, s := range ss {
		if s.Shed {
			continue
		}
		// Values beyond the range are an error here; clamp (nothing in the
		// lab runs for an hour).
		us := min(max(s.Latency.Microseconds(), 1), h.HighestTrackableValue())
		_ = h.RecordValue(us)
	}
	if h.TotalCount() == 0 {
		return Percentiles{P50: -1, P99: -1, P999: -1, Max: -1}
	}
	at := func(q float64) time.Duration { return time.Duration(h.ValueAtQuantile(q)) * time.Microsecond }
	return Percentiles{P50: at(50), P99: at(99), P999: at(99.9), Max: time.Duration(h.Max()) * time.Microsecond}
}
