//go:build linux

package labrun

import (
	"os"
	"strings"
	"testing"
)

// EnvLoops chooses the loops each scenario runs in: "closed", "open", or
// "closed,open" (the lab report sets it: both tables). Unset: every
// scenario closed, and a representative few open as well, which is what
// CI asserts; the full matrix in both loops belongs to the lab report.
const EnvLoops = "FLAPGUARD_LAB_LOOPS"

// eachLoop runs f as a subtest per loop ("closed", "open"); representative
// marks a scenario CI also runs open.
func eachLoop(t *testing.T, representative bool, f func(t *testing.T, lp Loop)) {
	t.Helper()
	var lps []Loop
	switch v := os.Getenv(EnvLoops); v {
	case "":
		lps = []Loop{Closed}
		if representative {
			lps = append(lps, Open)
		}
	default:
		for _, w := range strings.Split(v, ",") {
			lp, ok := ParseLoop(strings.TrimSpace(w))
			if !ok || w == "" {
				t.Fatalf("%s=%q: want closed, open or closed,open", EnvLoops, v)
			}
			lps = append(lps, lp)
		}
	}
	for _, lp := range lps {
		t.Run(lp.String(), func(t *testing.T) { f(t, lp) })
	}
}
