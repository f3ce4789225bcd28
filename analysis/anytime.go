package analysis

import (
	"fmt"
	"math"
)

// The two versions of the anytime-valid results (AnytimeResults.Method).
const (
	// AnytimeT is the exact version for the Gaussian linear model with one
	// pooled variance: Lindon, Ham, Tingley & Bojinov's sequential F-test
	// and t-test (arXiv 2210.08589), a Gaussian mixture over the tested
	// coefficients and the right-Haar mixture over the rest of the model
	// and σ.
	AnytimeT = "sequential t/F (Gaussian mixture, pooled variance)"
	// AnytimeZ is the asymptotic, heteroskedasticity-robust version: the
	// same Gaussian mixture with each cell's own variance plugged in
	// (the asymptotic confidence sequences of Waudby-Smith et al. and of
	// Lindon et al.'s Section 5). Ratio tables always use it.
	AnytimeZ = "asymptotic z/χ² (Gaussian mixture, each cell's own variance)"
)

// AnytimeOptions configure AnytimeValid.
type AnytimeOptions struct {
	// Alpha is the level: a term is anytime-valid significant when its P
	// is at most Alpha, and the confidence sequences have coverage
	// 1 − Alpha uniformly over time. In (0, 1).
	Alpha float64
	// Phi (φ₀ > 0) is the mixture's precision in units per cell: the
	// Gaussian mixture over a term's coefficients is as informative as
	// φ₀ units in every cell. The results are narrowest around the time a
	// cell holds about φ₀/r units (MixturePhi). It must be fixed before
	// the data are seen (from the plan, never from the data), or the
	// guarantee is lost.
	Phi float64
	// Robust selects AnytimeZ for an ordinary table (a ratio table always
	// uses it); use it when the cells' variances differ, e.g. for a
	// binary metric.
	Robust bool
	// SD is the per-unit standard deviation σ that scales the mixture of
	// AnytimeZ: its prior variance per cell is SD²/Phi. Needed (> 0) by
	// AnytimeZ only; like Phi, take it from the plan.
	SD float64
}

// AnytimeTerm is one ANOVA term's anytime-valid test of "every
// coefficient of the term is 0" (the Type III hypothesis under
// sum-to-zero coding).
//
// LogE is the log of the mixture likelihood ratio (an e-value: under the
// null its expectation is at most 1 at every sample size, and it is a
// nonnegative martingale as units arrive), and
//
//	P = min(1, exp(−LogE))
//
// so that P(P_n ≤ α for some n) ≤ α by Ville's inequality. A caller that
// keeps the history may report the running minimum of P, which is equally
// valid. When Tested is false LogE is 0, P is 1 and Note says why.
type AnytimeTerm struct {
	Name    string
	Factors []int
	DF      int
	LogE    float64
	P       float64
	Tested  bool
	Note    string
}

// AnytimeEstimate is a confidence sequence for one linear contrast of the
// cell means θ = Σ_c w_c·mean_c: a variant's effect against its control
// (on the marginal means, as Effect) or an interaction contrast (as
// Contrast). CS = Estimate ± Radius covers θ at every sample size at once
// with probability 1 − Alpha, and P is the anytime-valid p-value of θ = 0
// (so CS excludes 0 exactly when P ≤ Alpha, up to rounding at the
// boundary).
//
// Factor, Control and Variant name an effect; Term names an interaction
// contrast (Factor is then empty). When Bounded is false the sequence is
// still the whole line (too few residual df for the mixture's level),
// CS and Radius are 0 and Note says so; when the contrast cannot be
// estimated at all Estimate is 0 too. P is 1 when not computed.
type AnytimeEstimate struct {
	Factor, Control, Variant string
	Term                     string
	Factors                  []int
	Estimate                 float64
	Radius                   float64
	CS                       Interval
	Bounded                  bool
	LogE                     float64
	P                        float64
	Note                     string
}

