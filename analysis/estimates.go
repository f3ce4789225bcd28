package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// Interval is a confidence interval [Lo, Hi].
type Interval struct {
	Lo, Hi float64
}

// CellMean is one cell's mean with its confidence interval from the
// pooled residual variance:
//
//	mean ± t(df_res, (1+level)/2) · √(MS_res / n)
type CellMean struct {
	Levels []string // one per factor
	N      int64
	Mean   float64
	SE     float64
	CI     Interval
	// Note is empty when every field is valid; otherwise it says what
	// could not be computed (an empty cell, no residual df), and those
	// fields are zero.
	Note string
}

// MarginalMean is a least-squares (Type III) marginal mean: the unweighted
// mean of the cell means over the other factors' levels, which does not
// depend on how unbalanced the cells are. Over the M cells c with the level:
//
//	mean = (1/M) Σ_c mean_c
//	SE   = √(MS_res · Σ_c 1/n_c) / M
type MarginalMean struct {
	Factor, Level string
	Mean, SE      float64
	CI            Interval
	Note          string // as in CellMean
}

// Effect is one variant compared with its factor's control (first level,
// or the level Factor.Reference names) on the marginal means:
//
//	Diff = m_variant − m_control,  SE² = SE_variant² + SE_control²
//	Rel  = Diff / m_control = m_variant/m_control − 1
//
// The absolute interval is Diff ± t·SE with t from Student's t on the
// residual df; T and P are the two-sided t test of Diff = 0.
//
// The relative interval is Fieller's: the set of ρ = m_variant/m_control
// that the t test of m_variant − ρ·m_control = 0 does not reject, minus 1.
// With independent marginal means (disjoint cells) it solves
//
//	(m_v − ρ·m_c)² ≤ t²·(SE_v² + ρ²·SE_c²)
//
// so it excludes 0 exactly when the absolute interval does, and it is
// asymmetric where it should be. When the control mean is not itself
// significantly different from 0 (m_c² ≤ t²·SE_c²) the interval is
// unbounded: RelCI is zero and Note says so. RelSE is the delta-method
// standard error, for display:
//
//	SE_rel² = SE_v²/m_c² + m_v²·SE_c²/m_c⁴
//
// When m_control is 0 the relative fields are zero and Note says so.
type Effect struct {
	Factor, Control, Variant string
	ControlMean, VariantMean float64
	Diff, DiffSE             float64
	DiffCI                   Interval
	T, P                     float64
	Rel, RelSE               float64
	RelCI                    Interval
	Note                     string // as in CellMean; P is 1 when not computed
}

// Contrast is an interaction contrast of two-level factors: the difference
// of differences (of differences …) of the marginal means over the term's
// factors, each factor's variant (level 1) minus its control (level 0).
// For a term T with |T| factors, over all K cells, with s_f = +1 at the
// variant and −1 at the control and M = K/2^|T|:
//
//	Estimate = (1/M) Σ_c (Π_{f∈T} s_f) mean_c
//	SE       = √(MS_res · Σ_c 1/n_c) / M
//
// For a:b that is (m_{a1,b1} − m_{a0,b1}) − (m_{a1,b0} − m_{a0,b0}).
type Contrast struct {
	Term     string
	Factors  []int
	Estimate float64
	SE       float64
	CI       Interval
	T, P     float64
	Note     string // as in Effect
}

// The tests and intervals of Estimates (Estimates.Test).
const (
	// TestT: Student's t on the pooled within-cell variance (ordinary
	// tables).
	TestT = "t"
	// TestZ: normal (z) intervals and tests from each cell's own
	// delta-method variance (ratio tables).
	TestZ = "z (delta method)"
)

// Estimates are the effect estimates of a factorial table at one
// confidence level. For an ordinary table they all use the pooled
// within-cell variance MSE on DF degrees of freedom (Test is TestT).
//
// For a ratio table (see CellTable) Test is TestZ, DF and MSE are 0, and
// every formula of this file holds with MSE/n_c replaced by the cell's
// delta-method variance v_c (RatioStats.Variance, cells independent) and
// the t quantile by the normal one: a cell's ratio has SE √v_c, a marginal
// mean over M cells SE √(Σ v_c)/M, an effect SE √(SE_v² + SE_c²), an
// interaction contrast SE √(Σ_c v_c)/M; T fields hold z = estimate/SE and
// P = 2·(1 − Φ(|z|)). A cell with one unit has no variance: quantities
// that involve it carry a Note and no interval.
type Estimates struct {
	Level   float64  // confidence level, e.g. 0.95
	Factors []string // the factors' names, in table order
	// Test says how intervals and p-values are computed: TestT or TestZ;
	// renderers should say which.
	Test string
	DF   int64
	MSE  float64
	// Cells are every cell, in table order (last factor fastest).
	Cells []CellMean
	// Marginal are the marginal means of every factor's levels, factor by
	// factor.
	Marginal []MarginalMean
	// Effects are every level that has a control against it (every
	// non-first level, or as Factor.Reference says), in level order.
	Effects []Effect
	// Interactions are the contrasts of every interaction whose factors
	// all have two levels, in R's term order.
	Interactions []Contrast
}

