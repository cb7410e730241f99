package labrun

import "time"

// Loop is how a scenario's requests are sent.
type Loop int

const (
	// Closed: Workers goroutines, each sending its next request when the
	// last returned (workload.go). What the lab ran before issue 24.
	Closed Loop = iota
	// Open: requests arrive on a schedule fixed before the run, at most
	// Workers in flight, the rest queued or shed (openloop.go).
	Open
)

func (l Loop) String() string {
	if l == Open {
		return "open"
	}
	return "closed"
}

// ParseLoop reads "closed" or "open" ("" is closed: results saved before
// the open loop existed).
func ParseLoop(s string) (Loop, bool) {
	switch s {
	case "", "closed":
		return Closed, true
	case "open":
		return Open, true
	}
	return Closed, false
}

// Percentiles of one side's latencies, from an HDR histogram (3
// significant digits, 1µs to 1h): every request that reached an end,
// failed ones included (a failure at the deadline is a wait that long),
// shed ones excluded (they never waited), and a request abandoned while
// hanging counted with the time it had hung.
type Percentiles struct {
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}
