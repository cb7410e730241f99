//go:build linux && !race

package labrun

// defaultStarvedShare: see EnvStarvedShare.
const defaultStarvedShare = 0.02
