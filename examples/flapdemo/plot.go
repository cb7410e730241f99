package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	colorOK     = color.RGBA{R: 40, G: 110, B: 200, A: 255}
	colorFailed = color.RGBA{R: 210, G: 40, B: 40, A: 255}
	colorHung   = color.RGBA{R: 240, G: 150, B: 0, A: 255}
	colorDown   = color.NRGBA{R: 160, G: 160, B: 160, A: 90}
	colorUp     = color.RGBA{R: 30, G: 150, B: 60, A: 255}
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
	rows := make([][]*plot.Plot, len(sides))
	for i, s := range sides {
		p, err := timeline(s, res, xmax, ymax)
		if err != nil {
			return err
		}
		rows[i] = []*plot.Plot{p}
	}
	img := vgimg.New(vg.Points(900), vg.Points(300*float64(len(sides))))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(sides), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		rows[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func timeline(s *side, res result, xmax, ymax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = s.name + ": latency of each request by start time"
	if res.Scenario != "" {
		p.Title.Text += " (" + res.Scenario + " scenario; grey = tunnel down)"
	}
	p.X.Label.Text = "start (s)"
	p.Y.Label.Text = "latency (s)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, xmax, 0, ymax

	for _, w := range downWindows(res.stepsTimed()) {
		x0, x1 := w[0].Seconds(), w[1].Seconds()
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: ymax}, {X: x0, Y: ymax}})
		if err != nil {
			return nil, err
		}
		poly.Color = colorDown
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	if res.Up >= 0 {
		up, err := plotter.NewLine(plotter.XYs{{X: res.Up.Seconds(), Y: 0}, {X: res.Up.Seconds(), Y: ymax}})
		if err != nil {
			return nil, err
		}
		up.Color, up.Width = colorUp, vg.Points(1.5)
		p.Add(up)
		p.Legend.Add("UP", up)
	}

	var ok, failed, hung plotter.XYs
	for _, r := range s.rec.snapshot() {
		pt := plotter.XY{X: r.Start.Seconds(), Y: r.Latency.Seconds()}
		switch {
		case r.Open:
			hung = append(hung, pt)
		case r.failed():
			failed = append(failed, pt)
		default:
			ok = append(ok, pt)
		}
	}
	for _, g := range []struct {
		name  string
		pts   plotter.XYs
		color color.Color
		shape draw.GlyphDrawer
	}{
		{"ok", ok, colorOK, draw.CircleGlyph{}},
		{"failed", failed, colorFailed, draw.CrossGlyph{}},
		{"hung (abandoned)", hung, colorHung, draw.TriangleGlyph{}},
	} {
		if len(g.pts) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(g.pts)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: g.color, Radius: vg.Points(2), Shape: g.shape}
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("%s (%d)", g.name, len(g.pts)), sc)
	}
	p.Legend.Top = true
	return p, nil
}