// AnytimeResults are the anytime-valid tests of every term of a factorial
// table and the confidence sequences of its effects and interaction
// contrasts, valid whenever they are read (see AnytimeValid).
type AnytimeResults struct {
	Alpha  float64
	Phi    float64
	Method string // AnytimeT or AnytimeZ
	// DF is the residual df (AnytimeT); 0 for AnytimeZ.
	DF int64
	// Terms are every main effect and interaction, in Anova's order.
	Terms []AnytimeTerm
	// Effects are every variant against its control, in Estimates order.
	Effects []AnytimeEstimate
	// Interactions are the contrasts of every interaction whose factors
	// all have two levels, in R's term order.
	Interactions []AnytimeEstimate
}

// Term returns the test of term name ("a:b"), or nil.
func (r *AnytimeResults) Term(name string) *AnytimeTerm {
	for i := range r.Terms {
		if r.Terms[i].Name == name {
			return &r.Terms[i]
		}
	}
	return nil
}

// Effect returns the confidence sequence of variant of factor, or nil.
func (r *AnytimeResults) Effect(factor, variant string) *AnytimeEstimate {
	for i := range r.Effects {
		if r.Effects[i].Factor == factor && r.Effects[i].Variant == variant {
			return &r.Effects[i]
		}
	}
	return nil
}

// Interaction returns the confidence sequence of contrast term ("a:b"),
// or nil.
func (r *AnytimeResults) Interaction(term string) *AnytimeEstimate {
	for i := range r.Interactions {
		if r.Interactions[i].Term == term {
			return &r.Interactions[i]
		}
	}
	return nil
}

