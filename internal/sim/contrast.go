package sim

import (
	"math"
	"math/bits"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/abmesh/abmesh/analysis"
)

// contrast is a ±1 contrast of two-level factors over a table of cells
// indexed by bits (bit set: the factor's treatment). It uses the cells c
// with c & cond == val, and the sign of cell c is the product over the
// bits of sign of +1 (bit set) and −1 (bit clear). Over the U cells used,
// with s = popcount(sign) and M = U / 2^s:
//
//	estimate = (1/M) Σ_c sign(c)·mean_c
//	SE       = √(MSE · Σ_c 1/n_c) / M
//
// For s = 1 that is the difference of the two level means, each the
// unweighted mean of its cells (the sum-to-zero Type III main effect);
// for s = 2 the difference of differences; a cond bit fixes a factor's
// level (a simple effect). This is analysis.Contrast generalised to a
// subset of the cells, which the full factorial with layers needs.
type contrast struct {
	sign, cond, val uint64
}

// used reports whether cell c enters the contrast.
func (k contrast) used(c uint64) bool { return c&k.cond == k.val }

// cellSign returns +1 or −1 for cell c.
func (k contrast) cellSign(c uint64) float64 {
	if bits.OnesCount64(k.sign&^c)&1 == 1 {
		return -1
	}
	return 1
}

// scale returns 1/M for a table of ncells cells.
func (k contrast) scale(ncells int) float64 {
	used := ncells >> bits.OnesCount64(k.cond)
	return float64(uint64(1)<<bits.OnesCount64(k.sign)) / float64(used)
}

// onMeans applies the contrast to exact cell means (the truth).
func (k contrast) onMeans(means []float64) float64 {
	var s float64
	for c, m := range means {
		if k.used(uint64(c)) {
			s += k.cellSign(uint64(c)) * m
		}
	}
	return s * k.scale(len(means))
}

// estimate is one estimate with its interval and two-sided p value.
type estimate struct {
	ok          bool
	est, lo, hi float64
	p           float64
}

// pooled is the pooled within-cell variance of a table and its t
// quantile at the confidence level.
type pooled struct {
	mse float64
	df  int64
	q   float64 // t quantile (1+level)/2 on df
}

func poolCells(cells []analysis.CellStats, level float64) pooled {
	var n int64
	var ss float64
	nonEmpty := 0
	for _, c := range cells {
		if c.N > 0 {
			n += c.N
			ss += c.M2
			nonEmpty++
		}
	}
	p := pooled{df: n - int64(nonEmpty)}
	if p.df > 0 {
		p.mse = ss / float64(p.df)
		p.q = tQuantile((1+level)/2, p.df)
	}
	return p
}

// on estimates the contrast from cell statistics; ok is false when a cell
// it uses is empty or there is no residual df.
func (k contrast) on(cells []analysis.CellStats, pl pooled) estimate {
	var s, inv float64
	for c := range cells {
		if !k.used(uint64(c)) {
			continue
		}
		if cells[c].N == 0 {
			return estimate{}
		}
		s += k.cellSign(uint64(c)) * cells[c].Mean
		inv += 1 / float64(cells[c].N)
	}
	if pl.df <= 0 {
		return estimate{}
	}
	sc := k.scale(len(cells))
	e := s * sc
	se := math.Sqrt(pl.mse*inv) * sc
	return estimate{ok: true, est: e, lo: e - pl.q*se, hi: e + pl.q*se, p: tTwoSided(e, se, pl.df)}
}

// tQuantile is the p quantile of Student's t on df degrees of freedom.
func tQuantile(p float64, df int64) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}.Quantile(p)
}

// tTwoSided is the two-sided p of t = est/se on df degrees of freedom.
func tTwoSided(est, se float64, df int64) float64 {
	if se == 0 || df <= 0 {
		return 1
	}
	t := est / se
	nu := float64(df)
	return mathext.RegIncBeta(nu/2, 0.5, nu/(nu+t*t))
}

// fromEffect converts an analysis.Effect.
func fromEffect(e *analysis.Effect) estimate {
	if e == nil || e.Note != "" && e.DiffSE == 0 {
		return estimate{}
	}
	return estimate{ok: true, est: e.Diff, lo: e.DiffCI.Lo, hi: e.DiffCI.Hi, p: e.P}
}

// fromContrast converts an analysis.Contrast.
func fromContrast(c *analysis.Contrast) estimate {
	if c == nil || c.Note != "" && c.SE == 0 {
		return estimate{}
	}
	return estimate{ok: true, est: c.Estimate, lo: c.CI.Lo, hi: c.CI.Hi, p: c.P}
}
