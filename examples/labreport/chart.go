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

	"github.com/flapguard/flapguard/internal/labrun"
)

var (
	colorOK     = color.RGBA{R: 40, G: 110, B: 200, A: 255}
	colorFailed = color.RGBA{R: 210, G: 40, B: 40, A: 255}
	colorHung   = color.RGBA{R: 240, G: 150, B: 0, A: 255}
	colorFault  = color.NRGBA{R: 160, G: 160, B: 160, A: 90}
	colorBack   = color.RGBA{R: 30, G: 150, B: 60, A: 255}
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
	rows := make([][]*plot.Plot, len(r.Sides))
	for i, s := range r.Sides {
		p, err := timeline(r, s, xmax, ymax)
		if err != nil {
			return err
		}
		rows[i] = []*plot.Plot{p}
	}
	img := vgimg.New(vg.Points(900), vg.Points(280*float64(len(rows))))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadY: 4 * vg.Millimeter, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		rows[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func timeline(r *labrun.Result, s labrun.SideResult, xmax, ymax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s %s (%s): %s", r.Scenario, r.Title, r.Server, s.Side)
	p.X.Label.Text = "request start (s)"
	p.Y.Label.Text = "latency (s)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, xmax, 0, ymax
	for _, w := range r.Faults {
		x0, x1 := w.Start.Seconds(), w.End.Seconds()
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: ymax}, {X: x0, Y: ymax}})
		if err != nil {
			return nil, err
		}
		poly.Color = colorFault
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	if r.Back >= 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: r.Back.Seconds(), Y: 0}, {X: r.Back.Seconds(), Y: ymax}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = colorBack, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add("path back", l)
	}
	var ok, failed, hung plotter.XYs
	for _, x := range s.Samples {
		pt := plotter.XY{X: x.Start.Seconds(), Y: x.Latency.Seconds()}
		switch {
		case !x.Done:
			hung = append(hung, pt)
		case x.Err != "":
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
		{"still hanging when abandoned", hung, colorHung, draw.TriangleGlyph{}},
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