// Effect returns the effect of variant of factor, or nil.
func (e *Estimates) Effect(factor, variant string) *Effect {
	for i := range e.Effects {
		if e.Effects[i].Factor == factor && e.Effects[i].Variant == variant {
			return &e.Effects[i]
		}
	}
	return nil
}

// Interaction returns the contrast of term ("a:b"), or nil.
func (e *Estimates) Interaction(term string) *Contrast {
	for i := range e.Interactions {
		if e.Interactions[i].Term == term {
			return &e.Interactions[i]
		}
	}
	return nil
}

// Estimate computes cell means, marginal means, variant-vs-control effects
// and interaction contrasts with confidence intervals at the given level
// (in (0, 1), e.g. 0.95). Quantities that need an empty cell carry a Note
// instead of numbers; so do intervals when the residual df is 0, or, in a
// ratio table, when a cell has one unit. A ratio table's estimates use
// each cell's delta-method variance and normal intervals (see Estimates).
func Estimate(t *CellTable, level float64) (*Estimates, error) {
	if !(level > 0 && level < 1) {
		return nil, fmt.Errorf("%w: confidence level %v not in (0, 1)", ErrInvalidInput, level)
	}
	if err := t.validate(1); err != nil {
		return nil, err
	}
	x := newEstimator(t, level)
	x.cellMeans()
	for f := range t.Factors {
		x.effects(f, x.marginalMeans(f))
	}
	x.interactions()
	return x.e, nil
}

// noDF is the Note of every quantity whose interval needs a residual df.
const noDF = "no interval: residual df is 0 (one observation per cell)"

// estimator is what the steps of Estimate share: the table, the
// Estimates being filled, the quantile for the intervals and every cell's
// levels.
//
// Variances are written scale·Σ vf_c: for an ordinary table scale is MSE
// and a cell's variance factor vf_c is 1/n_c; for a ratio table scale is
// 1 and vf_c is the cell's delta-method variance.
type estimator struct {
	t      *CellTable
	e      *Estimates
	q      float64 // quantile at (1+level)/2: t on e.DF (0 when e.DF is 0), or normal
	scale  float64
	k      int   // number of factors
	levels []int // levels of cell i: levels[i*k : i*k+k]
}

// newEstimator starts the Estimates: the factors' names, and the pooled
// within-cell variance of the non-empty cells, MSE = Σ M2 / DF on
// DF = n − (non-empty cells) (MSE and q stay 0 when DF is 0); for a ratio
// table the normal quantile instead. It also decodes every cell's levels.
func newEstimator(t *CellTable, level float64) *estimator {
	x := &estimator{t: t, e: &Estimates{Level: level, Test: TestT}, k: len(t.Factors)}
	for _, f := range t.Factors {
		x.e.Factors = append(x.e.Factors, f.Name)
	}
	x.levels = make([]int, len(t.Cells)*x.k)
	for i := range t.Cells {
		t.Levels(i, x.cellLevels(i))
	}
	if t.Ratios != nil {
		x.e.Test = TestZ
		x.scale = 1
		x.q = distuv.UnitNormal.Quantile((1 + level) / 2)
		return x
	}
	var n int64
	var ss float64
	nonEmpty := 0
	for _, c := range t.Cells {
		if c.N > 0 {
			n += c.N
			ss += c.M2
			nonEmpty++
		}
	}
	x.e.DF = n - int64(nonEmpty)
	if x.e.DF > 0 {
		x.e.MSE = ss / float64(x.e.DF)
		x.q = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(x.e.DF)}.Quantile((1 + level) / 2)
	}
	x.scale = x.e.MSE
	return x
}

// cellLevels returns cell i's level indices, one per factor.
func (x *estimator) cellLevels(i int) []int { return x.levels[i*x.k : i*x.k+x.k] }

// vf returns non-empty cell i's variance factor (see estimator).
func (x *estimator) vf(i int) float64 {
	if x.t.Ratios != nil {
		return x.t.Ratios[i].Variance()
	}
	return 1 / float64(x.t.Cells[i].N)
}

// noInterval returns why non-empty cell i gives no interval ("" when it
// does): no residual df, or, in a ratio table, a single unit.
func (x *estimator) noInterval(i int) string {
	switch {
	case x.t.Ratios != nil && x.t.Ratios[i].K < 2:
		return "no interval: cell " + x.t.CellName(i) + " has one unit; its delta-method variance needs two"
	case x.t.Ratios == nil && x.e.DF == 0:
		return noDF
	}
	return ""
}

