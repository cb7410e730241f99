package main

import (
	"slices"
	"time"
)

// summary is one run's outcome, the columns of the final table.
type summary struct {
	Name          string         `json:"name"`
	Requests      int            `json:"requests"`
	OK            int            `json:"ok"`
	Failed        int            `json:"failed"`          // errors, timeouts and abandoned requests
	FailedAfterUp int            `json:"failed_after_up"` // failed requests that started once the tunnel was back
	Hung          int            `json:"hung"`            // ran past the hang threshold, or never returned
	Abandoned     int            `json:"abandoned"`       // never returned before the run ended
	Worst         time.Duration  `json:"worst_ns"`
	FirstOKAfter  time.Duration  `json:"first_ok_after_up_ns"` // -1: none
	SteadyAfter   time.Duration  `json:"steady_after_up_ns"`   // -1: never
	Errors        map[string]int `json:"errors,omitempty"`
}

// hangThreshold: a request running longer than this is "hung past its
// deadline": the deadline did not end it. With no deadline, a small query
// taking 2 s is hung.
func hangThreshold(deadline time.Duration) time.Duration {
	if deadline > 0 {
		return deadline + time.Second
	}
	return 2 * time.Second
}

// summarize computes a run's table column. up < 0 means there is no UP
// (no scripted faults): the after-UP fields are then -1.
func summarize(name string, reqs []request, up, deadline time.Duration) summary {
	s := summary{Name: name, FirstOKAfter: -1, SteadyAfter: -1}
	hang := hangThreshold(deadline)
	sorted := slices.Clone(reqs)
	slices.SortFunc(sorted, func(a, b request) int { return int(a.Start - b.Start) })

	// Recovery is timed from the first request after UP (when the service
	// used the pool again), so a quiet period after UP does not count.
	base := up
	for _, r := range sorted {
		if up >= 0 && r.Start >= up {
			base = r.Start
			break
		}
	}
	var lastBadEnd time.Duration = -1 // end of the last failure seen after UP
	for _, r := range sorted {
		s.Requests++
		s.Worst = max(s.Worst, r.Latency)
		if r.Latency > hang || r.Open {
			s.Hung++
		}
		if r.Open {
			s.Abandoned++
		}
		if !r.failed() {
			s.OK++
			if up >= 0 && r.Start >= up && (s.FirstOKAfter < 0 || r.end()-base < s.FirstOKAfter) {
				s.FirstOKAfter = r.end() - base
			}
			continue
		}
		s.Failed++
		if s.Errors == nil {
			s.Errors = map[string]int{}
		}
		s.Errors[shortErr(r)]++
		if up >= 0 && r.Start >= up {
			s.FailedAfterUp++
		}
		if up >= 0 && r.end() > up {
			lastBadEnd = max(lastBadEnd, r.end())
		}
	}
	if up < 0 {
		return s
	}
	switch {
	case lastBadEnd < 0:
		s.SteadyAfter = 0
	case anyOKStartingAfter(sorted, lastBadEnd):
		s.SteadyAfter = max(0, lastBadEnd-base)
	}
	return s
}

func anyOKStartingAfter(sorted []request, t time.Duration) bool {
	for _, r := range sorted {
		if r.Start >= t && !r.failed() {
			return true
		}
	}
	return false
}

// shortErr groups errors for the summary: one bucket per kind, not per
// message (messages carry addresses and ports).
func shortErr(r request) string {
	switch {
	case r.Open:
		return "hung (abandoned)"
	case r.Timeout:
		return "deadline exceeded"
	}
	msg := r.Err
	if len(msg) > 80 {
		msg = msg[:80] + "…"
	}
	return msg
}

// window returns the requests that finished in (from, to].
func window(reqs []request, from, to time.Duration) []request {
	var out []request
	for _, r := range reqs {
		if e := r.end(); e > from && e <= to {
			out = append(out, r)
		}
	}
	return out
}

// p99 of the latencies of reqs; 0 for none.
func p99(reqs []request) time.Duration {
	if len(reqs) == 0 {
		return 0
	}
	l := make([]time.Duration, len(reqs))
	for i, r := range reqs {
		l[i] = r.Latency
	}
	slices.Sort(l)
	return l[(len(l)*99+99)/100-1]
}
