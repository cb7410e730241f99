//go:build linux && race

package labrun

// defaultStarvedShare and defaultStarvedShareLAN: see EnvStarvedShare.
const (
	defaultStarvedShare    = 0.05
	defaultStarvedShareLAN = 0.05
)
