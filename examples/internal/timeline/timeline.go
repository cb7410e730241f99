// Package timeline draws request-latency timelines — one stacked panel per
// run, each request a dot at (start, latency), fault windows shaded — for
// examples/flapdemo and examples/labreport.
package timeline

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

// Point is one request: X its start, Y its latency, both in seconds.
type Point struct{ X, Y float64 }

// Panel is one run's timeline.
type Panel struct {
	Title            string
	OK, Failed, Hung []Point
	Shade            [][2]float64 // fault windows [from, to) in seconds
	Mark             float64      // a vertical line (e.g. "tunnel up"); < 0: none
	MarkLabel        string
}

var (
	colorOK     = color.RGBA{R: 40, G: 110, B: 200, A: 255}
	colorFailed = color.RGBA{R: 210, G: 40, B: 40, A: 255}
	colorHung   = color.RGBA{R: 240, G: 150, B: 0, A: 255}
	colorFault  = color.NRGBA{R: 160, G: 160, B: 160, A: 90}
	colorMark   = color.RGBA{R: 30, G: 150, B: 60, A: 255}
)

// WritePNG draws the panels stacked, on shared axes (0..xmax, 0..ymax).
func WritePNG(file string, panels []Panel, xmax, ymax float64) error {
	if len(panels) == 0 {
		return fmt.Errorf("timeline: nothing to draw")
	}
	rows := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p, err := panel(pn, xmax, ymax)
		if err != nil {
			return err
		}
		rows[i] = []*plot.Plot{p}
	}
	img := vgimg.New(vg.Points(900), vg.Points(280*float64(len(rows))))
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadY: 4 * vg.Millimeter,
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(rows, tiles, draw.New(img))
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

func panel(pn Panel, xmax, ymax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pn.Title
	p.X.Label.Text = "request start (s)"
	p.Y.Label.Text = "latency (s)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, xmax, 0, ymax
	for _, w := range pn.Shade {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: w[0], Y: 0}, {X: w[1], Y: 0}, {X: w[1], Y: ymax}, {X: w[0], Y: ymax}})
		if err != nil {
			return nil, err
		}
		poly.Color = colorFault
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	if pn.Mark >= 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: pn.Mark, Y: 0}, {X: pn.Mark, Y: ymax}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = colorMark, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(pn.MarkLabel, l)
	}
	for _, g := range []struct {
		name  string
		pts   []Point
		color color.Color
		shape draw.GlyphDrawer
	}{
		{"ok", pn.OK, colorOK, draw.CircleGlyph{}},
		{"failed", pn.Failed, colorFailed, draw.CrossGlyph{}},
		{"still hanging when abandoned", pn.Hung, colorHung, draw.TriangleGlyph{}},
	} {
		if len(g.pts) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(g.pts))
		for i, pt := range g.pts {
			xys[i] = plotter.XY{X: pt.X, Y: pt.Y}
		}
		sc, err := plotter.NewScatter(xys)
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
