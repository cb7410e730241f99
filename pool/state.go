package pool

import "fmt"

// State is the pool's judgement of the path to the server.
type State int

const (
	// StateHealthy: operations succeed.
	StateHealthy State = iota
	// StateSuspect: a connection was lost, failed its liveness check or is
	// stalled; the prober is checking the path.
	StateSuspect
	// StateDown: a fresh connection could not be made, or a tunnel is
	// reported down. Old connections were severed.
	StateDown
	// StateRecovering: the path answers again; old connections were
	// discarded and the pool waits for the first success.
	StateRecovering
)

func (s State) String() string {
	switch s {
	case StateHealthy:
		return "healthy"
	case StateSuspect:
		return "suspect"
	case StateDown:
		return "down"
	case StateRecovering:
		return "recovering"
	}
	return fmt.Sprintf("State(%d)", int(s))
}
