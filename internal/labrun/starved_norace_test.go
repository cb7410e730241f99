//go:build linux && !race

package labrun

// defaultStarvedShare and defaultStarvedShareLAN: see EnvStarvedShare. On
// the LAN the app needs less CPU per period (no retransmissions), and 0.02
// throttled only 5-12% of its periods (below S10's 10% floor in 4 of 5
// runs); 0.01 throttled 23-47%.
const (
	defaultStarvedShare    = 0.02
	defaultStarvedShareLAN = 0.015
)
