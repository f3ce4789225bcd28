package web

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/abmesh/abmesh/internal/report"
)

// SequencePlot draws interval i of every look (report.Look.Intervals[i])
// against the window's units at that look: the confidence sequence as a
// shaded band between its bounds, the estimate as a line, 0 as a grey
// line and, when mde > 0, ±mde as dashed red lines (the futility bounds).
// Looks where the sequence is still unbounded are left out of the band.
// It fails when no look has interval i.
func SequencePlot(looks []report.Look, i int, mde float64) ([]byte, error) {
	var est, lo, hi plotter.XYs
	name := ""
	for _, l := range looks {
		if i < 0 || i >= len(l.Intervals) {
			continue
		}
		x := l.Intervals[i]
		name = x.Name
		u := float64(l.Units)
		est = append(est, plotter.XY{X: u, Y: x.Estimate})
		if x.Bounded {
			lo = append(lo, plotter.XY{X: u, Y: x.Lo})
			hi = append(hi, plotter.XY{X: u, Y: x.Hi})
		}
	}
	if len(est) == 0 {
		return nil, errors.New("no look has this interval")
	}
	p := plot.New()
	p.Title.Text = name + ": confidence sequence over the window"
	p.X.Label.Text = "units in the window"
	p.X.Tick.Marker = unitTicks{}
	p.Y.Label.Text = "effect"
	if len(lo) > 0 {
		band := append(append(plotter.XYs(nil), lo...), reversed(hi)...)
		poly, err := plotter.NewPolygon(band)
		if err != nil {
			return nil, err
		}
		poly.Color = color.NRGBA{R: 70, G: 130, B: 180, A: 70}
		poly.LineStyle.Width = 0
		p.Add(poly)
		for _, bound := range []plotter.XYs{lo, hi} {
			if err := addLine(p, bound, color.RGBA{R: 70, G: 130, B: 180, A: 255}, nil); err != nil {
				return nil, err
			}
		}
	}
	first, last := est[0].X, est[len(est)-1].X
	if first == last {
		last = first + 1
	}
	hline := func(y float64) plotter.XYs { return plotter.XYs{{X: first, Y: y}, {X: last, Y: y}} }
	if err := addLine(p, hline(0), color.Gray{Y: 120}, nil); err != nil {
		return nil, err
	}
	if mde > 0 {
		for _, y := range []float64{-mde, mde} {
			if err := addLine(p, hline(y), color.RGBA{R: 200, G: 40, B: 40, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}); err != nil {
				return nil, err
			}
		}
	}
	if err := addLine(p, est, color.Black, nil); err != nil {
		return nil, err
	}
	c := vgsvg.New(6*vg.Inch, 3*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("sequence plot: %w", err)
	}
	return buf.Bytes(), nil
}

// unitTicks are gonum/plot's default ticks labelled as whole units.
type unitTicks struct{}

func (unitTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', 0, 64)
		}
	}
	return ticks
}

func addLine(p *plot.Plot, xys plotter.XYs, c color.Color, dash []vg.Length) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color, l.Dashes = c, dash
	l.Width = vg.Points(1)
	p.Add(l)
	return nil
}

func reversed(xys plotter.XYs) plotter.XYs {
	out := make(plotter.XYs, len(xys))
	for i, xy := range xys {
		out[len(xys)-1-i] = xy
	}
	return out
}

// intervalMDE is the futility bound of the look interval named name:
// the planned term's MDE for the viewpoint's effects ("vp=variant") and
// for a planned interaction ("vp:mem"); 0 for anything else.
func intervalMDE(r *report.Report, name string) float64 {
	factor, _, isEffect := strings.Cut(name, "=")
	for _, n := range r.Progress.Needs {
		if (isEffect && len(n.Factors) == 1 && n.Name == factor) || (!isEffect && n.Name == name) {
			return n.MDE
		}
	}
	return 0
}
