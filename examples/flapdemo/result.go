package main

import (
	"slices"
	"time"
)

// summary is one run's outcome, the columns of the final table.
type summary struct {
	Name     string `json:"name"`
	Requests int    `json:"requests"`
	// Every request is exactly one of OK, Failed and Hung: a request is
	// never counted twice.
	OK            int           `json:"ok"`              // returned without error in time
	Failed        int           `json:"failed"`          // returned an error in time
	Hung          int           `json:"hung"`            // ran past the hang threshold (whatever it returned then), or never returned
	FailedAfterUp int           `json:"failed_after_up"` // failed or hung requests that started once the tunnel was back
	Abandoned     int           `json:"abandoned"`       // of the hung: never returned before the run ended
	Worst         time.Duration `json:"worst_ns"`
	FirstOKAfter  time.Duration `json:"first_ok_after_up_ns"` // -1: none
	SteadyAfter   time.Duration `json:"steady_after_up_ns"`   // -1: never
	// Back is from the first request after UP to the end of the first
	// success that started after every failure: when the service was back
	// for good. -1: never.
	Back   time.Duration  `json:"back_after_up_ns"`
	Errors map[string]int `json:"errors,omitempty"` // full messages (redacted), by count
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
	s := summary{Name: name, FirstOKAfter: -1, SteadyAfter: -1, Back: -1}
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
		hung := r.hung(hang)
		if !r.failed() && !hung {
			s.OK++
			if up >= 0 && r.Start >= up && (s.FirstOKAfter < 0 || r.end()-base < s.FirstOKAfter) {
				s.FirstOKAfter = r.end() - base
			}
			continue
		}
		switch {
		case r.Open:
			s.Hung++
			s.Abandoned++
		case hung:
			s.Hung++
		default:
			s.Failed++
		}
		if r.Err != "" && !r.Open {
			if s.Errors == nil {
				s.Errors = map[string]int{}
			}
			s.Errors[r.Err]++
		}
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
	from := base
	if lastBadEnd >= 0 {
		from = lastBadEnd
	}
	switch {
	case lastBadEnd < 0:
		s.SteadyAfter = 0
	case firstOKStartingAfter(sorted, lastBadEnd, hang) >= 0:
		s.SteadyAfter = max(0, lastBadEnd-base)
	}
	if end := firstOKStartingAfter(sorted, from, hang); end >= 0 {
		s.Back = max(0, end-base)
	}
	return s
}

// firstOKStartingAfter returns the end of the first success that started
// at or after t, or -1.
func firstOKStartingAfter(sorted []request, t, hang time.Duration) time.Duration {
	for _, r := range sorted {
		if r.Start >= t && !r.failed() && !r.hung(hang) {
			return r.end()
		}
	}
	return -1
}
