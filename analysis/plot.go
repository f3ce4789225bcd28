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

// interactionPlot builds the plot InteractionPlot draws, in steps:
// resolve the factors, accumulate the cells per (trace level, x level),
// set up the axes, add one line per trace level, and leave headroom for
// the legend.
func interactionPlot(t *CellTable, x, trace string, level float64) (*plot.Plot, error) {
	s, err := resolveInteraction(t, x, trace, level)
	if err != nil {
		return nil, err
	}
	m := accumulateInteraction(t, s, level)
	p := newInteractionPlot(t, s, level)
	for tl := 0; tl < s.kt; tl++ {
		if err := m.addLine(p, t, s, tl); err != nil {
			return nil, err
		}
	}
	// Headroom for the legend (top right), one row per line, so it does
	// not cover the highest error bar.
	if span := p.Y.Max - p.Y.Min; span > 0 {
		p.Y.Max += 0.07 * float64(s.kt+1) * span
	}
	return p, nil
}

// interactionSpec is a validated interaction plot request: the factor on
// the x axis and the trace factor, by index into the table's Factors, and
// their level counts.
type interactionSpec struct {
	x, trace string
	xi       int // index of the x factor
	ti       int // index of the trace factor, -1 for none
	kx       int // levels of the x factor
	kt       int // levels of the trace factor, 1 for none
}

// resolveInteraction checks the confidence level (in (0, 1)), the table
// (at least one cell) and the factor names (x exists; trace is "" or
// another existing factor), and returns the resolved spec. Errors wrap
// ErrInvalidInput, or come from the table's validation.
func resolveInteraction(t *CellTable, x, trace string, level float64) (interactionSpec, error) {
	if !(level > 0 && level < 1) {
		return interactionSpec{}, fmt.Errorf("%w: confidence level %v not in (0, 1)", ErrInvalidInput, level)
	}
	if err := t.validate(1); err != nil {
		return interactionSpec{}, err
	}
	s := interactionSpec{x: x, trace: trace, xi: t.factorIndex(x), ti: -1, kt: 1}
	if s.xi < 0 {
		return interactionSpec{}, fmt.Errorf("%w: no factor %q", ErrInvalidInput, x)
	}
	if trace != "" {
		if s.ti = t.factorIndex(trace); s.ti < 0 {
			return interactionSpec{}, fmt.Errorf("%w: no factor %q", ErrInvalidInput, trace)
		}
		if s.ti == s.xi {
			return interactionSpec{}, fmt.Errorf("%w: x and trace are both %q", ErrInvalidInput, x)
		}
	}
	s.kx = len(t.Factors[s.xi].Levels)
	if s.ti >= 0 {
		s.kt = len(t.Factors[s.ti].Levels)
	}
	return s, nil
}

// interactionMeans accumulates the cells per (trace level tl, x level xl),
// at index tl·kx + xl, with the pooled residual variance and the t
// quantile for the error bars.
type interactionMeans struct {
	sum   []float64 // Σ cell means over the non-empty cells
	inv   []float64 // Σ 1/n over the non-empty cells
	cnt   []int     // cells, empty or not
	empty []bool    // some cell is empty
	df    int64     // residual degrees of freedom; no error bars when 0
	q     float64   // t(df, (1+level)/2), when df > 0
	mse   float64   // residual mean square, when df > 0
}

// accumulateInteraction sums every cell of t into its (trace level, x
// level) group of s, and derives the residual df, mean square and t
// quantile for the confidence level.
func accumulateInteraction(t *CellTable, s interactionSpec, level float64) *interactionMeans {
	n := s.kt * s.kx
	m := &interactionMeans{
		sum:   make([]float64, n),
		inv:   make([]float64, n),
		cnt:   make([]int, n),
		empty: make([]bool, n),
	}
	var nObs, nonEmpty int64
	var ss float64
	lv := make([]int, len(t.Factors))
	for i, c := range t.Cells {
		lv = t.Levels(i, lv)
		j := lv[s.xi]
		if s.ti >= 0 {
			j += s.kx * lv[s.ti]
		}
		m.cnt[j]++
		if c.N == 0 {
			m.empty[j] = true
			continue
		}
		m.sum[j] += c.Mean
		m.inv[j] += 1 / float64(c.N)
		nObs += c.N
		nonEmpty++
		ss += c.M2
	}
	m.df = nObs - nonEmpty
	if m.df > 0 {
		m.mse = ss / float64(m.df)
		m.q = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(m.df)}.Quantile((1 + level) / 2)
	}
	return m
}

// interactionColors are the line colors, reused in turn past the sixth.
var interactionColors = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
}

// newInteractionPlot returns an empty plot with the title, axis labels,
// the x factor's levels as nominal x ticks and the legend at the top.
func newInteractionPlot(t *CellTable, s interactionSpec, level float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Interaction plot"
	if s.ti >= 0 {
		p.Title.Text += ": " + s.x + " × " + s.trace
	}
	p.X.Label.Text = s.x
	p.Y.Label.Text = fmt.Sprintf("mean (%g%% CI)", 100*level)
	p.NominalX(t.Factors[s.xi].Levels...)
	p.X.Min, p.X.Max = -0.5, float64(s.kx)-0.5
	p.Legend.Top = true
	return p
}

// points returns the points of trace level tl: for each x level without
// an empty cell, the mean at x = level index + dodge with its confidence
// half-width (0 when df is 0).
func (m *interactionMeans) points(s interactionSpec, tl int, dodge float64) errPoints {
	var pts errPoints
	for xl := 0; xl < s.kx; xl++ {
		j := tl*s.kx + xl
		if m.empty[j] {
			continue
		}
		M := float64(m.cnt[j])
		mean := m.sum[j] / M
		h := 0.0
		if m.df > 0 {
			h = m.q * math.Sqrt(m.mse*m.inv[j]) / M
		}
		pts.XYs = append(pts.XYs, plotter.XY{X: float64(xl) + dodge, Y: mean})
		pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{h, h})
	}
	return pts
}

// addLine adds the line of trace level tl to p — line and points, error
// bars when df > 0, and a legend entry — dodged a little sideways so that
// the error bars of different lines do not overlap. A trace level with no
// points adds nothing.
func (m *interactionMeans) addLine(p *plot.Plot, t *CellTable, s interactionSpec, tl int) error {
	dodge := 0.0
	if s.kt > 1 {
		dodge = 0.15 * (float64(tl)/float64(s.kt-1) - 0.5)
	}
	pts := m.points(s, tl, dodge)
	if len(pts.XYs) == 0 {
		return nil
	}
	line, scatter, err := plotter.NewLinePoints(pts.XYs)
	if err != nil {
		return fmt.Errorf("interaction plot: %w", err)
	}
	col := interactionColors[tl%len(interactionColors)]
	line.Color = col
	line.Width = vg.Points(1.5)
	scatter.Color = col
	scatter.Shape = draw.CircleGlyph{}
	p.Add(line, scatter)
	if m.df > 0 {
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return fmt.Errorf("interaction plot: %w", err)
		}
		bars.Color = col
		p.Add(bars)
	}
	label := "mean"
	if s.ti >= 0 {
		label = s.trace + "=" + t.Factors[s.ti].Levels[tl]
	}
	p.Legend.Add(label, line, scatter)
	return nil
}

// errPoints are points with symmetric Y errors, for plotter.NewYErrorBars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}