// AnytimeValid computes, from the cell statistics alone, an anytime-valid
// p-value for every ANOVA term and a confidence sequence for every effect
// and interaction contrast of table t: Type-I error and coverage hold
// uniformly over all sample sizes, so the results may be read after every
// unit and a test stopped on them.
//
// Model (AnytimeT): the cell-means model, unit values y = mean_cell + ε,
// ε ~ N(0, σ²) independent. A term T with coefficients β_T = L_T·mean
// (L_T the Type III sum-to-zero rows of Anova, d = df_T rows) is tested
// with the Gaussian mixture β_T ~ N(0, σ²·Φ_T⁻¹), Φ_T = φ₀·(L_T L_T')⁻¹,
// and the right-Haar mixture over σ and the other coefficients. With
// V = L_T D⁻¹ L_T' (D = diag(n_c)), V_φ = L_T diag(1/n_c + 1/φ₀) L_T',
// SS = β̂'V⁻¹β̂ (Anova's Type III SS), SS_φ = β̂'V_φ⁻¹β̂, residual
// SS_res = Σ M2 on ν = N − cells df, the mixture likelihood ratio is
//
//	log E = ½·log(det V / det V_φ) + ((ν + d)/2)·log((SS_res + SS) / (SS_res + SS_φ))
//
// which in a balanced design (n per cell, g = n/φ₀) is Lindon et al.'s
// closed form in the F statistic:
//
//	E = (1 + g)^(ν/2) · ((ν + d·F) / (ν·(1 + g) + d·F))^((ν + d)/2)
//
// A contrast θ = Σ w_c·mean_c (d = 1, prior θ ~ N(0, σ²·Σw_c²/φ₀)) has,
// with t = θ̂/SE, SE² = MSE·Σ w_c²/n_c and a = φ₀·Σ(w_c²/n_c) / (φ₀·Σ(w_c²/n_c) + Σ w_c²),
//
//	log E(t) = ½·log a + ((ν + 1)/2)·log((1 + t²/ν) / (1 + a·t²/ν))
//
// and inverting E(t) < 1/α gives the confidence sequence θ̂ ± SE·√(ν·x),
//
//	x = (K − 1)/(1 − a·K),  K = (1/(α·√a))^(2/(ν+1))
//
// unbounded while a·K ≥ 1.
//
// AnytimeZ (opt.Robust, or a ratio table) replaces σ²/n_c by each cell's
// own variance v_c (M2/((n_c − 1)·n_c), or RatioStats.Variance) and the
// right-Haar mixture by plugging the variances in; the mixture's prior
// variance per cell is τ² = SD²/φ₀, V_φ = L_T diag(v_c + τ²) L_T', and
//
//	log E = ½·log(det V / det V_φ) + ½·(β̂'V⁻¹β̂ − β̂'V_φ⁻¹β̂)
//
// a contrast's sequence is θ̂ ± √(SE²·(SE² + τ_θ²)/τ_θ²·(2·log(1/α) + log(1 + τ_θ²/SE²)))
// with SE² = Σ w_c² v_c and τ_θ² = τ²·Σ w_c². It is valid as the cells
// grow large (a time-uniform central limit), not exactly.
//
// Every cell must be non-empty (else every row carries a Note); AnytimeT
// needs ν > 0 and a positive residual variance, AnytimeZ two units per
// cell. Errors wrap ErrInvalidInput (Alpha outside (0, 1), Phi ≤ 0, SD ≤ 0
// for AnytimeZ), ErrInvalidDesign or ErrNoData (from the table). Cost: as
// Anova's Type III, twice (64 cells ≈ 0.2 ms).
func AnytimeValid(t *CellTable, opt AnytimeOptions) (*AnytimeResults, error) {
	if !(opt.Alpha > 0 && opt.Alpha < 1) {
		return nil, fmt.Errorf("%w: alpha = %v not in (0, 1)", ErrInvalidInput, opt.Alpha)
	}
	if !(opt.Phi > 0) || math.IsInf(opt.Phi, 0) {
		return nil, fmt.Errorf("%w: mixture precision phi = %v (want > 0)", ErrInvalidInput, opt.Phi)
	}
	robust := opt.Robust || t.Ratios != nil
	if robust && (!(opt.SD > 0) || math.IsInf(opt.SD, 0)) {
		return nil, fmt.Errorf("%w: the robust (z) version needs the plan's SD > 0 to scale its mixture, got %v", ErrInvalidInput, opt.SD)
	}
	if err := t.validate(2); err != nil {
		return nil, err
	}
	d := newDesign(t)
	a := &anytime{d: d, opt: opt, robust: robust, res: &AnytimeResults{Alpha: opt.Alpha, Phi: opt.Phi, Method: AnytimeT}}
	if robust {
		a.res.Method = AnytimeZ
		a.tau2 = opt.SD * opt.SD / opt.Phi
	} else {
		a.res.DF = d.dfRes
	}
	a.note = a.untestable()
	a.precisions()
	a.terms()
	x := newEstimator(t, 0.5) // for the cells' levels and variance factors only
	for f := range t.Factors {
		a.effects(x, f)
	}
	a.interactions(x)
	return a.res, nil
}

// MixturePhi returns the mixture precision φ₀ (units per cell) at which
// the confidence sequence of AnytimeValid is narrowest when a cell holds
// horizon units, for level alpha:
//
//	φ₀ = r·horizon,  r solving  log((1 + r)/(r·α²)) = 1/r
//
// (the minimiser over φ₀ of the known-variance boundary
// (n + φ₀)/n²·log((n + φ₀)/(φ₀·α²)) at n = horizon; r ≈ 0.12 at α = 0.05).
// Tuned to the plan's per-cell sample size, the sequences pay least where
// the fixed-horizon test would have been read. It returns NaN for alpha
// outside (0, 1) or horizon ≤ 0.
func MixturePhi(alpha, horizon float64) float64 {
	if !(alpha > 0 && alpha < 1 && horizon > 0) || math.IsInf(horizon, 0) {
		return math.NaN()
	}
	// h(r) = log((1+r)/(r α²)) − 1/r increases in r from −∞ to +∞.
	h := func(r float64) float64 { return math.Log1p(r) - math.Log(r) - 2*math.Log(alpha) - 1/r }
	lo, hi := 1e-6, 1.0
	for h(hi) < 0 {
		hi *= 2
	}
	for i := 0; i < 100 && hi-lo > 1e-12*hi; i++ {
		m := (lo + hi) / 2
		if h(m) < 0 {
			lo = m
		} else {
			hi = m
		}
	}
	return (lo + hi) / 2 * horizon
}

