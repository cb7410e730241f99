//go:build full

package main

import (
	"fmt"
	"time"

	"github.com/flapguard/flapguard/examples/internal/timeline"
)

// writePlot draws one latency timeline per run, stacked, with the tunnel's
// down windows shaded and UP marked, as a PNG.
func writePlot(file string, res result, sides []*side) error {
	if len(sides) == 0 {
		return fmt.Errorf("nothing to plot")
	}
	ymax := 0.1
	for _, s := range res.Runs {
		ymax = max(ymax, s.Worst.Seconds()*1.1)
	}
	xmax := max(res.Elapsed.Seconds(), res.Duration.Seconds())
	var shade [][2]float64
	for _, w := range downWindows(res.stepsTimed()) {
		shade = append(shade, [2]float64{w[0].Seconds(), w[1].Seconds()})
	}
	panels := make([]timeline.Panel, len(sides))
	for i, s := range sides {
		pn := timeline.Panel{Title: s.name + ": latency of each request by start time", Shade: shade, Mark: -1}
		if res.Scenario != "" {
			pn.Title += " (" + res.Scenario + " scenario; grey = tunnel down)"
		}
		if res.Up >= 0 {
			pn.Mark, pn.MarkLabel = res.Up.Seconds(), "UP"
		}
		for _, r := range s.rec.snapshot() {
			pt := timeline.Point{X: r.Start.Seconds(), Y: r.Latency.Seconds()}
			switch {
			case r.Open:
				pn.Hung = append(pn.Hung, pt)
			case r.failed():
				pn.Failed = append(pn.Failed, pt)
			default:
				pn.OK = append(pn.OK, pt)
			}
		}
		panels[i] = pn
	}
	return timeline.WritePNG(file, panels, xmax, ymax)
}

func (r result) stepsTimed() []timedStep { return r.timed }

// downWindows returns the [from, to) intervals during which the tunnel was
// down, for shading the plot.
func downWindows(ts []timedStep) [][2]time.Duration {
	var out [][2]time.Duration
	var from time.Duration = -1
	for _, s := range ts {
		switch s.fault {
		case faultDrop:
			if from < 0 {
				from = s.At
			}
		case faultPass, faultRekeyUp, faultResetUp:
			if from >= 0 {
				out = append(out, [2]time.Duration{from, s.At})
				from = -1
			}
		}
	}
	return out
}