// test returns the statistic and two-sided p of est with standard error
// se: t on e.DF, or z for a ratio table.
func (x *estimator) test(est, se float64) (float64, float64) {
	if x.t.Ratios != nil {
		return zTest(est, se)
	}
	return tTest(est, se, x.e.DF)
}

// noVariance is the Note of a test whose standard error is 0.
func (x *estimator) noVariance() string {
	if x.t.Ratios != nil {
		return "no test: the variance is 0"
	}
	return "no test: the residual variance is 0"
}

// interval returns est ± q·se.
func (x *estimator) interval(est, se float64) Interval {
	return Interval{est - x.q*se, est + x.q*se}
}

// cellMeans appends every cell's mean to e.Cells in table order, with
// SE = √(MSE/n) and its interval; an empty cell has only a Note, and with
// no residual df the mean has no SE or interval.
func (x *estimator) cellMeans() {
	for i, c := range x.t.Cells {
		lv := x.cellLevels(i)
		cm := CellMean{Levels: make([]string, len(lv)), N: c.N}
		for f, l := range lv {
			cm.Levels[f] = x.t.Factors[f].Levels[l]
		}
		switch {
		case c.N == 0:
			cm.Note = "empty cell"
		case x.noInterval(i) != "":
			cm.Mean = c.Mean
			cm.Note = x.noInterval(i)
		case x.t.Ratios != nil:
			cm.Mean = c.Mean
			cm.SE = math.Sqrt(x.vf(i))
			cm.CI = x.interval(c.Mean, cm.SE)
		default:
			cm.Mean = c.Mean
			cm.SE = math.Sqrt(x.e.MSE / float64(c.N))
			cm.CI = x.interval(c.Mean, cm.SE)
		}
		x.e.Cells = append(x.e.Cells, cm)
	}
}

// marginal is one level's least-squares mean over its M cells before it
// is reported: mean = Σ mean_c / M and v = Σ vf_c / M², so SE² = scale·v.
// empty names the level's first empty cell, "" when there is none (then
// mean and v are not meaningful); noCI is the first of its cells' reasons
// for having no interval.
type marginal struct {
	mean, v float64
	empty   string
	noCI    string
}

// marginalMeans computes factor f's marginal means, one per level in
// level order, appends them to e.Marginal and returns them for effects.
func (x *estimator) marginalMeans(f int) []marginal {
	fac := x.t.Factors[f]
	ms := make([]marginal, len(fac.Levels))
	cnt := make([]int, len(fac.Levels))
	for i, c := range x.t.Cells {
		l := x.cellLevels(i)[f]
		cnt[l]++
		if c.N == 0 {
			if ms[l].empty == "" {
				ms[l].empty = x.t.CellName(i)
			}
			continue
		}
		ms[l].mean += c.Mean
		ms[l].v += x.vf(i)
		if ms[l].noCI == "" {
			ms[l].noCI = x.noInterval(i)
		}
	}
	for l := range ms {
		M := float64(cnt[l])
		ms[l].mean /= M
		ms[l].v /= M * M
		m := MarginalMean{Factor: fac.Name, Level: fac.Levels[l]}
		switch {
		case ms[l].empty != "":
			m.Note = "not estimable: cell " + ms[l].empty + " is empty"
		case ms[l].noCI != "":
			m.Mean = ms[l].mean
			m.Note = ms[l].noCI
		default:
			m.Mean = ms[l].mean
			m.SE = math.Sqrt(x.scale * ms[l].v)
			m.CI = x.interval(m.Mean, m.SE)
		}
		x.e.Marginal = append(x.e.Marginal, m)
	}
	return ms
}

// effects appends to e.Effects each level of factor f that has a control
// against it (level 0, or the factor's Reference), from the factor's
// marginal means ms.
func (x *estimator) effects(f int, ms []marginal) {
	fac := x.t.Factors[f]
	for l := range fac.Levels {
		c := fac.reference(l)
		if c < 0 {
			continue
		}
		ef := Effect{Factor: fac.Name, Control: fac.Levels[c], Variant: fac.Levels[l], P: 1}
		x.compare(&ef, ms[c], ms[l])
		x.e.Effects = append(x.e.Effects, ef)
	}
}