// anytime is what the steps of AnytimeValid share.
type anytime struct {
	d      *design
	opt    AnytimeOptions
	robust bool
	tau2   float64 // AnytimeZ: the prior variance per cell
	res    *AnytimeResults
	note   string // why nothing is tested ("" when the table can be)
	// prec and precPhi are the cells' precisions without and with the
	// mixture: n_c and n_c·φ₀/(n_c + φ₀) (AnytimeT), 1/v_c and 1/(v_c + τ²)
	// (AnytimeZ); vf_c = 1/prec_c.
	prec, precPhi, vf []float64
}

// untestable returns why no row can be tested, or "".
func (a *anytime) untestable() string {
	d := a.d
	switch {
	case len(d.empty) > 0:
		return "not estimable: " + d.emptyList(d.empty)
	case a.robust:
		for _, i := range d.cells {
			if d.t.Cells[i].N < 2 {
				return "no test: cell " + d.t.CellName(i) + " has one unit; its variance needs two"
			}
		}
	case d.dfRes == 0:
		return "no test: residual df is 0 (one observation per cell)"
	case !(d.ssRes > 0):
		return "no test: residual SS is 0 (no variation within cells)"
	}
	return ""
}

// precisions fills prec, precPhi and vf (when the table can be tested).
func (a *anytime) precisions() {
	if a.note != "" {
		return
	}
	d := a.d
	nc := len(d.cells)
	a.prec, a.precPhi, a.vf = make([]float64, nc), make([]float64, nc), make([]float64, nc)
	for r, i := range d.cells {
		if a.robust {
			v := cellVariance(d.t, i)
			a.vf[r] = v
			a.prec[r] = 1 / v
			a.precPhi[r] = 1 / (v + a.tau2)
			continue
		}
		n := d.n[r]
		a.vf[r] = 1 / n
		a.prec[r] = n
		a.precPhi[r] = n * a.opt.Phi / (n + a.opt.Phi)
	}
}

// cellVariance is the variance of non-empty cell i's mean from its own
// units: the delta-method variance of a ratio cell, else M2/((n − 1)·n).
func cellVariance(t *CellTable, i int) float64 {
	if t.Ratios != nil {
		return t.Ratios[i].Variance()
	}
	c := t.Cells[i]
	return c.M2 / float64(c.N-1) / float64(c.N)
}

// terms fills res.Terms.
func (a *anytime) terms() {
	d := a.d
	masks := allTerms(d.k)
	a.res.Terms = make([]AnytimeTerm, len(masks))
	var w *wald
	if a.note == "" {
		w = d.newWald(SumToZero, a.prec)
	}
	for i, m := range masks {
		row := AnytimeTerm{Name: d.t.TermName(m), Factors: maskFactors(m), DF: nominalDF(d.nlev, m), P: 1, Note: a.note}
		if a.note == "" {
			a.test(&row, w.forms(m, a.prec, a.precPhi))
		}
		a.res.Terms[i] = row
	}
}

// test completes row from the term's forms without and with the mixture.
func (a *anytime) test(row *AnytimeTerm, f []form) {
	f0, f1 := f[0], f[1]
	if f0.df == 0 || f1.df == 0 {
		row.Note = "no test: the variance of the term's contrasts is 0 or singular"
		return
	}
	logE := 0.5 * (f0.logDet - f1.logDet)
	if a.robust {
		logE += 0.5 * (f0.q - f1.q)
	} else {
		nu, dd := float64(a.d.dfRes), float64(f0.df)
		logE += (nu + dd) / 2 * (math.Log(a.d.ssRes+f0.q) - math.Log(a.d.ssRes+f1.q))
	}
	row.DF, row.LogE, row.P, row.Tested = f0.df, logE, eToP(logE), true
}

// eToP is min(1, 1/E) from log E.
func eToP(logE float64) float64 {
	if logE <= 0 {
		return 1
	}
	return math.Exp(-logE)
}

