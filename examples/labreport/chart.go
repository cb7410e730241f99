//go:build linux

package main

import (
	"fmt"

	"github.com/flapguard/flapguard/examples/internal/timeline"
	"github.com/flapguard/flapguard/internal/labrun"
)

// writeChart draws plain and flapguard stacked: each request's latency by
// start time, faults shaded, the moment the path was back marked.
func writeChart(file string, r *labrun.Result) error {
	xmax, ymax := 1.0, 0.1
	for _, s := range r.Sides {
		for _, x := range s.Samples {
			xmax = max(xmax, (x.Start + x.Latency).Seconds())
			ymax = max(ymax, x.Latency.Seconds()*1.1)
		}
	}
	var shade [][2]float64
	for _, w := range r.Faults {
		shade = append(shade, [2]float64{w.Start.Seconds(), w.End.Seconds()})
	}
	panels := make([]timeline.Panel, len(r.Sides))
	for i, s := range r.Sides {
		pn := timeline.Panel{Title: fmt.Sprintf("%s %s (%s): %s", r.Scenario, r.Title, r.Server, s.Side), Shade: shade, Mark: -1}
		if r.Back >= 0 {
			pn.Mark, pn.MarkLabel = r.Back.Seconds(), "path back"
		}
		for _, x := range s.Samples {
			pt := timeline.Point{X: x.Start.Seconds(), Y: x.Latency.Seconds()}
			switch {
			case !x.Done:
				pn.Hung = append(pn.Hung, pt)
			case x.Err != "":
				pn.Failed = append(pn.Failed, pt)
			default:
				pn.OK = append(pn.OK, pt)
			}
		}
		panels[i] = pn
	}
	return timeline.WritePNG(file, panels, xmax, ymax)
}