// compare fills ef, which names the factor and levels, from the control's
// and the variant's marginal means c and v, as the Effect doc says: a Note
// and no numbers when either has an empty cell; the means, Diff and Rel
// but no intervals when a cell gives none (no residual df).
func (x *estimator) compare(ef *Effect, c, v marginal) {
	if c.empty != "" || v.empty != "" {
		cell := c.empty
		if cell == "" {
			cell = v.empty
		}
		ef.Note = "not estimable: cell " + cell + " is empty"
		return
	}
	ef.ControlMean, ef.VariantMean = c.mean, v.mean
	ef.Diff = v.mean - c.mean
	if c.mean != 0 {
		ef.Rel = ef.Diff / c.mean
	}
	if ef.Note = c.noCI; ef.Note == "" {
		ef.Note = v.noCI
	}
	if ef.Note != "" {
		return
	}
	ef.DiffSE = math.Sqrt(x.scale * (c.v + v.v))
	ef.DiffCI = x.interval(ef.Diff, ef.DiffSE)
	ef.T, ef.P = x.test(ef.Diff, ef.DiffSE)
	switch {
	case ef.DiffSE == 0:
		ef.Note = x.noVariance()
	case c.mean == 0:
		ef.Note = "no relative effect: the control mean is 0"
	default:
		m0, m1 := c.mean, v.mean
		ef.RelSE = math.Sqrt(x.scale * (v.v/(m0*m0) + m1*m1*c.v/(m0*m0*m0*m0)))
		if lo, hi, ok := fieller(m1, m0, x.scale*v.v, x.scale*c.v, x.q); ok {
			ef.RelCI = Interval{lo - 1, hi - 1}
		} else {
			ef.Note = "relative interval unbounded: the control mean is not significantly different from 0"
		}
	}
}

// interactions appends to e.Interactions the contrast of every interaction
// term whose factors all have two levels, in R's term order.
func (x *estimator) interactions() {
	for _, mask := range allTerms(x.k) {
		fs := maskFactors(mask)
		if len(fs) < 2 {
			continue
		}
		twoLevel := true
		for _, f := range fs {
			twoLevel = twoLevel && len(x.t.Factors[f].Levels) == 2
		}
		if twoLevel {
			x.e.Interactions = append(x.e.Interactions, x.contrast(mask, fs))
		}
	}
}

// contrast returns the interaction contrast of term mask over its
// two-level factors fs, as the Contrast doc says: a Note and no numbers
// when a cell is empty; the estimate but no interval when a cell gives
// none (no residual df).
func (x *estimator) contrast(mask uint64, fs []int) Contrast {
	ct := Contrast{Term: x.t.TermName(mask), Factors: fs, P: 1}
	M := float64(len(x.t.Cells) >> len(fs))
	var est, v float64
	empty, noCI := "", ""
	for i, c := range x.t.Cells {
		if c.N == 0 {
			if empty == "" {
				empty = x.t.CellName(i)
			}
			continue
		}
		if noCI == "" {
			noCI = x.noInterval(i)
		}
		s := 1.0
		for _, f := range fs {
			if x.cellLevels(i)[f] == 0 {
				s = -s
			}
		}
		est += s * c.Mean
		v += x.vf(i)
	}
	switch {
	case empty != "":
		ct.Note = "not estimable: cell " + empty + " is empty"
	case noCI != "":
		ct.Estimate = est / M
		ct.Note = noCI
	default:
		ct.Estimate = est / M
		ct.SE = math.Sqrt(x.scale*v) / M
		ct.CI = x.interval(ct.Estimate, ct.SE)
		ct.T, ct.P = x.test(ct.Estimate, ct.SE)
		if ct.SE == 0 {
			ct.Note = x.noVariance()
		}
	}
	return ct
}

// fieller returns Fieller's interval for ρ = m1/m0 with independent
// estimates of variances v1 and v0 and critical value q, the roots of
//
//	(m0² − q²v0)·ρ² − 2·m0·m1·ρ + (m1² − q²v1) = 0
//
// ok is false when m0² ≤ q²·v0 (the interval is unbounded).
func fieller(m1, m0, v1, v0, q float64) (lo, hi float64, ok bool) {
	a := m0*m0 - q*q*v0
	if a <= 0 {
		return 0, 0, false
	}
	// Discriminant/4 = m0²m1² − a(m1² − q²v1) = q²(v0·m1² + v1·a)
	disc := q * q * (v0*m1*m1 + v1*a)
	r := math.Sqrt(disc)
	return (m0*m1 - r) / a, (m0*m1 + r) / a, true
}

// tTest returns t = est/se and its two-sided p on df degrees of freedom:
//
//	p = P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2)
func tTest(est, se float64, df int64) (float64, float64) {
	if se == 0 {
		return 0, 1 // no variance: no test
	}
	t := est / se
	nu := float64(df)
	return t, mathext.RegIncBeta(nu/2, 0.5, nu/(nu+t*t))
}

// zTest returns z = est/se and its two-sided normal p:
//
//	p = P(|Z| > |z|) = erfc(|z|/√2)
func zTest(est, se float64) (float64, float64) {
	if se == 0 {
		return 0, 1 // no variance: no test
	}
	z := est / se
	return z, math.Erfc(math.Abs(z) / math.Sqrt2)
}
