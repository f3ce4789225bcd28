package analysis

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// InteractionPlot draws an interaction plot as SVG: the means of the
// factor x's levels along the x axis, one line per level of the factor
// trace, with error bars for the confidence interval at level (e.g. 0.95).
// Each point is the unweighted mean of the cell means over the other
// factors, with the pooled residual variance:
//
//	mean = (1/M) Σ_c mean_c,  mean ± t(df_res, (1+level)/2)·√(MS_res·Σ_c 1/n_c)/M
//
// trace "" draws one line (the marginal means of x). A point whose cells
// include an empty one is left out (its line breaks there); when the
// residual df is 0 the points have no error bars. The SVG is 6×4 inches,
// with one legend entry "trace=level" per line.
func InteractionPlot(t *CellTable, x, trace string, level float64) ([]byte, error) {
	p, err := interactionPlot(t, x, trace, level)
	if err != nil {
		return nil, err
	}
	c := vgsvg.New(6*vg.Inch, 4*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("interaction plot: %w", err)
	}
	return buf.Bytes(), nil
}

func interactionPlot(t *CellTable, x, trace string, level float64) (*plot.Plot, error) {
	if !(level > 0 && level < 1) {
		return nil, fmt.Errorf("%w: confidence level %v not in (0, 1)", ErrInvalidInput, level)
	}
	if err := t.validate(1); err != nil {
		return nil, err
	}
	xi := t.factorIndex(x)
	if xi < 0 {
		return nil, fmt.Errorf("%w: no factor %q", ErrInvalidInput, x)
	}
	ti := -1
	if trace != "" {
		if ti = t.factorIndex(trace); ti < 0 {
			return nil, fmt.Errorf("%w: no factor %q", ErrInvalidInput, trace)
		}
		if ti == xi {
			return nil, fmt.Errorf("%w: x and trace are both %q", ErrInvalidInput, x)
		}
	}
	kx := len(t.Factors[xi].Levels)
	kt := 1
	if ti >= 0 {
		kt = len(t.Factors[ti].Levels)
	}
	// Accumulate per (trace level, x level).
	sum := make([]float64, kt*kx)
	inv := make([]float64, kt*kx)
	cnt := make([]int, kt*kx)
	empty := make([]bool, kt*kx)
	var nObs, nonEmpty int64
	var ss float64
	lv := make([]int, len(t.Factors))
	for i, c := range t.Cells {
		lv = t.Levels(i, lv)
		j := lv[xi]
		if ti >= 0 {
			j += kx * lv[ti]
		}
		cnt[j]++
		if c.N == 0 {
			empty[j] = true
			continue
		}
		sum[j] += c.Mean
		inv[j] += 1 / float64(c.N)
		nObs += c.N
		nonEmpty++
		ss += c.M2
	}
	df := nObs - nonEmpty
	var q, mse float64
	if df > 0 {
		mse = ss / float64(df)
		q = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}.Quantile((1 + level) / 2)
	}

	p := plot.New()
	p.Title.Text = "Interaction plot"
	if ti >= 0 {
		p.Title.Text += ": " + x + " × " + trace
	}
	p.X.Label.Text = x
	p.Y.Label.Text = fmt.Sprintf("mean (%g%% CI)", 100*level)
	p.NominalX(t.Factors[xi].Levels...)
	p.X.Min, p.X.Max = -0.5, float64(kx)-0.5
	p.Legend.Top = true
	colors := []color.Color{
		color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
		color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
		color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	}
	for tl := 0; tl < kt; tl++ {
		// Dodge the lines a little so error bars do not overlap.
		dodge := 0.0
		if kt > 1 {
			dodge = 0.15 * (float64(tl)/float64(kt-1) - 0.5)
		}
		var pts errPoints
		for xl := 0; xl < kx; xl++ {
			j := tl*kx + xl
			if empty[j] {
				continue
			}
			M := float64(cnt[j])
			m := sum[j] / M
			h := 0.0
			if df > 0 {
				h = q * math.Sqrt(mse*inv[j]) / M
			}
			pts.XYs = append(pts.XYs, plotter.XY{X: float64(xl) + dodge, Y: m})
			pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{h, h})
		}
		if len(pts.XYs) == 0 {
			continue
		}
		line, scatter, err := plotter.NewLinePoints(pts.XYs)
		if err != nil {
			return nil, fmt.Errorf("interaction plot: %w", err)
		}
		col := colors[tl%len(colors)]
		line.Color = col
		line.Width = vg.Points(1.5)
		scatter.Color = col
		scatter.Shape = draw.CircleGlyph{}
		p.Add(line, scatter)
		if df > 0 {
			bars, err := plotter.NewYErrorBars(pts)
			if err != nil {
				return nil, fmt.Errorf("interaction plot: %w", err)
			}
			bars.Color = col
			p.Add(bars)
		}
		label := "mean"
		if ti >= 0 {
			label = trace + "=" + t.Factors[ti].Levels[tl]
		}
		p.Legend.Add(label, line, scatter)
	}
	// Headroom for the legend (top right), one row per line, so it does
	// not cover the highest error bar.
	if span := p.Y.Max - p.Y.Min; span > 0 {
		p.Y.Max += 0.07 * float64(kt+1) * span
	}
	return p, nil
}

// errPoints are points with symmetric Y errors, for plotter.NewYErrorBars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}
