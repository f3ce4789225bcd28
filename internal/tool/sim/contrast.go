package sim

import (
	"math"
	"math/bits"
	"math/rand/v2"

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
	p := pooled{}
	p.mse, p.df = pooledVariance(cells)
	if p.df > 0 {
		p.q = tQuantile((1+level)/2, p.df)
	}
	return p
}

// pooledVariance is the pooled within-cell variance of the cells (0 when
// df ≤ 0) and its df, the observations minus the non-empty cells.
func pooledVariance(cells []analysis.CellStats) (mse float64, df int64) {
	var n int64
	var ss float64
	for _, c := range cells {
		if c.N > 0 {
			n += c.N
			ss += c.M2
			df--
		}
	}
	if df += n; df > 0 {
		mse = ss / float64(df)
	}
	return mse, df
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

// wht replaces x (of length 2^k) by its Walsh–Hadamard transform:
//
//	W[T] = Σ_c (−1)^popcount(c & T) · x[c]
//
// in O(k·2^k), so that every contrast of a 2^k table costs O(2^|cond|)
// afterwards (see contrast.fromWHT).
func wht(x []float64) {
	for h := 1; h < len(x); h <<= 1 {
		for i := 0; i < len(x); i += h << 1 {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
}

// fromWHT returns Σ_c sign(c)·x[c] over the cells the contrast uses, from
// W = wht(x). With χ_T(c) = (−1)^popcount(c&T), the cell sign is
// (−1)^|sign|·χ_sign(c) and the indicator of c & cond = val is
// 2^−|cond| Σ_{D ⊆ cond} (−1)^popcount(D&val)·χ_D(c), so
//
//	Σ = (−1)^|sign| · 2^−|cond| · Σ_{D ⊆ cond} (−1)^popcount(D&val) · W[sign | D]
//
// (sign and cond are disjoint). With sign = 0 it is the plain sum over the
// used cells.
func (k contrast) fromWHT(w []float64) float64 {
	var s float64
	d := k.cond
	for {
		term := w[k.sign|d]
		if bits.OnesCount64(d&k.val)&1 == 1 {
			term = -term
		}
		s += term
		if d == 0 {
			break
		}
		d = (d - 1) & k.cond
	}
	s /= float64(uint64(1) << bits.OnesCount64(k.cond))
	if bits.OnesCount64(k.sign)&1 == 1 {
		s = -s
	}
	return s
}

// repRand returns the random source of replication rep of a run seeded
// with seed. The two PCG seeds are mixed with SplitMix64, so replications
// with neighbouring numbers start from unrelated states (PCG states that
// differ in a few low bits give correlated streams).
func repRand(seed uint64, rep int) *rand.Rand {
	a := splitmix64(seed ^ 0x9e3779b97f4a7c15*uint64(rep+1))
	b := splitmix64(a ^ uint64(rep))
	return rand.New(rand.NewPCG(a, b))
}

// splitmix64 is Steele, Lea and Flood's 64-bit mixer (SplitMix64's output).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