// effects appends the confidence sequence of every variant of factor f
// against its control.
func (a *anytime) effects(x *estimator, f int) {
	fac := a.d.t.Factors[f]
	M := float64(len(a.d.t.Cells) / len(fac.Levels))
	for l := range fac.Levels {
		c := fac.reference(l)
		if c < 0 {
			continue
		}
		e := AnytimeEstimate{Factor: fac.Name, Control: fac.Levels[c], Variant: fac.Levels[l], Factors: []int{f}}
		a.contrast(&e, func(i int) float64 {
			switch x.cellLevels(i)[f] {
			case l:
				return 1 / M
			case c:
				return -1 / M
			}
			return 0
		})
		a.res.Effects = append(a.res.Effects, e)
	}
}

// interactions appends the confidence sequence of the contrast of every
// interaction of two-level factors, as Estimates.Interactions.
func (a *anytime) interactions(x *estimator) {
	t := a.d.t
	for _, mask := range allTerms(a.d.k) {
		fs := maskFactors(mask)
		if len(fs) < 2 {
			continue
		}
		twoLevel := true
		for _, f := range fs {
			twoLevel = twoLevel && len(t.Factors[f].Levels) == 2
		}
		if !twoLevel {
			continue
		}
		M := float64(len(t.Cells) >> len(fs))
		e := AnytimeEstimate{Term: t.TermName(mask), Factors: fs}
		a.contrast(&e, func(i int) float64 {
			s := 1 / M
			for _, f := range fs {
				if x.cellLevels(i)[f] == 0 {
					s = -s
				}
			}
			return s
		})
		a.res.Interactions = append(a.res.Interactions, e)
	}
}

// contrast fills e for θ = Σ w(i)·mean_i over the table's cells i.
func (a *anytime) contrast(e *AnytimeEstimate, w func(i int) float64) {
	e.P = 1
	if a.note != "" {
		e.Note = a.note
		if len(a.d.empty) == 0 {
			for i, c := range a.d.t.Cells {
				e.Estimate += w(i) * c.Mean
			}
		}
		return
	}
	var sw2, sw2v float64 // Σ w², Σ w²·vf
	for r, i := range a.d.cells {
		wi := w(i)
		e.Estimate += wi * a.d.mean[r]
		sw2 += wi * wi
		sw2v += wi * wi * a.vf[r]
	}
	alpha := a.opt.Alpha
	if a.robust {
		se2, tau2 := sw2v, a.tau2*sw2
		if !(se2 > 0) {
			e.Note = "no test: the variance is 0"
			return
		}
		e.LogE = 0.5*math.Log(se2/(se2+tau2)) + 0.5*e.Estimate*e.Estimate/se2*tau2/(se2+tau2)
		e.Radius = math.Sqrt(se2 * (se2 + tau2) / tau2 * (-2*math.Log(alpha) + math.Log1p(tau2/se2)))
	} else {
		nu := float64(a.d.dfRes)
		mse := a.d.ssRes / nu
		se := math.Sqrt(mse * sw2v)
		phi := a.opt.Phi
		ra := phi * sw2v / (phi*sw2v + sw2)
		t2 := e.Estimate * e.Estimate / (se * se)
		e.LogE = 0.5*math.Log(ra) + (nu+1)/2*(math.Log1p(t2/nu)-math.Log1p(ra*t2/nu))
		K := math.Exp(2 / (nu + 1) * (-math.Log(alpha) - 0.5*math.Log(ra)))
		if ra*K >= 1 {
			e.P = eToP(e.LogE)
			e.Note = fmt.Sprintf("confidence sequence unbounded: %d residual df are too few for level %v", a.d.dfRes, alpha)
			return
		}
		e.Radius = se * math.Sqrt(nu*(K-1)/(1-ra*K))
	}
	e.P = eToP(e.LogE)
	e.CS = Interval{e.Estimate - e.Radius, e.Estimate + e.Radius}
	e.Bounded = true
}
